# MicroPython side of bench_wire: one NFC tap exchange through the real drivers on the
# virtual board, with the PN532 UART's byte log cleared before and read after it, and the
# heap the drivers keep and allocate.
import gc
import json
import time

import machine
from tokens import apdu


def log(clear):
    return json.loads(machine.sim_control(json.dumps(
        {"cmd": "uart.log", "uart": 1, "clear": clear})))


gc.collect()
m0 = gc.mem_alloc()
import board  # noqa: E402 - measured: the board module and its drivers

b = board.build()
gc.collect()
kept = gc.mem_alloc() - m0
b.nfc.begin()
chal = bytes(range(16))
out = bytearray(512)

# the vboard's own garbage per link round trip (socket bytes, struct packing)
u = b.nfc.link.uart
gc.collect()
gc.disable()
a0, c0 = gc.mem_alloc(), machine._ncalls[0]
for _ in range(50):
    u.any()
per_call = (gc.mem_alloc() - a0) / (machine._ncalls[0] - c0)
gc.enable()

log(True)
gc.collect()
gc.disable()
a0, c0 = gc.mem_alloc(), machine._ncalls[0]
t0 = time.ticks_us()
t = b.nfc.list_target()
assert t is not None, "no phone in the field"
apdu.select(b.nfc.exchange)
tok = apdu.read_token(b.nfc.exchange, chal, out)
b.nfc.release()
us = time.ticks_diff(time.ticks_us(), t0)
alloc = gc.mem_alloc() - a0
calls = machine._ncalls[0] - c0
gc.enable()
lg = log(True)
print(json.dumps({"tx": len(lg["tx"]) // 2, "rx": len(lg["rx"]) // 2, "token": len(tok),
                  "us": us, "kept": kept, "alloc": alloc, "calls": calls,
                  "per_call": per_call}))
