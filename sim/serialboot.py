# The virtual serial device's boot (MicroPython unix port; started by sim/serialdev.py).
#
# Plays the part of the ESP32 port's startup so the firmware sees the board it will see
# in the field:
#   - the filesystem is a LittleFS v2 on a flash image (a host file), mounted at "/" in
#     place of the host's filesystem, so `/main.py`, `/data/...` are the device's files;
#   - sys.path is the ESP32's ("", ".frozen", "/lib") plus the virtual board's modules
#     (sim/vboard, mounted read-only at /vboard) so `import machine` finds the virtual one;
#   - boot.py runs, then main.py (only after a reset into the friendly REPL, as on the
#     ESP32: a soft reset from the raw REPL runs boot.py only);
#   - then the REPL (micropython -i) — which sim/serialdev.py puts in raw mode if needed.
#
# Environment: BRT_FLASH (image path), BRT_FLASH_BLOCKS (size in 4 KB blocks),
# BRT_VBOARD (host path of sim/vboard, optional), BRT_MODE ("friendly" or "raw").
import os
import sys


class _FileFlash:
    # A LittleFS block device over a host file: reads/writes/erases go straight to the
    # file, so the image survives the process (a soft or hard reset) like the flash does.
    def __init__(self, path, nblocks, bs=4096):
        self.bs = bs
        self.n = nblocks
        try:
            self.f = open(path, "r+b")
        except OSError:
            self.f = open(path, "w+b")
            blank = b"\xff" * bs
            for _ in range(nblocks):
                self.f.write(blank)
            self.f.flush()

    def readblocks(self, n, buf, off=0):
        self.f.seek(n * self.bs + off)
        self.f.readinto(buf)

    def writeblocks(self, n, buf, off=None):
        self.f.seek(n * self.bs + (off or 0))
        self.f.write(buf)
        self.f.flush()

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self.n
        if op == 5:  # block size
            return self.bs
        if op == 6:  # erase
            self.f.seek(arg * self.bs)
            self.f.write(b"\xff" * self.bs)
            self.f.flush()
            return 0
        return None


def _mount():
    bdev = _FileFlash(os.getenv("BRT_FLASH"), int(os.getenv("BRT_FLASH_BLOCKS") or "512"))
    try:
        vfs = os.VfsLfs2(bdev)
    except OSError:
        # a blank flash: MicroPython's _boot.py formats it on first boot too
        os.VfsLfs2.mkfs(bdev)
        vfs = os.VfsLfs2(bdev)
    vb = os.getenv("BRT_VBOARD")
    os.umount("/")
    os.mount(vfs, "/")
    if vb:
        os.mount(os.VfsPosix(vb), "/vboard", readonly=True)
    os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib"] + (["/vboard"] if vb else [])


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
_mount()
micropython.kbd_intr(3)
if _run("boot.py", globals()) and os.getenv("BRT_MODE") != "raw":
    micropython.kbd_intr(3)
    _run("main.py", globals())
micropython.kbd_intr(3)
del _mount, _run
