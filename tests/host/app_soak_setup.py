# MicroPython: the decision core for app_soak_mp.py, built as the board's boot builds it
# (app/state.py): the long-lived buffers first, the bundles, then the tap path's code.
# Imported by app_soak_mp.py and forgotten once it has returned, so its own code is not
# in the heap during the taps.
import gc
import json
import os

from unload import forget


def read(path):
    with open(path, "rb") as f:
        return f.read()


def build(d, parts):
    """(pipeline, journal, the Decision reused tap after tap) on the flash's partitions."""
    os.VfsLfs2.mkfs(parts["vfs"])
    os.mount(os.VfsLfs2(parts["vfs"]), "/data")
    with open("/data/deny.bin", "wb") as f:
        f.write(read(d + "/deny.bin"))
    # the flash model's buffers first, then the tap path's long-lived buffers (as
    # app/state.py does at boot), then the rest of its code, collecting between imports:
    # loading a module leaves garbage, and long-lived objects allocated among it (qstr
    # pools grow in blocks of several hundred bytes) cut the heap into holes too small for
    # the next big block. (The flash model is the simulator's, C on the ESP32.)
    from tokens import p256
    p256.init()
    from app.recent import RecentTaps
    recent = RecentTaps("/data/replay.bin")
    from app.allowance import AllowanceStore
    allowance = AllowanceStore("/data/allowance")
    gc.collect()
    # the bundles next, while the heap has room: their bodies need the strict CBOR decoder
    # and their parsers, the issuer keys the key code (checks, their tables:
    # tokens/p256_keys.py); a tap needs none of them (tokens/verify.py loads the decoder again for the first token not in
    # the usual form). All go once the bundles are read, as boot-only code does
    # (firmware/unload.py), and the tap path's code fills the room they leave.
    cfg = json.loads(read(d + "/config.json"))
    from tokens import cbor
    from tokens.trust import TrustStore
    from app.fares import FareTable
    trust = TrustStore.from_body(read(d + "/trust.cbor"))
    trust.prepare()
    fares = FareTable.from_body(cbor.loads(read(d + "/fares.cbor")), 1)
    cbor = None
    forget("tokens.cbor", "tokens.p256_keys", "tokens.trust_load", "app.fares_load")
    gc.collect()
    from journal import Journal, JournalError, JournalFull
    j = Journal(parts["journal"])
    gc.collect()
    from app.decision import Decision, Pipeline
    gc.collect()
    from app.denylist import DenyList
    gc.collect()
    from tokens.verify import TokenVerifier
    gc.collect()
    j.mount()
    ver = TokenVerifier(trust, cfg["operator"], qr_window=cfg["qr_window_s"])
    trust = None
    p = Pipeline(ver, fares, DenyList.open("/data/deny.bin"), recent.open(), allowance.open(),
                 j, (JournalFull, JournalError), cfg["passback_s"], cfg["qr_window_s"])
    return p, j, Decision()       # the Decision reused tap after tap, as app/loop.py does
