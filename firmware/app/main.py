# Boot of the validator (docs/validator.md 'Boot'): storage and journal, config and
# signed bundles, the drivers, the clock, a self-check on the screen - then the tap loop.
# Nothing here raises to main.py: a part that fails is a fault shown on the screen and
# retried, and an unexpected error restarts the board (the watchdog would anyway).
import sys
import time

from micropython import const

import clock

WDT_MS = const(10000)    # the longest loop turn is a bundle's ES256 check (~1 s on ESP32)
DATA = "/data"


def _journal_partition():
    try:
        import esp32
        found = esp32.Partition.find(esp32.Partition.TYPE_DATA, label="journal")
        return found[0] if found else None
    except (ImportError, OSError, ValueError):
        return None


def _read_secret(path):
    try:
        with open(path, "rb") as f:
            s = f.read(64)
        return s if len(s) == 32 else None
    except OSError:
        return None


def boot(board):
    """Bring the validator up on `board` (board.build()); returns (validator, parts)."""
    from app import state
    from drivers import layout
    try:
        layout.lines(board.display, ["BRT VALIDATOR", "MEMULAI...", "starting"])
        board.display.init_display()
        board.display.show()
    except OSError:
        pass
    parts = board.start()                        # [(name, ok, detail)] per chip
    v = state.assemble(_journal_partition(), DATA)
    state.forget("app.state", "app.config")      # boot-only code: give the heap back
    for name, ok, detail in parts:
        print("boot:", name, "ok" if ok else "FAULT", detail)
        if not ok and name in ("nfc", "qr"):
            v.fault(name, detail)
    for f in v.faults:
        print("boot: fault", f, v.details.get(f, ""))
    return v, parts


def run():
    import machine

    import board as boardmod
    from app.loop import TapLoop
    b = boardmod.build()
    v, parts = boot(b)
    part_ok = dict((p[0], p[1]) for p in parts)

    def rtc_now():
        return b.rtc.now()

    loop = TapLoop(b, v, None, None, rtc_now)
    loop.nfc_ok = part_ok.get("nfc", False)
    loop.qr_ok = part_ok.get("qr", False)
    loop.display_ok = part_ok.get("display", False)
    t, ok = loop.now()
    import entropy
    entropy.seed(DATA + "/seed.bin", str(t).encode())  # before the first challenge
    if ok:
        # time.time() counts from 2000 at power-up on the ESP32: set it from the DS3231
        clock.set_system(t)
    else:
        v.fault("clock", "clock unset or implausible (%d)" % t)
    if v.config is not None:
        loop.depot = _depot(v, b, loop)
    loop.wdt = machine.WDT(timeout=WDT_MS)
    print("boot: ready, clock", t, "trusted" if ok else "UNTRUSTED")
    loop.report_status()
    try:
        loop.run()
    except Exception as e:  # noqa: BLE001 - last resort: say so, then reboot cleanly
        sys.print_exception(e)
        try:
            from drivers import layout
            layout.message(b.display, "GANGGUAN", "RESTART", "restarting")
            b.display.show()
        except Exception:  # noqa: BLE001
            pass
        time.sleep_ms(500)
        machine.reset()


def _depot(v, b, loop):
    import gc
    gc.collect()  # the boot left garbage; loading the depot link wants a few KB in one piece
    from app.depot import Depot

    def set_time(t):
        # the depot's time: the DS3231 is set and trusted again
        try:
            b.rtc.set_time(t)
        except Exception as e:  # noqa: BLE001
            print("depot: cannot set the clock:", e)
        clock.set_system(t)  # and the port's own clock (time.time()) with it

    def reload(kind):
        v.reload_pending = True

    return Depot(v.config, _read_secret(DATA + "/secret.bin"), v.journal, DATA, set_time,
                 reload, loop.now, v)
