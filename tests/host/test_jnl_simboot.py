"""The simulator's power cut: the validator process is killed (SIGKILL) while it appends
taps and rewrites a config file; the flash image file keeps exactly what was written.
Booting again with sim/vboard/simboot.py (LittleFS at /data, journal on the raw partition
via the esp32 shim) must find every tap whose append returned, nothing else but the one in
flight, and the config wholly old or new."""

import json
import os
import signal
import subprocess
import time

from tests.support.mp import MP, ROOT, mp_env

WRITER = r'''
import esp32, fsutil
from journal import Journal, JournalFull
j = Journal(esp32.Partition.find(esp32.Partition.TYPE_DATA, label="journal")[0])
st = j.mount()
base = st.last_seq
print("start", base, st.acked_seq)
i = 0
while True:
    try:
        seq = j.append(b"tap-%d-" % (base + i) + b"x" * 40, 1750000000 + i)
    except JournalFull:
        j.ack(j.status().last_seq)
        continue
    print("ok", seq)
    if i % 7 == 0:
        v = seq
        print("cfg-begin", v)
        fsutil.write_atomic("/data/config.json", b'{"v": %d, "pad": "%s"}' % (v, b"p" * (v % 300)))
        print("cfg-done", v)
    if i % 50 == 49:
        j.ack(seq - 10)
        print("acked", seq - 10)
    j.maintain()
    i += 1
'''

READER = r'''
import esp32, fsutil, json
from journal import Journal
j = Journal(esp32.Partition.find(esp32.Partition.TYPE_DATA, label="journal")[0])
st = j.mount()
recs = j.unsent(100000, 10000000)
print(json.dumps({"acked": st.acked_seq, "last": st.last_seq, "lost": st.lost,
                  "seqs": [r[0] for r in recs], "payloads": [r[2].decode() for r in recs],
                  "cfg": (fsutil.read_bytes("/data/config.json") or b"").decode()}))
'''


def boot(image, main, env_extra=None, **kw):
    env = mp_env(["sim/vboard"])
    env.update(env_extra or {})
    return subprocess.Popen([MP, "-X", "heapsize=128K", str(ROOT / "sim/vboard/simboot.py"),
                             str(image), str(main)], env=env, cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def read_state(image, tmp_path):
    rd = tmp_path / "reader.py"
    rd.write_text(READER)
    p = boot(image, rd)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, out + err
    return json.loads(out.strip().splitlines()[-1])


def test_kill_during_appends_keeps_every_returned_tap(tmp_path):
    image = tmp_path / "flash.bin"
    wr = tmp_path / "writer.py"
    wr.write_text(WRITER)
    returned, acked, cfg_done, cfg_begin = [], 0, None, None
    for kill_after in (37, 120, 211, 333, 450):
        p = boot(image, wr)
        lines = 0
        deadline = time.monotonic() + 60

        def seen(line):
            nonlocal acked, cfg_begin, cfg_done
            word, *rest = line.split() or [""]
            if word == "ok":
                returned.append(int(rest[0]))
            elif word == "acked":
                acked = int(rest[0])
            elif word == "cfg-begin":
                cfg_begin = int(rest[0])
            elif word == "cfg-done":
                cfg_done = int(rest[0])
            return word == "ok"

        while lines < kill_after and time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            lines += seen(line)
        os.kill(p.pid, signal.SIGKILL)  # the power cut: the process dies mid-operation
        p.wait()
        for line in p.stdout:          # what it printed before it died also happened
            seen(line)
        p.stdout.close()
        p.stderr.close()
        assert lines == kill_after, "writer stopped early"
        s = read_state(image, tmp_path)
        assert s["lost"] == 0 and s["acked"] >= acked
        seqs = s["seqs"]
        assert seqs == sorted(set(seqs)) and all(q > s["acked"] for q in seqs)
        want = [q for q in returned if q > s["acked"]]
        assert seqs[:len(want)] == want, "a returned tap is missing"
        assert len(seqs) - len(want) <= 1, "more than the in-flight tap appeared"
        for q, pl in zip(seqs, s["payloads"]):
            assert pl.startswith("tap-%d-" % (q - 1)), (q, pl)
        cfg = json.loads(s["cfg"]) if s["cfg"] else None
        assert cfg is not None and cfg["v"] in {cfg_done, cfg_begin}
        if len(seqs) > len(want):     # the in-flight tap survived: it counts from now on
            returned.append(seqs[-1])


def test_in_process_power_cut_via_env(tmp_path):
    image = tmp_path / "flash.bin"
    wr = tmp_path / "writer.py"
    wr.write_text(WRITER)
    p = boot(image, wr, {"BRT_POWERCUT": "40:7"})
    out, err = p.communicate(timeout=60)
    assert p.returncode == 3, out + err
    assert "power cut at flash operation 40" in out
    ok = [int(ln.split()[1]) for ln in out.splitlines() if ln.startswith("ok ")]
    s = read_state(image, tmp_path)
    assert s["seqs"][:len(ok)] == ok and len(s["seqs"]) - len(ok) <= 1
