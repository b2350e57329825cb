# Bundle install on a real LittleFS (os.VfsLfs2 on the flash model) with the power cut at
# every flash operation of the install: after each cut and a fresh mount, the installed
# bundle is wholly the old one or wholly the new one — never a mixture, never missing.
# mp-path: sim/vboard
# mp-heapsize: 256K  because the flash model keeps a 64 KiB chip plus a snapshot in RAM
import gc
import hashlib
import os
import struct

import bundles
import flashdev

VFS = 48 * 1024
KEY = b"\x04" + b"K" * 64
SIG = b"S" * 64


def make(version, body):
    return b"BRTB" + struct.pack(">BBIII", 1, 3, version, 1760000000, len(body)) + body + SIG


def verify(key, digest, sig):
    return sig == SIG and digest in DIGESTS


OLD = make(1, b"old fare table " * 8)
NEW = make(2, b"new fare table, longer " * 170)  # ~3.9 KB: spans LittleFS blocks
DIGESTS = [hashlib.sha256(OLD[:-64]).digest(), hashlib.sha256(NEW[:-64]).digest()]


class Rig:
    def __init__(self):
        self.flash = flashdev.Flash(64 * 1024)
        self.parts = flashdev.partitions(self.flash, VFS)
        os.VfsLfs2.mkfs(self.parts["vfs"])
        self.mount()
        inst = bundles.Installer("/data", KEY, verify)
        inst.feed(OLD)
        inst.finish()
        self.umount()
        self.snap = self.flash.snapshot()

    def mount(self):
        os.mount(os.VfsLfs2(self.parts["vfs"]), "/data")

    def umount(self):
        try:
            os.umount("/data")
        except (OSError, flashdev.PowerCut):
            pass

    def power_cycle(self):
        self.umount()
        self.flash.power_on()
        gc.collect()
        self.parts = flashdev.partitions(self.flash, VFS)
        self.mount()


def install_new():
    inst = bundles.Installer("/data", KEY, verify)
    for i in range(0, len(NEW), 100):
        inst.feed(NEW[i:i + 100])
    return inst.finish()


def test_power_cut_at_every_flash_op_of_an_install():
    rig = Rig()
    outcomes = {1: 0, 2: 0}
    cut = 0
    while True:
        rig.flash.restore(rig.snap)
        rig.power_cycle()
        rig.flash.arm_cut(rig.flash.op_index + cut, seed=cut + 1)
        done = False
        try:
            install_new()
            done = True
        except flashdev.PowerCut:
            pass
        rig.power_cycle()  # reboot: fresh mount of whatever the flash holds
        with bundles.open_installed("/data", bundles.FARES) as r:
            v = r.header.version
            body = r.body()
        want = OLD if v == 1 else NEW
        assert body == want[18:-64], (cut, v)
        assert bundles.check_file("/data/fares.cose", KEY, verify).version == v
        outcomes[v] += 1
        if v == 1:  # the old one survived: installing again now works
            install_new()
            with bundles.open_installed("/data", bundles.FARES) as r:
                assert r.header.version == 2
        rig.umount()
        if done:
            break
        cut += 1
        assert cut < 500, "install never completed"
    print("cut points:", cut, "old kept:", outcomes[1], "new in place:", outcomes[2])
    assert outcomes[1] > 0 and outcomes[2] > 0
