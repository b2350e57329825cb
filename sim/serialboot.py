# The virtual serial device's boot (MicroPython unix port; started by sim/serialdev.py).
#
# Plays the part of the ESP32 port's startup so the firmware sees the board it will see
# in the field:
#   - the flash is the simulator's flash model (sim/vboard/flashdev.py) in a host file:
#     LittleFS v2 on its `vfs` partition, mounted at "/" in place of the host's filesystem
#     (so `/main.py`, `/data/...` are the device's files), and the raw `journal` partition
#     served by the `esp32` module;
#   - sys.path is the ESP32's ("", ".frozen", "/lib") plus the virtual board's modules
#     (sim/vboard, mounted read-only at /vboard) so `import machine` finds the virtual one;
#   - boot.py runs, then main.py (only after a reset into the friendly REPL, as on the
#     ESP32: a soft reset from the raw REPL runs boot.py only);
#   - then the REPL (micropython -i) — which sim/serialdev.py puts in raw mode if needed.
#
# Environment: BRT_FLASH (image path), BRT_VBOARD (host path of sim/vboard, also on
# MICROPYPATH for the first imports), BRT_MODE ("friendly" or "raw").
#
# Ctrl-C order, as MicroPython's (commit 1c3c2011 of micropython/micropython):
#   - ports/esp32/main.c mp_task: `pyexec_frozen_module("_boot.py", false)` (mounts the
#     flash, interrupt char off), then `pyexec_file_if_exists("boot.py")`, then main.py
#     only `if (pyexec_mode_kind == PYEXEC_MODE_FRIENDLY_REPL && ret != 0)` (boot.py ended
#     normally); a SystemExit (PYEXEC_FORCED_EXIT) skips both main.py and the REPL loop;
#   - shared/runtime/pyexec.c parse_compile_execute: the file is read, parsed and compiled
#     with the interrupt char still off; `mp_hal_set_interrupt_char(CHAR_CTRL_C)` comes
#     right before `mp_call_function_0(module_fun)`; afterwards, normal end or exception,
#     `mp_hal_set_interrupt_char(-1)` then `mp_handle_pending(...)`: a Ctrl-C still
#     pending after a normal end is raised there and counts as the file's exception.
# So a Ctrl-C that arrives while boot.py is read or compiled is a plain byte on stdin.
# The unix port has the interrupt char on from the start of this script: off first thing.
# The ESP32 keeps a Ctrl-C *pending* (mp_sched_keyboard_interrupt) and raises it at the
# next branch (py/vm.c pending_exception_check), even after the file switched the
# interrupt char off; the unix port raises it at once, at any instruction, and only while
# the char is on (MICROPY_ASYNC_KBD_INTR, ports/unix/variants/mpconfigvariant_common.h;
# unix_mphal.c sighandler). So the first instants of boot.py, from the switch-on until the
# file's first kbd_intr() call, are played by `_Window` below: the interrupt char stays
# off in the process, sim/serialdev.py consumes and counts the Ctrl-Cs that arrive in the
# window (markers on stdout, the answer in a file), and one that came is raised as
# KeyboardInterrupt when kbd_intr() returns, after the switch (the board: at the next
# branch, which is why firmware/boot.py has a branch inside its try).
while True:
    try:
        import micropython

        micropython.kbd_intr(-1)
        break
    except KeyboardInterrupt:
        pass

import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

READY = "\x00BRT-SERIALBOOT-READY\x00"
_HOSTDIR = os.getcwd()


def _mount():
    # the flash model (sim/vboard/flashdev.py, file-backed: a killed process is a power
    # cut) with the ESP32's partitions: LittleFS on `vfs`, the raw `journal` for esp32
    import esp32
    import flashdev
    import parttable

    # the image is the whole 16 MB chip with its partition table (sim/serialdev.py makes
    # it); an older 2 MiB data-area image still works
    path = os.getenv("BRT_FLASH")
    flash = flashdev.Flash(parttable.image_size(path, flashdev.DATA_SIZE), path=path)
    parts = esp32.attach(flash)
    try:
        vfs = os.VfsLfs2(parts["vfs"])
    except OSError:
        # a blank flash: MicroPython's _boot.py formats it on first boot too
        os.VfsLfs2.mkfs(parts["vfs"])
        vfs = os.VfsLfs2(parts["vfs"])
    vb = os.getenv("BRT_VBOARD")
    os.umount("/")
    os.mount(vfs, "/")
    os.mount(os.VfsPosix(vb), "/vboard", readonly=True)
    # the bridge's answers for _Window (its private directory, where this process started)
    os.mount(os.VfsPosix(_HOSTDIR), "/.serialdev")
    os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib", "/vboard"]


