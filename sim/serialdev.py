"""The virtual serial device: the real firmware in the MicroPython unix port behind a
pseudo-terminal, behaving like an ESP32's USB serial console.

    dev = SerialDevice(tmp / "flash.img")      # a blank board: LittleFS, nothing installed
    dev.start()                                # dev.port is e.g. /dev/pts/7
    serial.Serial(dev.port, 115200)            # what host/provision.py opens
    dev.reset()                                # the reset button / a power cycle
    dev.stop()

The unix port already gives the friendly REPL, the raw REPL (Ctrl-A, Ctrl-B) and raw-paste
mode on a terminal. This bridge makes the rest behave as on the ESP32 (docs/provisioning.md,
"The virtual serial device"):

- Ctrl-C is an *interrupt character*, not a terminal signal: it interrupts running code
  only while the firmware has it enabled (`micropython.kbd_intr(3)`, the default) and is
  otherwise an ordinary byte on stdin — so a firmware that called kbd_intr(-1) (the
  production lock) cannot be broken into. Whether it is enabled is read from the
  process itself: the unix port installs its SIGINT handler exactly while the interrupt
  character is enabled (/proc/<pid>/status, SigCgt).
- Ctrl-D soft reset: the unix port exits where the ESP32 reboots; the bridge prints
  "MPY: soft reboot" and starts the firmware again on the same flash image, in the mode
  the REPL was in (a soft reset from the raw REPL comes back in the raw REPL and runs
  boot.py only, as on the ESP32). machine.reset() (exit code 70) is a hard reset.
- Output "\\n" becomes "\\r\\n" as the ESP32's cooked stdout does.
- A host that is not reading does not stall the device: output it does not take is
  dropped, as the USB CDC does.
- The flash is the simulator's flash model in a host file: LittleFS on its `vfs` partition
  mounted at /, and the raw `journal` partition (sim/serialboot.py).

The board's identity (machine.unique_id) comes over the virtual-board link
(sim/vboard/machine.py). With no device host given, a bare board answers the link: it
has an identity and no peripherals (every bus access fails with ENODEV, as with nothing
wired) — enough for install/enroll/configure/lock; selftest needs a full device host.
"""

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tty

from host.provisioning import parttable
from sim.bareboard import BareBoard

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MP = os.path.join(os.path.dirname(sys.executable), "micropython")
BOOT = os.path.join(ROOT, "sim", "serialboot.py")
VBOARD = os.path.join(ROOT, "sim", "vboard")

CTRL_C = 0x03
EXIT_RESET = 70  # sim/vboard/machine.py: machine.reset()
_READY = b"\x00BRT-SERIALBOOT-READY\x00"  # sim/serialboot.py: flash mounted, Ctrl-C safe
# sim/serialboot.py _Window: boot.py's Ctrl-C window opens / closes (answer in a file)
_WIN_ON = b"\x00BRT-INTR-ON\x00"
_WIN_OFF = b"\x00BRT-INTR-OFF "
_RAW_MARK = b"raw REPL; CTRL-B to exit"
_FRIENDLY_MARK = b'Type "help()" for more information.'
_BANNER = b"MicroPython "
_OUT_LIMIT = 1 << 20


def _state(pid):
    """The process state letter from /proc (T: stopped), or "" if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _sigint_caught(pid):
    """True while the process has a SIGINT handler (= interrupt character enabled)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    except (OSError, ValueError):
        pass
    return False


