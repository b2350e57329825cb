"""The virtual board (sim/vboard/machine.py, network.py under MicroPython) against the
device host: link protocol agreement, timeouts honoured, a vanished or hung device host
gives OSError (never a hang), the watchdog really resets, machine.reset(), unique_id,
Wi-Fi reachability, I2C ENODEV, and the control API's answers."""

import io
import json
import re
import socket
import threading
import time

import pytest

from sim.devhost import DevHost, run_firmware
from sim.devhost import wire
from sim.devhost.control import dispatch
from sim.devhost.screen import screen_png_bytes
from tests.support.mp import ROOT


@pytest.fixture
def host():
    h = DevHost(unique_id=bytes.fromhex("240ac4aabbcc"))
    h.start()
    yield h
    h.stop()


def mp(host, code, timeout=30):
    return run_firmware(host, ["-c", code], timeout=timeout)


def test_link_ops_agree_between_vboard_and_devhost():
    src = (ROOT / "sim" / "vboard" / "vlink.py").read_text()
    mp_ops = {k: int(v, 16) for k, v in re.findall(r"^((?:OP|ST|EXIT)_\w+) = const\((0x[0-9A-Fa-f]+|\d+)\)", src, re.M)
              if v.startswith("0x")} | {k: int(v) for k, v in re.findall(
                  r"^((?:ST|EXIT)_\w+) = const\((\d+)\)", src, re.M)}
    assert len(mp_ops) >= 20
    for name, val in mp_ops.items():
        assert getattr(wire, name) == val, name


def test_uart_timeout_honoured_and_any(host):
    r = mp(host, """
import machine, time
u = machine.UART(1, 9600, timeout=200, timeout_char=5)
t0 = time.ticks_ms(); x = u.read(10); dt = time.ticks_diff(time.ticks_ms(), t0)
print(x, dt, u.any())
""")
    assert r.returncode == 0, r.stderr
    x, dt, anyn = r.stdout.split()
    assert x == "None" and 190 <= int(dt) < 2000 and anyn == "0"


def test_uart_bytes_arrive_at_the_baud_rate(host):
    # 960 bytes at 9600 baud take 1 s on the wire; any() sees them only once they came
    r = mp(host, """
import machine, time, json
u = machine.UART(2, 9600, timeout=10, rxbuf=1024)
machine.sim_control(json.dumps({"cmd": "qr.noise", "hex": "41" * 960}))
a = u.any(); time.sleep_ms(1300); b = u.any()
print(a, b, len(u.read(2000)))
""")
    a, b, n = map(int, r.stdout.split())
    assert a < 960 and b == 960 and n == 960


def test_unique_id_reset_cause_and_reset(host):
    # machine.reset() ends the process at once: no finally, no except SystemExit
    r = mp(host, "import machine\nprint(machine.unique_id().hex(), machine.reset_cause())\n"
                 "try:\n    machine.reset()\nexcept SystemExit:\n    print('caught')\n"
                 "finally:\n    print('finally ran')\nprint('not reached')")
    assert r.returncode == wire.EXIT_RESET
    assert r.stdout.split() == ["240ac4aabbcc", str(wire.PWRON_RESET)]
    assert any(k == "reset" for _, k, _ in host.events)
    r = mp(host, "import machine; print(machine.reset_cause())")
    assert r.stdout.strip() == str(wire.HARD_RESET)
    # machine.soft_reset() is a SystemExit on the board too; the next boot: SOFT_RESET
    r = mp(host, "import machine; machine.soft_reset()")
    assert r.returncode == wire.EXIT_RESET
    r = mp(host, "import machine; print(machine.reset_cause())")
    assert r.stdout.strip() == str(wire.SOFT_RESET)


def test_watchdog_really_resets_a_stuck_loop(host):
    t0 = time.monotonic()
    r = mp(host, """
import machine, time
w = machine.WDT(timeout=300)
for _ in range(5):
    time.sleep_ms(100); w.feed()
print('fed')
x = 0
while True:   # stuck in Python: only the watchdog gets us out
    x += 1
""")
    assert r.returncode == wire.EXIT_WDT, (r.returncode, r.stderr)
    assert "fed" in r.stdout and time.monotonic() - t0 < 10
    assert ["wdt_start", 300] in [[k, d] for _, k, d in host.events]
    r = mp(host, "import machine; print(machine.reset_cause())")
    assert r.stdout.strip() == str(wire.WDT_RESET)


def test_watchdog_not_fed_exits_71_at_the_next_board_call(host):
    r = mp(host, """
import machine, time
w = machine.WDT(timeout=100)
u = machine.UART(1, 9600, timeout=5)
while True:   # polls the scanner but forgot to feed
    u.any()
""")
    assert r.returncode == wire.EXIT_WDT, (r.returncode, r.stdout, r.stderr)


def test_fed_watchdog_does_not_bite(host):
    r = mp(host, """
import machine, time
w = machine.WDT(timeout=200)
for _ in range(20):
    time.sleep_ms(50); w.feed()
print('alive')
""")
    assert r.returncode == 0 and r.stdout.strip() == "alive"


def test_no_device_host_is_oserror():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there

    class Gone:
        def env(self):
            return {"BRT_DEVHOST": "127.0.0.1:%d" % port}

        def note_exit(self, rc):
            pass

    r = run_firmware(Gone(), ["-c", """
import machine
try:
    machine.UART(2, 115200).any()
except OSError as e:
    print('OSError', e.errno)
"""], timeout=20)
    assert r.stdout.split()[0] == "OSError", r.stdout + r.stderr


