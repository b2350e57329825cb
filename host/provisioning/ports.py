"""`ports`: serial ports that look like ESP32 boards, by USB vendor/product id."""

from serial.tools import list_ports

from .errors import NoPort

# USB-serial bridges found on ESP32 boards, and the ESP32-S3/C3's own USB
KNOWN = {
    (0x10C4, 0xEA60): "CP210x (Silicon Labs)",
    (0x1A86, 0x7523): "CH340 (WCH)",
    (0x1A86, 0x55D4): "CH9102 (WCH)",
    (0x1A86, 0x55D3): "CH343 (WCH)",
    (0x303A, 0x1001): "ESP32-S3/C3 native USB (Espressif)",
    (0x0403, 0x6001): "FT232R (FTDI)",
    (0x0403, 0x6010): "FT2232 (FTDI, ESP-Prog)",
}


def candidates(comports=list_ports.comports):
    """[{port, bridge, serial, description}] for ports with a known ESP32 bridge."""
    out = []
    for p in comports():
        kind = KNOWN.get((p.vid, p.pid)) if p.vid is not None else None
        if kind:
            out.append({"port": p.device, "bridge": kind, "serial": p.serial_number or "",
                        "description": p.description or ""})
    return sorted(out, key=lambda d: d["port"])


def pick(port=None, comports=list_ports.comports):
    """The port to use: the one given, or the only ESP32-looking one plugged in."""
    if port:
        return port
    found = candidates(comports)
    if not found:
        raise NoPort("no ESP32 board found on USB",
                     "plug the validator in (data cable), or name the port with --port")
    if len(found) > 1:
        raise NoPort("%d ESP32 boards found (%s): choose one with --port"
                     % (len(found), ", ".join(f["port"] for f in found)))
    return found[0]["port"]
