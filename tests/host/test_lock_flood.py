"""A locked validator under a Ctrl-C flood at every reset never gives a prompt
(issue 16 item 5; docs/provisioning.md 'Production lock').

The virtual board (sim/serialdev.py + sim/serialboot.py) plays MicroPython's Ctrl-C order:
the interrupt character comes on only once boot.py is compiled, a Ctrl-C in boot.py's
first instants stays pending and is raised after its switch. The board here holds the
real firmware/boot.py, maint_lock.py and what they import, a lock marker and a secret;
each reset is flooded with Ctrl-C, Ctrl-A (raw REPL), Ctrl-B and a command from before
the process starts until well after the lock took hold.

`make lock-flood` runs 500 resets; `make test` runs BRT_LOCK_FLOOD_RESETS (default 25).
"""

import os
import threading
import time

import pytest

from host.provisioning.link import Link
from sim.serialdev import SerialDevice
from tests.support.mp import ROOT

RESETS = int(os.environ.get("BRT_LOCK_FLOOD_RESETS", "25"))
FILES = ("boot.py", "maint_lock.py", "fsutil.py", "entropy.py", "hmac256.py", "unload.py")
ATTACK = b"\x03\x03\r\x03\x01print('PWN'+'ED')\x04\x02\x03"
# what a prompt would show: the unix port's banner, the raw REPL, the friendly prompt, or
# the attacker's command having run
LEAKS = (b"PWNED", b"raw REPL", b">>>", b"MicroPython v", b"Type \"help()\"")


def _write_files(link, files):
    for path, data in files.items():
        link.exec("f = open(%r, 'wb')\nf.write(%r)\nf.close()\n" % (path, data))


def _board(tmp_path_factory, boot=None):
    img = tmp_path_factory.mktemp("flood") / "flash.img"
    files = {}
    for name in FILES:
        p = ROOT / "firmware" / name
        if p.exists():
            files[name] = p.read_bytes()
    # an app that only idles (the real one needs a provisioned board; the flood is over
    # long before the lock's 3 s maintenance window ends and main.py would start)
    files["main.py"] = b"import time\nwhile True:\n    time.sleep(1)\n"
    if boot is not None:
        files["boot.py"] = boot
    with SerialDevice(img) as dev:
        with Link(dev.port) as link:
            link.enter_raw()
            link.exec("import os\ntry:\n    os.mkdir('/data')\nexcept OSError:\n    pass\n")
            _write_files(link, files)
            _write_files(link, {"/data/secret.bin": bytes(range(32)),
                                "/data/locked": b"1"})
    return SerialDevice(img).start()


@pytest.fixture(scope="module")
def locked_board(tmp_path_factory):
    dev = _board(tmp_path_factory)
    yield dev
    dev.stop()


def _flood(port, stop, sent, got):
    import serial
    with serial.Serial(port, 115200, timeout=0, write_timeout=0) as s:
        while not stop.is_set():
            try:
                s.write(ATTACK)
                sent[0] += 1
            except serial.SerialTimeoutException:
                pass
            got += s.read(65536)
            time.sleep(0.0005)
        got += s.read(65536)


def _floods(dev, resets, wait=30):
    """(prompts, locked boots, Ctrl-Cs raised in boot.py) over `resets` flooded resets."""
    repl = 0
    locked = 0
    sent = [0]
    raised = dev.pending_raised
    for i in range(resets):
        got = bytearray()
        stop = threading.Event()
        t = threading.Thread(target=_flood, args=(dev.port, stop, sent, got), daemon=True)
        t.start()  # the flood is on before the board resets
        time.sleep(0.002)
        dev.reset()
        end = time.monotonic() + wait
        while b"BRT-LOCKED" not in got and time.monotonic() < end:
            time.sleep(0.005)
        time.sleep(0.15)  # past the boot: boot.py switched Ctrl-C off long ago
        stop.set()
        t.join(5)
        out = bytes(got)
        locked += b"BRT-LOCKED" in out
        if any(m in out for m in LEAKS):
            repl += 1
            print("reset %d reached a prompt:\n%r" % (i, out[-300:]))
    raised = dev.pending_raised - raised
    print("lock flood: %d resets, %d locked boots, %d prompts, %d Ctrl-C raised in boot.py, "
          "%d attack writes" % (resets, locked, repl, raised, sent[0]))
    return repl, locked, raised


def test_locked_board_never_reaches_the_repl_under_ctrl_c_floods(locked_board):
    repl, locked, raised = _floods(locked_board, RESETS)
    assert repl == 0
    assert locked == RESETS  # every reset booted into the lock (none died or hung)


# boot.py's window is a few instructions, so a flood rarely lands in it (on the board too);
# the two boards below widen it with 30 ms of work before the switch, so it is hit

SLOW = b"for _i in range(60000):\n    pass\n"


def test_the_guard_holds_when_the_flood_lands_in_the_window(tmp_path_factory):
    src = (ROOT / "firmware" / "boot.py").read_bytes()
    at = b"            micropython.kbd_intr(-1)\n            if micropython:"
    assert src.count(at) == 1, "firmware/boot.py changed: update this test"
    slow = src.replace(at, b"\n".join(b"            " + ln for ln in SLOW.splitlines())
                       + b"\n" + at)
    dev = _board(tmp_path_factory, slow)
    try:
        repl, locked, raised = _floods(dev, 8)
    finally:
        dev.stop()
    assert raised > 0 and repl == 0 and locked == 8


def test_the_flood_finds_a_boot_py_without_the_guard(tmp_path_factory):
    # the same flood against a boot.py that switches Ctrl-C off without a try around it:
    # a Ctrl-C pending from before the switch ends boot.py and the prompt comes (as on
    # the ESP32: main.c skips main.py after a failed boot.py) - the test has teeth
    naive = SLOW + b"import micropython\nmicropython.kbd_intr(-1)\n" \
        b"import maint_lock\nmaint_lock.boot()\n"
    dev = _board(tmp_path_factory, naive)
    try:
        repl, _, raised = _floods(dev, 4, wait=2)
    finally:
        dev.stop()
    assert raised > 0 and repl > 0
