"""The simulator is never kinder than the board (issue 13, docs/simulator.md "Board
fidelity"): for each behaviour of the ESP32 port the virtual board now refuses, delays
or does what the port does - and the firmware copes with it.

1 pins, 2 UART delivery, 3 ticks, 4 clock at power-up, 5 Wi-Fi and sockets,
6 partitions/flash/I2C timing, 7 resets, 8 randomness."""

import json
import os
import shutil
import time

import pytest

from sim.devhost import DevHost, run_firmware
from sim.devhost import wire
from sim.devhost.host import UART_QR
from tests.support.mp import ROOT, run_mp

EPOCH_2000 = 946684800


@pytest.fixture
def host():
    h = DevHost(unique_id=bytes.fromhex("240ac4f1de17"))
    h.start()
    yield h
    h.stop()


def mp(host, code, timeout=60, **kw):
    r = run_firmware(host, ["-c", code], timeout=timeout, **kw)
    return r


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r.stdout


# --- 1. pins ------------------------------------------------------------------------------

def test_pins_outside_the_s3_octal_psram_table_are_refused(host):
    out = ok(mp(host, """
import machine
for n in (0, 21, 38, 46, 22, 25, 27, 32, 33, 37, 47):
    try:
        machine.Pin(n, machine.Pin.OUT); print(n, 'ok')
    except ValueError as e:
        print(n, e)
try:
    machine.UART(2, 9600, tx=32, rx=33)
except ValueError as e:
    print('uart', e)
try:
    machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21))
except ValueError as e:
    print('i2c', e)
"""))
    got = dict(line.split(" ", 1) for line in out.strip().splitlines())
    for n in ("0", "21", "38", "46"):
        assert got[n] == "ok"
    for n in ("22", "25", "27", "32", "33", "37", "47"):  # absent, flash, octal PSRAM
        assert got[n] == "invalid pin", n
    assert got["uart"] == "invalid pin" and got["i2c"] == "invalid pin"


def test_without_octal_psram_gpio_33_to_37_exist(host):
    out = ok(mp(host, "import machine; machine.Pin(35); machine.Pin(26); print('ok')",
                extra_env={"BRT_BOARD": "S3"}))
    assert out.strip() == "ok"


def test_the_board_file_builds_on_the_s3_and_a_wrong_pin_is_refused(host, tmp_path):
    # the firmware copes: every pin of board.py is in the table, build() succeeds
    ok(mp(host, """
import board, machine
pins = (board.PN532_TX, board.PN532_RX, board.QR_TX, board.QR_RX, board.I2C_SCL,
        board.I2C_SDA, board.PIN_GREEN, board.PIN_RED, board.PIN_BUZZER)
assert all(p in machine.valid_pins() for p in pins), pins
assert 0 not in (board.PN532_UART, board.QR_UART)  # UART0 stays the REPL's
b = board.build()
print('built')
"""))
    # a board file with a WROOM-32 pin (SCL 22) is refused before any driver runs
    fw = tmp_path / "fw"
    shutil.copytree(ROOT / "firmware", fw)
    src = (fw / "board.py").read_text().replace("I2C_SCL = const(9)", "I2C_SCL = const(22)")
    (fw / "board.py").write_text(src)
    r = mp(host, """
import board
try:
    board.build(); print('built')
except ValueError as e:
    print('refused', e)
""", firmware=fw)
    assert ok(r).strip() == "refused invalid pin"


# --- 2. UART delivery ---------------------------------------------------------------------

def test_uart_bytes_come_in_fifo_bursts_at_the_default_threshold(host):
    # 9600 baud, timeout_char=5: rx_timeout = 5 // 2 = 2 characters, FIFO threshold 120
    out = ok(mp(host, """
import machine, time, json
u = machine.UART(2, 9600, timeout=10, timeout_char=5, rxbuf=1024)
machine.sim_control(json.dumps({"cmd": "qr.noise", "hex": "41" * 440}))
seen = []
t0 = time.ticks_ms()
while time.ticks_diff(time.ticks_ms(), t0) < 700:
    n = u.any()
    if not seen or seen[-1] != n:
        seen.append(n)
    time.sleep_ms(3)
print(json.dumps(seen))
"""))
    seen = json.loads(out)
    assert seen[-1] == 440
    assert [n for n in seen if n] [:3] == [120, 240, 360], seen   # bursts, not bytes
    assert host.uarts[UART_QR].bursts == 4