def test_device_host_vanishing_mid_run_is_oserror(host):
    def stop_later():
        time.sleep(0.7)
        host.stop()
    threading.Thread(target=stop_later, daemon=True).start()
    t0 = time.monotonic()
    r = mp(host, """
import machine, time
u = machine.UART(2, 115200, timeout=50)
n = 0
try:
    while True:
        u.read(8); n += 1
except OSError as e:
    print('OSError after', n)
""")
    assert "OSError after" in r.stdout, r.stdout + r.stderr
    assert time.monotonic() - t0 < 10


def test_hung_device_host_times_out():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    held = []
    threading.Thread(target=lambda: held.append(srv.accept()), daemon=True).start()

    class Hung:
        def env(self):
            return {"BRT_DEVHOST": "127.0.0.1:%d" % srv.getsockname()[1]}

        def note_exit(self, rc):
            pass

    t0 = time.monotonic()
    r = run_firmware(Hung(), ["-c", """
import machine
try:
    machine.unique_id()
except OSError as e:
    print('OSError')
"""], timeout=30)
    srv.close()
    assert r.stdout.strip() == "OSError" and time.monotonic() - t0 < 15


def test_i2c_missing_address_is_enodev_and_scan(host):
    r = mp(host, """
import machine
i = machine.I2C(0)
print(i.scan())
try:
    i.writeto(0x50, b'x')
except OSError as e:
    print('errno', e.errno)
""")
    assert r.stdout.split("\n")[0] == "[60, 104]"
    assert "errno 19" in r.stdout


def test_wlan_follows_depot_reachability(host):
    code = """
import network
w = network.WLAN(network.STA_IF); w.active(True); w.connect('depot', 'pw')
print(w.isconnected(), w.status())
"""
    assert mp(host, code).stdout.split() == ["False", "1001"]
    host.wlan.reachable = True
    # connect() returns at once; the IP comes join_ms later (network_wlan.c: GOT_IP)
    wait = code + """
import time
t0 = time.ticks_ms()
while not w.isconnected() and time.ticks_diff(time.ticks_ms(), t0) < 5000:
    time.sleep_ms(20)
print(w.isconnected(), w.status(), time.ticks_diff(time.ticks_ms(), t0) >= 1000)
"""
    assert mp(host, wait).stdout.split() == ["False", "1001", "True", "1010", "True"]
    assert dispatch(host, {"cmd": "wifi", "reachable": False})["connected"] is False


def test_wlan_wrong_ssid_never_connects(host):
    host.wlan.reachable = True
    r = mp(host, "import network; w = network.WLAN(0); w.active(True); "
                 "w.connect('elsewhere', 'x'); print(w.isconnected())")
    assert r.stdout.strip() == "False"


def test_control_api_errors_are_answers():
    h = DevHost()
    assert "error" in dispatch(h, {"cmd": "nope"})
    assert "error" in dispatch(h, "not a dict")
    assert "error" in dispatch(h, {"cmd": "qr.noise", "hex": "zz"})
    assert "error" in dispatch(h, {"cmd": "device", "part": "toaster"})
    assert dispatch(h, {"cmd": "rtc.get"})["osf"] is True


def test_bad_link_requests_get_valueerror_not_a_dead_host(host):
    assert host.handle(0x99, b"")[0] == wire.ST_VALUEERROR
    assert host.handle(wire.OP_UART_READ, b"\x01")[0] == wire.ST_VALUEERROR
    assert host.handle(wire.OP_CONTROL, b"{not json")[0] == wire.ST_VALUEERROR
    r = mp(host, "import machine; print(machine.unique_id().hex())")
    assert r.stdout.strip() == "240ac4aabbcc"


def test_screen_png(host):
    from PIL import Image
    host.ssd1306.on = True
    host.ssd1306.ram[0] = 0xFF
    img = Image.open(io.BytesIO(screen_png_bytes(host.ssd1306)))
    assert img.size == (512, 256)
    assert img.getpixel((0, 0)) != img.getpixel((10, 100))


def test_control_over_the_link_from_micropython(host):
    r = mp(host, """
import machine, json
print(machine.sim_control(json.dumps({"cmd": "wifi", "reachable": True})))
""")
    assert json.loads(r.stdout)["reachable"] is True and host.wlan.reachable


def test_control_rtc_flag_and_light_timeline(host):
    assert dispatch(host, {"cmd": "rtc.set", "time": 1767312245, "clear_osf": True})["osf"] is False
    assert dispatch(host, {"cmd": "rtc.set", "osf": True})["osf"] is True
    assert abs(dispatch(host, {"cmd": "rtc.get"})["time"] - 1767312245) <= 1
    host.pins.set(4, 1)
    host.pins.set(4, 0)
    tl = dispatch(host, {"cmd": "lights", "timeline": 5})["timeline"]
    assert [e[1:] for e in tl[-2:]] == [["green", "level", 1], ["green", "level", 0]]


def test_board_reboots_after_reset_and_power_cut(host, tmp_path):
    from sim.devhost import Firmware
    script = tmp_path / "boot.py"
    # first boot resets itself; the reboot sees HARD_RESET and ends
    script.write_text("import machine\nc = machine.reset_cause()\nprint('cause', c)\n"
                      "if c != %d:\n    machine.reset()\n" % wire.HARD_RESET)
    fw = Firmware(host, [script])
    assert fw.run_forever(max_restarts=3) == 0
    assert fw.exits == [wire.EXIT_RESET, 0]
    # a power cut (SIGKILL) is a cold start for the next boot
    script.write_text("import time\nwhile True:\n    time.sleep_ms(10)\n")
    fw = Firmware(host, [script])
    fw.start()
    time.sleep(0.3)
    fw.kill()
    assert fw.exits[-1] == -9
    r = mp(host, "import machine; print(machine.reset_cause())")
    assert r.stdout.strip() == str(wire.PWRON_RESET)