class _Window:
    # the Ctrl-C window at the start of a file (see the header): `micropython` for the file
    # is this object until the window closes; everything else is the real module's
    def __init__(self, real):
        self._real = real
        self._open = False
        self._n = 0

    def open(self):
        self._n += 1
        self._open = True
        sys.stdout.write("\x00BRT-INTR-ON\x00")

    def close(self):
        # True if a Ctrl-C arrived while the window was open (the bridge counted it)
        if not self._open:
            return False
        self._open = False
        sys.stdout.write("\x00BRT-INTR-OFF %d\x00" % self._n)
        path = "/.serialdev/intr-%d" % self._n
        t0 = time.ticks_ms()
        while time.ticks_diff(time.ticks_ms(), t0) < 10000:
            try:
                with open(path) as f:
                    hit = f.read() == "1"
            except OSError:
                time.sleep_ms(1)
                continue
            os.remove(path)
            return hit
        return False  # no bridge (run by hand): nobody could type a Ctrl-C

    def kbd_intr(self, c):
        hit = self.close()
        self._real.kbd_intr(c)
        if hit:
            raise KeyboardInterrupt  # pending from before the switch, raised after it

    def __getattr__(self, name):
        return getattr(self._real, name)


def _settle():
    # pyexec.c after the file: interrupt char off, then mp_handle_pending(): a Ctrl-C
    # still pending is the file's exception
    _REAL.kbd_intr(-1)
    if _WIN.close():
        raise KeyboardInterrupt


def _run(name, g):
    # pyexec_file_if_exists: a missing file is no error (1); an exception is printed and
    # makes it 0, which skips main.py (main.c)
    try:
        os.stat(name)
    except OSError:
        return True
    try:
        try:
            with open(name) as f:
                src = f.read()
            code = compile(src, name, "exec")  # interrupt char still off (pyexec.c)
            src = None
            if name == "boot.py":
                # pyexec.c: mp_hal_set_interrupt_char(CHAR_CTRL_C), played by the window
                sys.modules["micropython"] = _WIN
                _WIN.open()
            else:
                micropython.kbd_intr(3)  # pyexec.c: mp_hal_set_interrupt_char(CHAR_CTRL_C)
            exec(code, g)
            _settle()
        except SystemExit:
            _REAL.kbd_intr(-1)
            _WIN.close()
            raise
        except BaseException as e:  # noqa: B036 - as the ESP32 port: print and go on
            _REAL.kbd_intr(-1)
            _WIN.close()  # pyexec.c: ..._AND_CLEAR_EXCEPTIONS
            sys.print_exception(e)
            return False
    except KeyboardInterrupt:
        # a second Ctrl-C that landed in the handler above before its switch: the unix
        # port raises at once, where the board is in C (pyexec.c) and cannot be
        # interrupted; pyexec then clears what is pending (..._AND_CLEAR_EXCEPTIONS)
        _REAL.kbd_intr(-1)
        return False
    finally:
        sys.modules.pop("micropython", None)
    return True


try:
    _mount()
except Exception as e:  # noqa: BLE001 - never fall through to a REPL on the host's files
    sys.print_exception(e)
    time.sleep(1)
    raise SystemExit(3) from None
# tell sim/serialdev.py that Ctrl-C may now be delivered as an interrupt (it holds them
# back until here: before this the host's filesystem is still mounted)
_REAL = micropython
_WIN = _Window(_REAL)
sys.stdout.write(READY)
if _run("boot.py", globals()) and os.getenv("BRT_MODE") != "raw":
    _run("main.py", globals())
# the REPL: the unix port's own turns the interrupt char on for each line it runs
micropython = _REAL
micropython.kbd_intr(3)
del _mount, _run
