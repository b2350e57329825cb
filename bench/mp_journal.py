# Journal figures measured INSIDE MicroPython on the flash model (run by bench_journal.py):
#   MICROPYPATH=firmware:sim/vboard micropython -X heapsize=8M bench/mp_journal.py
# Prints one JSON object. Flash times are the flash model's time model (datasheet figures
# of a typical SPI NOR part), i.e. modelled ESP32 flash busy time, not measured on a chip.
import gc
import json
import os
import time

import flashdev
from flashdev import Flash, Partition
from journal import Journal, JournalFull

T = 1750000000


def tap_records():
    """Realistic CBOR tap records from the app's own encoder (docs/records.md)."""
    try:
        from app.record import RecordWriter
    except ImportError:  # the app is not there: same sizes as docs/records.md's example
        return bytes(61), bytes(77), bytes(15)
    w = RecordWriter()
    ok8 = bytes(w.encode(T, 0, 2, 0, 0, b"W1234567", b"P1234567", 0, 3500, bytes(16), 3))
    ok16 = bytes(w.encode(T, 0, 1, 0, 0, bytes(range(16)), bytes(range(16)), 1, 1000,
                          bytes(16), 300))
    rej = bytes(w.encode(T, 1, 2, 1, 7))
    return ok8, ok16, rej


def pct(sorted_list, p):
    return sorted_list[min(len(sorted_list) - 1, (len(sorted_list) * p) // 100)]


def steady(payload, n, use_maintain, sectors=40, ack_every=200):
    """Appends in steady state (ring wrapping, acks as a depot would); per-append figures."""
    f = Flash(sectors * 4096)
    j = Journal(Partition(f, 0, sectors * 4096))
    j.mount()
    lat, cpu = [], []
    e = p = b = 0
    f.reset_counters()
    for i in range(n):
        if i % ack_every == 0 and i:
            j.ack(j.status().last_seq - 50)
        if use_maintain:
            j.maintain()
        t0, e0, p0, b0 = f.time_us, f.erases, f.prog_ops, f.prog_bytes
        c0 = time.ticks_us()
        j.append(payload, T + i)
        cpu.append(time.ticks_diff(time.ticks_us(), c0))
        lat.append(f.time_us - t0)
        e += f.erases - e0
        p += f.prog_ops - p0
        b += f.prog_bytes - b0
    lat.sort()
    cpu.sort()
    # erases_all/prog_bytes_all include maintain() and acks: the whole cost per tap
    return {"p50": pct(lat, 50), "p99": pct(lat, 99), "max": lat[-1],
            "erases": e / n, "prog_ops": p / n, "prog_bytes": b / n, "cpu_p50": pct(cpu, 50),
            "erases_all": f.erases / n, "prog_bytes_all": f.prog_bytes / n}


def fill(payload, size):
    """Taps that fit in a journal partition of `size` bytes (filled until JournalFull)."""
    f = Flash(size)
    j = Journal(Partition(f, 0, size))
    j.mount()
    n = 0
    try:
        while True:
            j.append(payload, T + n)
            n += 1
            if n % 60 == 0:
                j.maintain()
    except JournalFull:
        pass
    return f, n


def recovery(payload):
    """Mount time of a full journal (the simulator's 1.5 MiB layout) after a power cut."""
    f, n = fill(payload, flashdev.JOURNAL_SIZE)
    part = Partition(f, 0, flashdev.JOURNAL_SIZE)
    j = Journal(part)
    j.mount()
    f.arm_cut(f.op_index, 7)      # the cut tears an ack being written at the depot
    try:
        j.ack(10)
    except flashdev.PowerCut:
        pass
    f.power_on()
    gc.collect()
    res = []
    for _ in range(5):
        j = Journal(Partition(f, 0, flashdev.JOURNAL_SIZE))
        f.reset_counters()
        c0 = time.ticks_us()
        st = j.mount()
        res.append((time.ticks_diff(time.ticks_us(), c0), f.time_us, f.read_bytes, f.read_ops))
    assert st.unsent == n and st.full
    res.sort()
    m = res[len(res) // 2]
    # the flash model's own Python cost (on the ESP32 esp_partition_read is C): time the
    # same number of small raw reads, to subtract it from the CPU figure
    part = Partition(f, 0, flashdev.JOURNAL_SIZE)
    mv = memoryview(bytearray(16))
    c0 = time.ticks_us()
    for _ in range(m[3]):
        part.readblocks(0, mv, 0)
    model_us = time.ticks_diff(time.ticks_us(), c0)
    return {"taps": n, "cpu_us": m[0], "flash_us": m[1], "read_bytes": m[2], "read_ops": m[3],
            "model_us": model_us}


def littlefs(payload, n=300):
    """The alternative design: each tap appended to a file on LittleFS (open/append/close)."""
    size = flashdev.VFS_SIZE
    f = Flash(size)
    p = Partition(f, 0, size)
    os.VfsLfs2.mkfs(p)
    os.mount(os.VfsLfs2(p), "/lfsb")
    lat = []
    e = b = 0
    try:
        for _ in range(n):
            t0, e0, b0 = f.time_us, f.erases, f.prog_bytes
            with open("/lfsb/journal.bin", "ab") as fh:
                fh.write(payload)
            lat.append(f.time_us - t0)
            e += f.erases - e0
            b += f.prog_bytes - b0
    finally:
        os.umount("/lfsb")
    lat.sort()
    return {"p50": pct(lat, 50), "p99": pct(lat, 99), "max": lat[-1], "erases": e / n,
            "prog_bytes": b / n}


def alloc_per_append(payload):
    f = Flash(16 * 4096)
    j = Journal(Partition(f, 0, 16 * 4096))
    j.mount()
    j.append(payload, T)
    gc.collect()
    a0 = gc.mem_alloc()
    for i in range(50):
        j.append(payload, T + i)
    return (gc.mem_alloc() - a0) / 50


def main():
    ok8, ok16, rej = tap_records()
    out = {"rec": [len(ok8), len(ok16), len(rej)]}
    out["steady"] = steady(ok8, 5000, True)
    out["steady_nomaint"] = steady(ok8, 5000, False)
    _f, out["fit2m_8"] = fill(ok8, flashdev.DATA_SIZE)
    _f = None
    gc.collect()
    _f, out["fit2m_16"] = fill(ok16, flashdev.DATA_SIZE)
    _f = None
    gc.collect()
    out["recovery"] = recovery(ok16)
    gc.collect()
    out["littlefs"] = littlefs(ok8)
    out["alloc"] = alloc_per_append(ok8)
    print(json.dumps(out))


main()
