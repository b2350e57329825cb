# MicroPython side of bench_wire: one NFC tap exchange through the real drivers on the
# virtual board, with the PN532 UART's byte log cleared before and read after it.
import json
import time

import board
import machine
from tokens import apdu


def log(clear):
    return json.loads(machine.sim_control(json.dumps(
        {"cmd": "uart.log", "uart": 2, "clear": clear})))


b = board.build()
b.nfc.begin()
log(True)
t0 = time.ticks_us()
t = b.nfc.list_target()
assert t is not None, "no phone in the field"
apdu.select(b.nfc.exchange)
tok = apdu.read_token(b.nfc.exchange, bytes(range(16)))
b.nfc.release()
us = time.ticks_diff(time.ticks_us(), t0)
lg = log(True)
print(json.dumps({"tx": len(lg["tx"]) // 2, "rx": len(lg["rx"]) // 2, "token": len(tok),
                  "us": us}))