def test_uart_one_byte_at_a_time_when_timeout_char_is_under_a_character(host):
    out = ok(mp(host, """
import machine, time, json
u = machine.UART(2, 9600, timeout=10, timeout_char=0, rxbuf=1024)
machine.sim_control(json.dumps({"cmd": "qr.noise", "hex": "41" * 100}))
time.sleep_ms(40)
print(u.any())
"""))
    assert 10 <= int(out) < 100


def test_uart_rules_of_the_port(host):
    out = ok(mp(host, """
import machine, time, json
def t(f):
    try:
        f(); return 'ok'
    except (ValueError, OSError) as e:
        return type(e).__name__
print(t(lambda: machine.UART(3)), t(lambda: machine.UART(2, rxbuf=128)),
      t(lambda: machine.UART(2, rxbuf=129)), t(lambda: machine.UART(0, rxbuf=512)),
      t(lambda: machine.I2C(2)))
# rxbuf is a bound: 2000 bytes into 256 + the 128-byte FIFO, the newest are lost
u = machine.UART(2, 115200, timeout=10, timeout_char=3)
machine.sim_control(json.dumps({"cmd": "qr.noise", "hex": "42" * 2000}))
time.sleep_ms(300)
print(u.any())
# waits are whole 10 ms FreeRTOS ticks: timeout=19 waits 10 ms, timeout_char=5 none
u = machine.UART(2, 9600, timeout=19, timeout_char=5, rxbuf=1024)
print(u.read(5))
# so at 9600 baud a read gets one 120-byte burst, never the next (125 ms later)
machine.sim_control(json.dumps({"cmd": "qr.noise", "hex": "43" * 300}))
u.init(9600, timeout=200, timeout_char=5)
print(len(u.read(300)))
"""))
    a, b = out.strip().splitlines()[0], out.strip().splitlines()[1:]
    assert a.split() == ["ValueError", "OSError", "ok", "ValueError", "ValueError"]
    assert int(b[0]) == 256 + 128 and host.uarts[UART_QR].dropped == 2000 - 384
    assert b[1] == "None" and host.uarts[UART_QR].last_read == (200, 0)
    assert b[2] == "120"


def test_gm65_driver_survives_bursts_at_its_old_settings(host):
    # even with the UART left at timeout_char=5 (120-byte bursts, 125 ms apart at 9600)
    # the driver keeps the whole line (its stall limit is longer than a burst gap)
    line = "BRT1:" + "A" * 768
    out = ok(mp(host, """
import machine, time
from drivers.gm65 import GM65
g = GM65(machine.UART(2, 9600, timeout=10, timeout_char=5, rxbuf=1024))
g.configure()
machine.sim_control('{"cmd": "qr.show", "text": "%s"}')
t0 = time.ticks_ms()
got = None
while got is None and time.ticks_diff(time.ticks_ms(), t0) < 3000:
    got = g.poll()
    time.sleep_ms(10)
print(len(got), g.dropped)
""" % line))
    assert out.split() == ["773", "0"]


def test_a_773_character_qr_is_decided_on_the_validator(tmp_path):
    # the longest QR text the format allows (docs/tokens.md: 773), through the GM65 at
    # the board's settings on the ESP-style UART: the whole line must arrive for these
    # decisions - a line cut by a stall comes out as "bad prefix" (its tail), and only a
    # line the driver counted to 774 characters is refused as over its bound
    from host.tokens.base45 import b45decode, b45encode
    from sim.launcher import SimBoard
    b = SimBoard(tmp_path / "board")
    try:
        b.start()
        token = b45decode(b.world.qr("regular", b.now())[5:])
        text = "BRT1:" + b45encode(token + bytes(512 - len(token)))  # trailing bytes
        assert len(text) == 773
        d = b.scan(text)
        assert (d["answer"], d["reason"]) == (1, 5), d    # bad CBOR: trailing bytes
        d = b.scan(text + "0")
        # 774 characters: over the format's 773 (the GM65 driver's line bound): too large,
        # as docs/tokens.md says, and a new scan is asked for
        assert (d["answer"], d["reason"]) == (1, 2), d
        b.advance(70)
        d = b.scan_wallet("regular")                      # and a real code still passes
        assert (d["answer"], d["reason"]) == (0, 0), d
    finally:
        b.stop()


