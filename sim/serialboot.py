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
# The ESP32 port enables the interrupt character only while it runs boot.py or main.py;
# the unix port has it on from the start of this script: off while mounting (a Ctrl-C
# here is a plain byte, as on the ESP32 before boot.py), on for each file.
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
    os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib", "/vboard"]


def _run(name, g):
    # like pyexec_file_if_exists: a missing file is no error, an exception is printed
    # True unless it raised; like the ESP32 port, main.py runs only if boot.py succeeded
    try:
        os.stat(name)
    except OSError:
        return True
    try:
        with open(name) as f:
            src = f.read()
        exec(compile(src, name, "exec"), g)
    except SystemExit:
        raise
    except BaseException as e:  # noqa: B036 - as the ESP32 port: print and go on
        sys.print_exception(e)
        return False
    return True


try:
    _mount()
except Exception as e:  # noqa: BLE001 - never fall through to a REPL on the host's files
    sys.print_exception(e)
    time.sleep(1)
    raise SystemExit(3) from None
# tell sim/serialdev.py that Ctrl-C may now be delivered as an interrupt (it holds them
# back until here: before this the host's filesystem is still mounted)
sys.stdout.write(READY)
micropython.kbd_intr(3)
if _run("boot.py", globals()) and os.getenv("BRT_MODE") != "raw":
    micropython.kbd_intr(3)
    _run("main.py", globals())
micropython.kbd_intr(3)
del _mount, _run
