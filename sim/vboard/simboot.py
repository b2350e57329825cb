# The simulator's stand-in for the ESP32's _boot.py (MicroPython unix port).
#
#   MICROPYPATH=firmware:sim/vboard micropython sim/vboard/simboot.py <flash image> [main.py]
#
# On the ESP32, _boot.py mounts LittleFS (the `vfs` partition) at "/" before main.py runs,
# and the firmware keeps its files in /data. Here the firmware's code comes from the host
# (MICROPYPATH), so only the data needs the flash: this mounts a LittleFS on the flash
# model's `vfs` partition at /data — formatting it on first boot, like _boot.py does when
# the mount fails — attaches the chip to the `esp32` shim (so the journal finds its raw
# `journal` partition with esp32.Partition.find), then runs firmware/main.py as __main__.
#
# The flash image is a file written through on every program/erase: killing this process
# is a power cut, and the contents survive exactly as far as they got.
# Optional: BRT_POWERCUT="<op index>[:<seed>]" cuts the power inside the process at that
# flash operation instead (flashdev.PowerCut unwinds to here; exit status 3).
import os
import sys

import esp32
import flashdev

EXIT_POWERCUT = 3


def mount_data(flash):
    """Attach the chip to esp32 and mount its vfs partition at /data; returns the parts."""
    parts = esp32.attach(flash)
    vfs = parts["vfs"]
    try:
        fs = os.VfsLfs2(vfs)
    except OSError:  # first boot (erased flash) or no filesystem: format, like _boot.py
        os.VfsLfs2.mkfs(vfs)
        fs = os.VfsLfs2(vfs)
    os.mount(fs, "/data")
    return parts


def find_main(argv):
    if len(argv) > 2:
        return argv[2]
    for d in sys.path:
        p = (d or ".") + "/main.py"
        try:
            os.stat(p)
            return p
        except OSError:
            pass
    raise SystemExit("simboot: no main.py on MICROPYPATH")


def arm_from_env(flash):
    spec = os.getenv("BRT_POWERCUT")
    if not spec:
        return
    op, _, seed = spec.partition(":")
    flash.arm_cut(int(op), int(seed or "1"))


def main(argv):
    if len(argv) < 2:
        print("usage: simboot.py <flash image> [main.py]")
        return 2
    import parttable  # a whole-chip image (with its partition table) keeps its size
    flash = flashdev.Flash(parttable.image_size(argv[1], flashdev.DATA_SIZE), path=argv[1])
    try:
        mount_data(flash)
        arm_from_env(flash)
        path = find_main(argv)
        with open(path) as f:
            src = f.read()
        exec(compile(src, path, "exec"), {"__name__": "__main__", "__file__": path})
    except flashdev.PowerCut:
        print("simboot: power cut at flash operation", flash.op_index - 1)
        return EXIT_POWERCUT
    finally:
        flash.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