# --- 3. ticks -----------------------------------------------------------------------------

def test_ticks_wrap_at_2_30_and_refuse_big_ints(host):
    out = ok(mp(host, """
import time
a = time.ticks_ms()
time.sleep_ms(400)
b = time.ticks_ms()
print(a > (1 << 30) - 400, b < 400, time.ticks_diff(b, a) >= 400)
print(time.ticks_add((1 << 30) - 1, 1))
def t(f):
    try:
        f(); return 'ok'
    except (ValueError, OverflowError) as e:
        return type(e).__name__
print(t(lambda: time.ticks_diff(a + 5000, a)), t(lambda: time.ticks_add(a, 1 << 29)))
""", extra_env={"BRT_TICKS_START": "wrap-200"}))
    lines = out.strip().splitlines()
    assert lines[0] == "True True True"
    assert lines[1] == "0"
    # a + 5000 near the wrap is a big int on the ESP32: garbage there, refused here
    assert lines[2] == "ValueError OverflowError"


def test_a_sync_crossing_a_tick_wrap_completes(tmp_path, monkeypatch):
    # the sync client (MicroPython, tests/host/sync_validator.py) with ticks that wrap
    # during its session: its request deadlines must be ticks_add()ed (a plain + near the
    # wrap is a big int: the strict ticks_diff raises, the ESP32 would compute garbage)
    import threading

    from host.depot.server import DepotServer
    from tests.host.sync_support import SECRET, Depot, Validator
    d = Depot(tmp_path / "depot.db")
    d.store.register("val-1", SECRET)
    port = d.server.port
    try:
        v = Validator(tmp_path, d.url)
        v.gen(100)
        t = time.monotonic()
        v.start()
        boot_s = time.monotonic() - t
        # the next process's ticks start wrap_ms before the wrap; its session begins at
        # once but finds the depot away for DOWN_S, backs off and retries: the wrap (at
        # most wrap_ms after the session began) falls inside it
        wrap_ms = int(boot_s * 1000) + 300
        down_s = wrap_ms / 1000 + 0.8
        monkeypatch.setenv("BRT_TICKS_START", "wrap-%d" % wrap_ms)
        d.server.stop()
        t_spawn = time.monotonic()
        v.start()
        t_sync = time.monotonic()

        def back():
            time.sleep(down_s)
            d.server = DepotServer(d.store, port=port).start()
        th = threading.Thread(target=back)
        th.start()
        r = v.sync(max_ms=30000)
        t_end = time.monotonic()
        th.join()
        v.close()
    finally:
        d.stop()
    assert r["state"] == 6 and r["unsent"] == 0, r
    # it backed off while the depot was away: a refused connect shows on the ESP32 as a
    # failed send (poll flags without ERR/HUP, sim/vboard/select.py), not as "refused"
    assert r["cycles"] >= 1 and r["last_error"].startswith("cut"), r
    assert sorted(s for _d, s, _t, _p in d.store.taps("val-1")) == list(range(1, 101))
    # the session began before the earliest moment of the wrap and ended after the latest
    assert t_sync - t_spawn < wrap_ms / 1000, (t_sync - t_spawn, wrap_ms)
    assert t_end - t_sync > wrap_ms / 1000, (t_end - t_sync, wrap_ms)


# --- 4. the clock at power-up -----------------------------------------------------------

def test_time_starts_at_2000_and_only_machine_rtc_moves_it(host):
    code = """
import machine, time
print(time.time(), time.gmtime(0)[0], machine.reset_cause())
if machine.reset_cause() != 2:
    machine.RTC().datetime((2026, 3, 1, 6, 12, 0, 0, 0))
    print(time.time())
    machine.reset()
"""
    r = run_firmware(host, ["-c", code], timeout=30)
    first = r.stdout.split()
    assert r.returncode == wire.EXIT_RESET
    assert int(first[0]) < 60 and first[1] == "2000"      # power-up: 2000-01-01
    assert 0 <= int(first[3]) - (1772366400 - EPOCH_2000) <= 1   # 2026-03-01 12:00 UTC
    # machine.reset() keeps the system time (the RTC timer runs on)
    r = run_firmware(host, ["-c", code], timeout=30)
    t, _, cause = r.stdout.split()[:3]
    assert cause == "2" and 0 <= int(t) - (1772366400 - EPOCH_2000) < 60
    # a power cut does not
    assert host.note_exit(-9) == -9
    r = run_firmware(host, ["-c", "import time; print(time.time())"], timeout=30)
    assert int(r.stdout) < 60


