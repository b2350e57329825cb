# MicroPython side of the wallet/bench tests: one NFC tap through board.py's PN532 driver
# and the firmware's APDU helper, then one QR scan through the GM65 driver. Prints the
# token (hex) and the QR line; the host checks them against what the phone produced.
import time

import board
import machine
from tokens import apdu

b = board.build()
b.nfc.begin()
b.qr.configure()
print("@@READY")
challenge = bytes(range(16))
t = None
t0 = time.ticks_ms()
while t is None and time.ticks_diff(time.ticks_ms(), t0) < 5000:
    t = b.nfc.list_target()
assert t is not None, "no phone"
machine.sim_control('{"cmd": "uart.log", "uart": 1, "clear": true}')
t1 = time.ticks_us()
version = apdu.select(b.nfc.exchange)
tok = apdu.read_token(b.nfc.exchange, challenge)
us = time.ticks_diff(time.ticks_us(), t1)
print("@@NFC", version, bytes(tok).hex(), us)
b.nfc.release()
line = None
t0 = time.ticks_ms()
while line is None and time.ticks_diff(time.ticks_ms(), t0) < 5000:
    line = b.qr.poll()
    time.sleep_ms(5)
print("@@QR", bytes(line).decode())
