# The flash model (sim/vboard/flashdev.py): SPI NOR semantics, power cuts, counters, time
# model, the esp32.Partition shim, LittleFS on it, and no allocation with the heap locked.
# mp-path: sim/vboard
import os

import micropython

import esp32
import flashdev
from flashdev import Flash, Partition, PowerCut

TMP = "/tmp/jnl_flash_test.bin"


def _rd(f, addr, n):
    b = bytearray(n)
    f.read(addr, b)
    return bytes(b)


def test_new_chip_is_erased_and_program_only_clears_bits():
    f = Flash(8192)
    assert _rd(f, 0, 8) == b"\xff" * 8
    f.program(10, b"\x0f\xf0")
    assert _rd(f, 10, 2) == b"\x0f\xf0"
    f.program(10, b"\xf3\x3f")          # AND: can clear more bits, never set one
    assert _rd(f, 10, 2) == b"\x03\x30"
    f.erase(0)
    assert _rd(f, 10, 2) == b"\xff\xff" and f.wear[0] == 1 and f.wear[1] == 0


def test_pages_ops_counters_and_time_model():
    f = Flash(8192, erase_us=40000, prog_us=600)
    f.program(250, bytes(20))           # crosses a 256-byte page: two page programs
    assert (f.prog_ops, f.prog_bytes, f.ops) == (2, 20, 2)
    assert f.time_us == 1200
    f.erase(1)
    assert (f.erases, f.ops, f.time_us) == (1, 3, 41200)
    f.read(0, bytearray(1000))
    assert f.read_ops == 1 and f.read_bytes == 1000 and f.time_us == 41200 + 15 + 100
    f.reset_counters()
    assert f.ops == 0 and f.time_us == 0


def test_cut_during_program_leaves_a_prefix_and_kills_the_chip():
    seen = set()
    for seed in range(1, 40):
        f = Flash(4096)
        f.arm_cut(0, seed)
        try:
            f.program(0, bytes(64))
            raise AssertionError("no cut")
        except PowerCut:
            pass
        try:
            f.read(0, bytearray(1))
            raise AssertionError("dead chip answered")
        except PowerCut:
            pass
        f.power_on()
        got = _rd(f, 0, 64)
        k = 0
        while k < 64 and got[k] == 0:
            k += 1
        assert got[k + 1:] == b"\xff" * (63 - k) if k < 64 else True
        seen.add(k)
    assert len(seen) > 10  # the cut point inside the page varies with the seed


def test_cut_during_erase_leaves_a_partly_erased_sector():
    kinds = set()
    for seed in range(1, 30):
        f = Flash(4096)
        f.program(0, bytes(4096))
        f.arm_cut(16, seed)             # 16 page programs above, then the erase
        try:
            f.erase(0)
            raise AssertionError("no cut")
        except PowerCut:
            pass
        f.power_on()
        got = _rd(f, 0, 4096)
        assert got != bytes(4096)       # the erase got somewhere
        kinds.add("prefix" if got[-1] == 0 else "noise")
    assert kinds == {"prefix", "noise"}


def test_random_cut_is_seeded_and_in_range():
    a, b = Flash(4096), Flash(4096)
    na = a.arm_random_cut(77, 10, 50)
    nb = b.arm_random_cut(77, 10, 50)
    assert na == nb and 10 <= na < 50


def test_partition_blockdev_protocol_and_esp32_partition_semantics():
    f = Flash(16384)
    p = Partition(f, 4096, 8192, "journal")
    assert p.ioctl(4, 0) == 2 and p.ioctl(5, 0) == 4096
    p.writeblocks(1, b"\x00\x11", 100)              # offset form: program only
    assert _rd(f, 4096 + 4096 + 100, 2) == b"\x00\x11"
    try:  # no offset: erase exactly len(buf) first - whole sectors only, as on the ESP32
        p.writeblocks(1, b"\xaa" * 10)
        raise AssertionError("partial-sector erase accepted")
    except OSError as e:
        assert e.errno == -0x104  # ESP_ERR_INVALID_SIZE (esp_partition_erase_range)
    p.writeblocks(1, b"\xaa" * 4096)                # erase then program
    assert _rd(f, 8192, 10) == b"\xaa" * 10 and _rd(f, 8192 + 100, 2) == b"\xaa\xaa"
    p.ioctl(6, 1)
    buf = bytearray(4)
    p.readblocks(1, buf, 0)
    assert buf == b"\xff" * 4
    try:
        p.readblocks(2, buf, 0)
        raise AssertionError("read beyond the partition")
    except OSError:
        pass