def test_validator_boot_sets_the_clock_from_the_ds3231(tmp_path):
    from sim.launcher import SimBoard
    b = SimBoard(tmp_path / "board")
    try:
        b.start()
        # the firmware booted on a fresh power-up (time.time() at 2000) and set the
        # port's clock from the DS3231: the board's time.time() now follows the chip
        board_unix = b.host.board_time() + EPOCH_2000
        assert abs(board_unix - b.clock()) < 5, (board_unix, b.clock())
        assert b.host.events[0][1] == "boot"
    finally:
        b.stop()


# --- 5. Wi-Fi and sockets -----------------------------------------------------------------

def test_wifi_states_delays_and_failures(host):
    host.wlan.join_ms = 300
    host.wlan.psk = "right"
    code = """
import network, time
w = network.WLAN(network.STA_IF); w.active(True)
w.connect('depot', '%s')
print(w.isconnected(), w.status())
time.sleep_ms(500)
print(w.isconnected(), w.status())
"""
    assert ok(mp(host, code % "right")).split() == ["False", "1001", "False", "201"]
    assert ok(mp(host, code % "wrong")).split()[2:] == ["False", "201"]  # no AP at all
    host.wlan.reachable = True
    out = ok(mp(host, code % "wrong")).split()
    assert out == ["False", "1001", "False", "202"]
    assert ok(mp(host, code % "right")).split() == ["False", "1001", "True", "1010"]
    # out of range and back: the port reconnects by itself, no new connect()
    host.wlan.reachable = False
    out = ok(mp(host, """
import network, time, json, machine
w = network.WLAN(network.STA_IF)
print(w.isconnected(), w.status())
machine.sim_control(json.dumps({"cmd": "wifi", "reachable": True}))
time.sleep_ms(500)
print(w.isconnected())
""")).split()
    assert out == ["False", "201", "True"]


def test_sockets_need_the_wifi_and_poll_like_the_port(host):
    import socket as pysocket
    srv = pysocket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    closed = pysocket.socket()
    closed.bind(("127.0.0.1", 0))
    cport = closed.getsockname()[1]
    closed.close()  # nothing listens there: a refused connect
    code = """
import socket, select, time
def conn(port):
    s = socket.socket(); s.setblocking(False)
    try:
        s.connect(socket.getaddrinfo('127.0.0.1', port)[0][-1])
    except OSError as e:
        if e.errno != 115:
            return 'OSError %%d' %% e.errno
    p = select.poll(); p.register(s, select.POLLOUT)
    time.sleep_ms(100)
    return p.poll(0)[0][1]
print(conn(%d), conn(%d))
"""
    out = ok(mp(host, code % (port, cport))).strip()
    assert out == "OSError 113 OSError 113"           # Wi-Fi down: no route
    host.wlan.join_ms = 0
    host.wlan.reachable = True
    ok(mp(host, "import network; w = network.WLAN(0); w.active(True); w.connect('depot', 'x')"))
    out = ok(mp(host, code % (port, cport))).split()
    # connected: POLLOUT (4); refused: also just POLLOUT - no POLLERR/POLLHUP unasked
    assert out == ["4", "4"]
    srv.close()


# --- 6. partitions, flash and I2C timing ------------------------------------------------

def test_partition_rules_of_the_port():
    out = run_mp(["-c", """
import esp32, flashdev
f = flashdev.Flash(64 * 1024)
esp32.attach(f, 16 * 1024)
def t(fn):
    try:
        return fn()
    except OSError as e:
        return 'OSError %d' % e.errno
p = esp32.Partition.find(esp32.Partition.TYPE_DATA, label='journal')[0]
print(t(lambda: esp32.Partition('nope')))
print(esp32.Partition.find(esp32.Partition.TYPE_DATA, label='nope'))
print(t(lambda: p.writeblocks(0, bytearray(100))))
print(t(lambda: p.writeblocks(0, bytearray(b'ab'), 8)), f.erases)
print(t(lambda: p.writeblocks(0, bytearray(4096))), f.erases)
print(t(lambda: p.readblocks(10000, bytearray(16))))
q = esp32.Partition('journal', 8192)
print(q.ioctl(6, 0), p.ioctl(6, 1), p.ioctl(99, 0))
"""], paths=["sim/vboard"])
    lines = out.stdout.strip().splitlines()
    assert lines == ["OSError 2", "[]", "OSError -260", "None 0", "None 1",
                     "OSError -258", "-22 0 None"], out.stdout + out.stderr


