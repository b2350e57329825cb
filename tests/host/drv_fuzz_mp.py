# MicroPython worker for the generated-input tests of the PN532 and GM65 drivers: one
# request per stdin line, one answer line each (tests/support/mp.py MPWorker).
#   pn532            -> one GetFirmwareVersion through the driver: "ok <hex>" | "err <Class>"
#   gm65             -> poll the scanner until it is quiet: JSON list of "L:<hex>" / "E:<why>"
import json
import sys
import time

import machine

from drivers.gm65 import GM65, GM65Error, GM65LineError
from drivers.pn532 import PN532, PN532Error, UartLink

pn = PN532(UartLink(machine.UART(1, 115200, timeout=10, timeout_char=3)),
           ack_timeout_ms=40, timeout_ms=120, retries=1)
qr = GM65(machine.UART(2, 9600, timeout=10, timeout_char=5), max_line=64)


def do_pn532():
    t0 = time.ticks_ms()
    try:
        d = pn.call(0x02)
        r = "ok " + bytes(d).hex()
    except PN532Error as e:
        r = "err " + type(e).__name__
    return r + " %d" % time.ticks_diff(time.ticks_ms(), t0)


def do_gm65():
    out = []
    quiet = 0
    t0 = time.ticks_ms()
    while quiet < 30 and time.ticks_diff(time.ticks_ms(), t0) < 5000:
        try:
            line = qr.poll()
        except GM65LineError as e:
            out.append("E:" + e.why)
            quiet = 0
            continue
        except GM65Error as e:
            out.append("X:" + type(e).__name__)
            continue
        if line is None:
            quiet += 1
            time.sleep_ms(5)
        else:
            out.append("L:" + bytes(line).hex())
            quiet = 0
    return json.dumps(out)


while True:
    req = sys.stdin.readline().strip()
    if not req:
        break
    try:
        ans = do_pn532() if req == "pn532" else do_gm65()
    except Exception as e:  # noqa: BLE001 - a crash is what the test looks for
        ans = "crash %s: %s" % (type(e).__name__, e)
    print(ans)