class SerialDevice:
    """One virtual ESP32 on a pty: `port` is the path a serial tool opens."""

    # The simulator's heap (sim/launcher.py SIM_HEAP; the S3's heap is in PSRAM): after the
    # maintenance window the device boots the whole validator app (drivers, loop, screen,
    # depot client: ~200 KB of bytecode here, plus the virtual board's Python modules that
    # are C on the ESP32). At 148K the app failed to boot with a MemoryError and left the
    # heap so cut up that the depot tool's next raw-paste (one 4 KB block) could fail too.
    # The tap path's own budget is tested at 128K (tests/host/test_app_soak.py), and the
    # maintenance code's in tests/firmware (128K).
    HEAP = "768K"

    def __init__(self, flash, devhost=None, heap=HEAP, table="validator"):
        self.flash = str(flash)
        # a missing image is made as the 16 MB chip of a board that `flash` and `partition`
        # have been through ("validator": host/provisioning/parttable.py's table), one
        # fresh from `flash` only ("stock": MicroPython's own table, no journal), or with
        # any other table (a tuple of parttable.Part)
        self.table = table
        self.heap = heap
        self._bare = None
        self.devhost = devhost
        self.port = None
        self.output = bytearray()  # everything the device printed (last 1 MB), for tests
        self.boots = 0
        self.pending_raised = 0  # Ctrl-Cs raised in boot.py after its switch (_Window)
        self._proc = None
        self._inner = None
        self._mode = "friendly"
        self._tail = b""
        self._swallow = False
        self._held = b""
        self._pending = b""
        self._lf_cr = False
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = None

    # --- lifecycle ---------------------------------------------------------------------
    def start(self):
        # the process starts in an empty private directory: whatever goes wrong before the
        # board's flash is mounted, nothing can land in the caller's directory
        self._cwd = tempfile.mkdtemp(prefix="serialdev-")
        t = self.table
        if isinstance(t, str):
            t = {"validator": parttable.VALIDATOR_16MB, "stock": parttable.STOCK}[t]
        parttable.write_image(self.flash, t)
        if self.devhost is None:
            self._bare = BareBoard()
            self.devhost = self._bare.address
        self._outer, self._outer_slave = os.openpty()
        tty.setraw(self._outer_slave)
        os.set_blocking(self._outer, False)
        self.port = os.ttyname(self._outer_slave)
        with self._lock:
            self._spawn("friendly")
        self._thread = threading.Thread(target=self._bridge, name="serialdev", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        with self._lock:
            self._kill()
        for fd in (self._outer, self._outer_slave):
            try:
                os.close(fd)
            except OSError:
                pass
        if self._bare:
            self._bare.close()
        shutil.rmtree(self._cwd, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def reset(self):
        """The reset button (or a power cycle): the firmware starts from power-on."""
        with self._lock:
            if self._stop.is_set():
                # stopped already (e.g. a test's delayed "technician presses reset" timer
                # firing after teardown): never start a process nobody will stop
                return
            self._kill()
            self._spawn("friendly")

    def download_mode(self):
        """Reset into the ROM bootloader's download mode (esptool does it by DTR/RTS or the
        USB-Serial-JTAG): the firmware stops until reset(). The ROM's protocol is not
        emulated; tests fake esptool over the flash image file (tests/host/prov_support.py)."""
        with self._lock:
            self._kill()

    def running(self):
        return self._proc is not None and self._proc.poll() is None

    def output_text(self):
        return bytes(self.output).decode("utf-8", "replace")

    # --- the firmware process ------------------------------------------------------------
    def _spawn(self, mode):
        m, s = os.openpty()
        tty.setraw(s)  # no line discipline: bytes as on a UART, no signals from the tty
        env = dict(os.environ)
        env.update({"BRT_FLASH": self.flash, "BRT_MODE": mode, "BRT_VBOARD": VBOARD,
                    "BRT_DEVHOST": self.devhost,
                    # only for the boot's first imports (the flash model, esp32); the
                    # firmware's path is the board's own once the flash is mounted at /
                    "MICROPYPATH": VBOARD})
        self._proc = subprocess.Popen([MP, "-X", "heapsize=" + self.heap, "-i", BOOT],
                                      stdin=s, stdout=s, stderr=s, env=env, cwd=self._cwd,
                                      start_new_session=True)
        os.close(s)
        os.set_blocking(m, False)
        self._inner = m
        self._mode = mode
        self._swallow = mode == "raw"  # hide the unix banner, then enter the raw REPL
        self._ready = False
        self._boot_out = b""
        self._window = False  # boot.py's Ctrl-C window open (sim/serialboot.py _Window)
        self._window_hits = 0
        self._marks = b""
        self._tail = b""
        self.boots += 1
        if self._pending:
            data, self._pending = self._pending, b""
            self._to_device(data)

    def _kill(self):
        p, self._proc = self._proc, None
        if p is not None and p.poll() is None:
            p.kill()
        if p is not None:
            p.wait()
        if self._inner is not None:
            try:
                os.close(self._inner)
            except OSError:
                pass
            self._inner = None

    # --- the bridge --------------------------------------------------------------------
    def _bridge(self):
        while not self._stop.is_set():
            with self._lock:
                fds = [self._outer] + ([self._inner] if self._inner is not None else [])
            try:
                ready, _, _ = select.select(fds, [], [], 0.02)
            except (OSError, ValueError):
                continue
            with self._lock:
                if self._outer in ready:
                    try:
                        data = os.read(self._outer, 4096)
                    except (BlockingIOError, OSError):
                        data = b""
                    if data:
                        self._from_host(data)
                if self._inner is not None and self._inner in ready:
                    try:
                        data = os.read(self._inner, 4096)
                    except BlockingIOError:
                        data = b""
                    except OSError:  # EIO: the process closed its terminal (exited)
                        data = b""
                    if data:
                        self._from_device(data)
                if self._proc is not None and self._proc.poll() is not None:
                    self._exited()

    def _from_host(self, data):
        if CTRL_C in data and self._proc is not None and self._ready:
            if self._window:
                # boot.py's first instants (sim/serialboot.py _Window): the board keeps
                # the Ctrl-C pending; it is raised when boot.py's kbd_intr() returns
                self._window_hits += 1
                data = data.replace(bytes([CTRL_C]), b"")
            elif self._interrupt():
                # the interrupt character: consumed, as the ESP32's UART/USB driver does
                data = data.replace(bytes([CTRL_C]), b"")
        if data:
            self._to_device(data)

    def _interrupt(self):
        """SIGINT the firmware if its interrupt character is on; False if it is off (then
        Ctrl-C is a plain byte). The process is stopped while this looks, so it cannot
        switch the character off between the look and the signal (the unix port's
        default action for SIGINT, once off, is to die)."""
        pid = self._proc.pid
        try:
            os.kill(pid, signal.SIGSTOP)
        except OSError:
            return False
        try:
            end = time.monotonic() + 1.0
            while time.monotonic() < end and _state(pid) not in ("T", "t", "Z", "X", ""):
                time.sleep(0.0002)
            if not _sigint_caught(pid):
                return False
            os.kill(pid, signal.SIGINT)  # delivered as it continues, to the same handler
            return True
        except OSError:
            return False
        finally:
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass

    def _to_device(self, data):
        if self._inner is None:
            self._pending += data
            return
        try:
            os.write(self._inner, data)
        except (BlockingIOError, OSError):
            pass  # the firmware is not reading stdin and its buffer is full: lost

    def _from_device(self, data):
        if not self._ready:
            # until the boot has mounted the board's flash, Ctrl-C stays a plain byte: an
            # interrupt there would leave a REPL on the host's filesystem
            self._boot_out += data
            i = self._boot_out.find(_READY)
            if i < 0:
                return
            self._ready = True
            data = self._boot_out[:i] + self._boot_out[i + len(_READY):]
            self._boot_out = b""
        data = self._window_marks(data)
        if not data:
            return
        # cooked stdout as on the ESP32: a lone "\n" becomes "\r\n"
        out = bytearray()
        for b in data:
            if b == 0x0A and not self._lf_cr:
                out += b"\r"
            out.append(b)
            self._lf_cr = b == 0x0D
        data = bytes(out)
        if self._swallow:
            data = self._filter_banner(data)
        tail = self._tail + data
        r, f = tail.rfind(_RAW_MARK), tail.rfind(_FRIENDLY_MARK)
        if r >= 0 or f >= 0:
            self._mode = "raw" if r > f else "friendly"
        self._tail = tail[-64:]
        self._to_host(data)

    def _window_marks(self, data):
        # take sim/serialboot.py's window markers out of the output and answer them
        data = self._marks + data
        self._marks = b""
        out = b""
        while True:
            i = data.find(b"\x00BRT-INTR-")
            if i < 0:
                break
            j = data.find(b"\x00", i + 1)
            if j < 0:
                self._marks, data = data[i:], data[:i]
                return out + data
            mark, out, data = data[i:j + 1], out + data[:i], data[j + 1:]
            if mark == _WIN_ON:
                self._window, self._window_hits = True, 0
            elif mark.startswith(_WIN_OFF):
                n = int(mark[len(_WIN_OFF):-1] or b"0")
                hit = self._window and self._window_hits > 0
                self.pending_raised += hit
                self._window = False
                tmp = os.path.join(self._cwd, ".intr-%d" % n)
                try:
                    with open(tmp, "w") as f:
                        f.write("1" if hit else "0")
                    os.replace(tmp, os.path.join(self._cwd, "intr-%d" % n))
                except OSError:
                    pass  # stopping: the directory is gone (boot.py then sees no Ctrl-C)
        # a marker may be cut at the end of this read: keep a trailing NUL back
        k = data.rfind(b"\x00")
        if k >= 0 and b"\x00BRT-INTR-".startswith(data[k:k + 11]):
            self._marks, data = data[k:], data[:k]
        return out + data

    def _filter_banner(self, data):
        # after a soft reset in the raw REPL: pass boot.py's output, drop the unix port's
        # banner and friendly prompt, and put the REPL back in raw mode
        buf = self._held + data
        self._held = b""
        i = buf.find(_BANNER)
        if i < 0:
            keep = 0
            for k in range(len(_BANNER) - 1, 0, -1):
                if buf.endswith(_BANNER[:k]):
                    keep = k
                    break
            self._held = buf[len(buf) - keep:] if keep else b""
            return buf[:len(buf) - keep]
        j = buf.find(b">>> ", i)
        if j < 0:
            self._held = buf[i:]
            return buf[:i]
        self._swallow = False
        self._to_device(b"\x01")
        return buf[:i] + buf[j + 4:]

    def _to_host(self, data):
        self.output += data
        if len(self.output) > _OUT_LIMIT:
            del self.output[:len(self.output) - _OUT_LIMIT]
        try:
            os.write(self._outer, data)
        except (BlockingIOError, OSError):
            pass  # nobody reading the port: the USB CDC drops it too

    def _exited(self):
        # drain what the process printed last, then reboot the way the ESP32 would
        while self._inner is not None:
            try:
                data = os.read(self._inner, 4096)
            except (BlockingIOError, OSError):
                break
            if not data:
                break
            self._from_device(data)
        if self._boot_out:  # died before the flash was mounted: show why
            self._ready, out, self._boot_out = True, self._boot_out, b""
            self._from_device(out)
        rc = self._proc.returncode
        mode = self._mode
        self._kill()
        if rc == EXIT_RESET:
            self._to_host(b"\r\nets Jun  8 2016 00:22:57\r\n\r\nrst:0xc (SW_CPU_RESET)\r\n")
            mode = "friendly"
        else:
            self._to_host(b"MPY: soft reboot\r\n")
        if not self._stop.is_set():  # no new firmware process once the device is stopped
            self._spawn(mode)


def _stop_by_signal(*_):
    raise KeyboardInterrupt


def main(argv=None):
    """`python -m sim.serialdev FLASH_IMAGE [--chips]`: run a virtual board, print its port.
    Reset control: Enter on this terminal, or `kill -USR1 <pid>` (a pty has no RTS)."""
    import argparse
    ap = argparse.ArgumentParser(description="virtual ESP32 on a pty")
    ap.add_argument("flash", help="flash image file (16 MB, created blank if missing)")
    ap.add_argument("--devhost", help="device host address host:port (default: bare board)")
    ap.add_argument("--chips", action="store_true",
                    help="start the virtual chips here (PN532, GM65, SSD1306, DS3231)")
    ap.add_argument("--table", choices=("validator", "stock"), default="validator",
                    help="partition table of a new image (default: the validator's)")
    a = ap.parse_args(argv)
    host = None
    if a.chips and not a.devhost:
        from sim.devhost import DevHost
        host = DevHost(unique_id=bytes.fromhex("240ac4a1b2c3"))
        host.start()
        a.devhost = host.address
    with SerialDevice(a.flash, devhost=a.devhost, table=a.table) as dev:
        signal.signal(signal.SIGUSR1, lambda *_: dev.reset())
        signal.signal(signal.SIGTERM, _stop_by_signal)  # stop the firmware process too
        print(dev.port, flush=True)
        print("board on %s (%s); reset: press Enter here or `kill -USR1 %d`; Ctrl-C stops"
              % (dev.port, "virtual chips" if a.devhost else "bare board", os.getpid()),
              file=sys.stderr, flush=True)
        try:
            while True:
                line = sys.stdin.readline() if sys.stdin.isatty() else None
                if line is None or line == "":
                    time.sleep(1)
                    continue
                dev.reset()
                print("reset", file=sys.stderr, flush=True)
        except KeyboardInterrupt:
            return 0
        finally:
            if host is not None:
                host.stop()


if __name__ == "__main__":
    sys.exit(main())