def test_i2c_transfers_take_bus_time_and_time_out(host):
    out = ok(mp(host, """
import machine
from drivers.ssd1306 import SSD1306
i = machine.I2C(0, scl=machine.Pin(9), sda=machine.Pin(8), freq=400000)
print(i.writeto(0x3C, b'\\x00\\xae'))
d = SSD1306(i, 0x3C)
d.init_display(); d.fill(1); d.show()
print('frame ok')
slow = machine.I2C(0, scl=machine.Pin(9), sda=machine.Pin(8), freq=100000)
try:
    slow.writeto(0x3C, bytes(1025))
except OSError as e:
    print('errno', e.errno)
"""))
    # writeto returns the bytes written; a full frame fits the 50 ms timeout at
    # 400 kHz (the board's rate, ~23 ms) and not at 100 kHz (~92 ms): ETIMEDOUT
    assert out.split("\n")[:3] == ["2", "frame ok", "errno 110"]


def test_file_backed_flash_blocks_like_the_chip():
    out = run_mp(["-c", """
import flashdev
f = flashdev.Flash(64 * 1024, path='/tmp/brt-fidelity-flash.img')
r = flashdev.Flash(64 * 1024)
print(f.blocking, r.blocking)
f.erase(0); f.program(0, b'x' * 300)
print(f.time_us)
f.close()
"""], paths=["sim/vboard"])
    lines = out.stdout.split()
    # the simulator's chip sleeps tSE/tPP (45 ms / 0.7 ms per page); RAM chips count only
    assert lines[:2] == ["True", "False"] and int(lines[2]) == 45000 + 2 * 700, out.stderr
    os.remove("/tmp/brt-fidelity-flash.img")


# --- 7. resets ----------------------------------------------------------------------------

def test_reset_runs_nothing_more_and_the_journal_keeps_what_was_written(host, tmp_path):
    script = tmp_path / "main.py"
    script.write_text("""
import esp32, machine
from journal import Journal
j = Journal(esp32.Partition.find(esp32.Partition.TYPE_DATA, label='journal')[0])
j.mount()
print('cause', machine.reset_cause(), 'last', j.status().last_seq)
if machine.reset_cause() != 2:
    for i in range(3):
        j.append(b'tap %d' % i, 1767312245 + i)
    try:
        machine.reset()
    finally:
        print('finally ran')  # on the board nothing runs after machine.reset()
""")
    img = tmp_path / "flash.img"
    args = [ROOT / "sim" / "vboard" / "simboot.py", img, script]
    r = run_firmware(host, args, timeout=60, heap="256K")
    assert r.returncode == wire.EXIT_RESET, r.stdout + r.stderr
    assert "finally ran" not in r.stdout and "cause 1 last 0" in r.stdout
    r = run_firmware(host, args, timeout=60, heap="256K")
    assert "cause 2 last 3" in r.stdout, r.stdout + r.stderr


# --- 8. randomness ------------------------------------------------------------------------

def test_urandom_repeats_across_power_ups_with_the_radio_off_entropy_does_not(host, tmp_path):
    seed = tmp_path / "seed.bin"
    code = """
import os, entropy
print(os.urandom(8).hex(), entropy.random(16).hex())
""".replace("entropy.random", "entropy.seed('%s') and entropy.random" % seed)
    runs = []
    for _ in range(2):
        r = run_firmware(host, ["-c", code], timeout=30)
        runs.append(ok(r).split())
        host.note_exit(-9)  # a power cut between the two boots
    # the modelled ESP32: without Wi-Fi os.urandom gives the same bytes after each power-up
    assert runs[0][0] == runs[1][0]
    # the firmware's challenges do not repeat (seed file rewritten at every boot)
    assert runs[0][1] != runs[1][1] and seed.stat().st_size == 32
    host.wlan.active = True
    assert ok(mp(host, "import os; print(os.urandom(8).hex())")).strip() != runs[0][0]