def test_heap_locked_calls_do_not_allocate():
    for path in (None, TMP):
        if path:
            try:
                os.remove(path)
            except OSError:
                pass
        f = Flash(16384, path=path)
        p = Partition(f, 0, 16384)
        buf = bytearray(300)
        sector = bytearray(4096)
        micropython.heap_lock()
        try:
            p.ioctl(6, 1)
            p.writeblocks(1, buf, 200)
            p.writeblocks(3, sector)                # erase + program form (whole sector)
            p.readblocks(1, buf, 0)
            n = p.ioctl(4, 0)
            f.arm_cut(f.op_index, 3)
            try:
                p.writeblocks(2, buf, 0)
                cut = False
            except PowerCut:
                cut = True
        finally:
            micropython.heap_unlock()
        assert n == 4 and cut and buf[200] == 0 and buf[199] == 0xFF
        f.close()


def test_backing_file_survives_like_the_chip():
    try:
        os.remove(TMP)
    except OSError:
        pass
    f = Flash(8192, path=TMP)
    assert os.stat(TMP)[6] == 8192
    f.program(5, b"\x12\x34")
    f.arm_cut(f.op_index, 9)
    try:
        f.erase(1)
    except PowerCut:
        pass
    f.close()
    g = Flash(8192, path=TMP)       # "the process was killed and restarted"
    assert _rd(g, 5, 2) == b"\x12\x34"
    g.program(6, b"\x30")
    assert _rd(g, 5, 2) == b"\x12\x30"
    g.close()
    os.remove(TMP)


def test_stale_partition_after_power_on_does_nothing():
    f = Flash(8192)
    old = Partition(f, 0, 8192)
    f.power_on()
    old.writeblocks(0, b"\x00", 0)
    old.ioctl(6, 1)
    assert _rd(f, 0, 1) == b"\xff" and f.ops == 0 and f.stale_ops == 2


def test_esp32_shim_finds_partitions_and_littlefs_runs_on_vfs():
    try:
        os.remove(TMP)
    except OSError:
        pass
    f = Flash(flashdev.DATA_SIZE, path=TMP)  # file-backed: 2 MiB is not on the 128K heap
    esp32.attach(f)
    (j,) = esp32.Partition.find(esp32.Partition.TYPE_DATA, label="journal")
    assert j.info()[4] == "journal" and j.info()[3] == flashdev.JOURNAL_SIZE
    assert j.ioctl(4, 0) * 4096 == flashdev.JOURNAL_SIZE
    assert len(esp32.Partition.find(esp32.Partition.TYPE_DATA)) == 2
    assert esp32.Partition.find(esp32.Partition.TYPE_APP) == []
    vfs = esp32.Partition("vfs")
    os.VfsLfs2.mkfs(vfs)
    os.mount(os.VfsLfs2(vfs), "/jnltest")
    try:
        import fsutil
        fsutil.write_atomic("/jnltest/a.json", b'{"v": 1}')
        fsutil.write_atomic("/jnltest/a.json", [b'{"v"', b": 2}"])
        assert fsutil.read_bytes("/jnltest/a.json") == b'{"v": 2}'
        assert fsutil.read_bytes("/jnltest/none", b"-") == b"-"
        assert fsutil.size("/jnltest/a.json") == 8 and fsutil.exists("/jnltest/a.json")
        assert fsutil.remove("/jnltest/a.json") and not fsutil.exists("/jnltest/a.json")
    finally:
        os.umount("/jnltest")
        esp32.detach()
        f.close()
        os.remove(TMP)
    try:
        esp32.Partition("vfs")
        raise AssertionError("detached partition found")
    except OSError as e:
        assert e.errno == 2  # ENOENT, as esp32_partition.c raises it
