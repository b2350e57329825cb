"""The control API as JSON commands: `dispatch(host, {"cmd": "...", ...}) -> dict`.

Used by the vboard's OP_CONTROL (tests running inside MicroPython call
machine.sim_control('{"cmd": ...}')) and by anything that drives a device host from
outside. In-process callers can use the DevHost objects directly; docs/simulator.md
lists every command. Errors come back as {"error": "..."}, never as an exception.
"""

from .host import UART_PN532
from .rf import IsoDepCard
from .screen import screen_text


class ControlError(Exception):
    pass


def _hex(req, key, default=None):
    v = req.get(key, default)
    if v is None:
        return None
    try:
        return bytes.fromhex(v)
    except (TypeError, ValueError):
        raise ControlError("%s: not hex" % key) from None


def scripted_card(req):
    """A card answering APDUs from a table {"apdus": {cmd_hex: rsp_hex}}; "echo": true
    answers every APDU with itself + 9000; otherwise unknown APDUs get "default"."""
    table = {bytes.fromhex(k): bytes.fromhex(v) for k, v in req.get("apdus", {}).items()}
    default = _hex(req, "default", "6d00")
    echo = bool(req.get("echo"))

    def handler(apdu):
        if echo:
            return apdu + b"\x90\x00"
        return table.get(apdu, default)

    kw = {}
    for key in ("uid", "ats", "sens_res"):
        if key in req:
            kw[key] = _hex(req, key)
    if "sel_res" in req:
        kw["sel_res"] = int(req["sel_res"])
    return IsoDepCard(handler, **kw)


def _card_present(h, r):
    h.antenna.present(scripted_card(r), r.get("leave_after"))
    return {}


def _card_remove(h, r):
    h.antenna.remove()
    return {}


def _card_log(h, r):
    c = h.antenna.card
    return {"apdus": [[a.hex(), b.hex()] for a, b in (c.apdus if c else [])]}


def _pn532_fault(h, r):
    h.pn532.faults.extend(r.get("faults", []))
    if "silent" in r:
        h.pn532.silent = bool(r["silent"])
    if r.get("power_on"):
        h.pn532.power_on()
    return {"pending": list(h.pn532.faults)}


def _pn532_state(h, r):
    p = h.pn532
    if "baud" in r:  # put the chip at a rate (as if switched earlier)
        p.baud = int(r["baud"])
    return {"awake": p.awake, "sam": p.sam, "mx_rty_passive": p.mx_rty_passive,
            "target": p.target is not None, "baud": p.baud,
            "commands": [[c, d.hex()] for c, d in p.commands[-50:]]}


def _qr_show(h, r):
    return {"read": h.gm65.show(r.get("text", ""))}


def _qr_noise(h, r):
    h.gm65.noise(_hex(r, "hex", ""))
    return {}


def _qr_state(h, r):
    g = h.gm65
    if r.get("reset"):
        g.power_on()
    if r.get("power_cycle"):
        g.power_cycle()
    if "silent" in r:
        g.silent = bool(r["silent"])
    if "baud" in r:
        g.set_baud(int(r["baud"]), save=True)
    g.faults.extend(r.get("faults", []))
    return {"mode": g.mode, "tail": g.zones[0x60], "zones0": g.zones[0], "baud": g.baud,
            "saved_baud": g.saved_baud(),
            "commands": [c.hex() for c in g.commands[-20:]]}


def _screen(h, r):
    return {"text": screen_text(h.ssd1306), "on": h.ssd1306.on, "frames": h.ssd1306.frames,
            "art": screen_text(h.ssd1306, art=True)}


def _lights(h, r):
    out = h.pins.state()
    if r.get("timeline"):
        import time
        now = time.monotonic()
        out["timeline"] = [[round(now - t, 3), n, k, list(v) if isinstance(v, tuple) else v]
                           for t, n, k, v in h.pins.timeline()[-int(r["timeline"]):]]
    return out


def _rtc_set(h, r):
    d = h.ds3231
    if "time" in r:
        d.set_time(int(r["time"]), clear_osf=bool(r.get("clear_osf", False)))
    if r.get("stop"):
        d.stop_oscillator()
    if "osf" in r:  # the flag alone (e.g. a brown-out the chip noticed), time kept
        d.regs[0x0F] = (d.regs[0x0F] & 0x7F) | (0x80 if r["osf"] else 0)
    if "silent" in r:
        d.silent = bool(r["silent"])
    return {"time": d.now(), "osf": d.osf}


def _rtc_get(h, r):
    return {"time": h.ds3231.now(), "osf": h.ds3231.osf}


def _wifi(h, r):
    if "reachable" in r:
        h.wlan.reachable = bool(r["reachable"])
    if "join_ms" in r:
        h.wlan.join_ms = int(r["join_ms"])
    w = h.wlan
    return {"reachable": w.reachable, "active": w.active, "connected": w.connected(),
            "ssid": w.ssid, "status": w.status(), "join_ms": w.join_ms}


def _board_rtc(h, r):
    # the ESP32's own system clock (time.time(), machine.RTC), seconds since 2000
    if "set" in r:
        h.set_board_time(float(r["set"]))
    return {"time": h.board_time()}


def _events(h, r):
    return {"events": [[k, d] for _, k, d in h.events[-100:]],
            "wdt_timeout_ms": h.wdt_timeout_ms}


def _uart_log(h, r):
    u = h.uarts.get(int(r.get("uart", UART_PN532)))
    if u is None:
        raise ControlError("no such UART")
    out = {"tx": b"".join(u.tx_log).hex(), "rx": b"".join(u.rx_log).hex()}
    if r.get("clear"):
        u.tx_log.clear()
        u.rx_log.clear()
    return out


def _uart_inject(h, r):
    u = h.uarts.get(int(r.get("uart", UART_PN532)))
    if u is None:
        raise ControlError("no such UART")
    u.deliver(_hex(r, "hex", ""))
    return {}


def _i2c_log(h, r):
    b = h.i2c[0]
    out = {"log": [[k, a, d.hex()] for k, a, d in b.log if "addr" not in r or a == r["addr"]]}
    if r.get("clear"):
        b.log.clear()
    return out


def _device(h, r):
    """Attach/detach (unplug) a chip: {"part": "ds3231"|"ssd1306"|"pn532"|"gm65",
    "present": bool} — an unplugged I2C chip stops acknowledging, a UART one goes quiet."""
    part = getattr(h, r.get("part", ""), None)
    if part is None:
        raise ControlError("no such part")
    part.silent = not r.get("present", True)
    return {"silent": part.silent}


COMMANDS = {
    "uart.log": _uart_log,
    "uart.inject": _uart_inject,
    "i2c.log": _i2c_log,
    "device": _device,
    "card.present": _card_present,
    "card.remove": _card_remove,
    "card.log": _card_log,
    "pn532.fault": _pn532_fault,
    "pn532.state": _pn532_state,
    "qr.show": _qr_show,
    "qr.noise": _qr_noise,
    "qr.state": _qr_state,
    "screen": _screen,
    "lights": _lights,
    "rtc.set": _rtc_set,
    "rtc.get": _rtc_get,
    "wifi": _wifi,
    "events": _events,
    "board.rtc": _board_rtc,
}


def dispatch(host, req):
    if not isinstance(req, dict) or req.get("cmd") not in COMMANDS:
        return {"error": "unknown command: %r" % (req.get("cmd") if isinstance(req, dict)
                                                   else req)}
    try:
        return COMMANDS[req["cmd"]](host, req)
    except (ControlError, ValueError, TypeError, KeyError) as e:
        return {"error": "%s: %s" % (req["cmd"], e)}
