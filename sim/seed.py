# Seeds the simulator's flash image with what provisioning would have written to /data
# (MicroPython unix port; run by sim/launcher.py on first start, never by the firmware).
#
#   micropython sim/seed.py <flash image> <host dir with the files>
#
# Mounts the flash model's `vfs` partition as LittleFS at /data exactly as
# sim/vboard/simboot.py does (formatting it when it holds no filesystem), and copies every
# file of the host directory into /data with the firmware's own write-then-rename rule.
import os
import sys

import flashdev
import parttable
import simboot


def main():
    image, src = sys.argv[1], sys.argv[2]
    # sim/launcher.py made the image: the 16 MB chip with the validator's partition table
    flash = flashdev.Flash(parttable.image_size(image, flashdev.DATA_SIZE), path=image)
    simboot.mount_data(flash)
    n = 0
    for name in os.listdir(src):
        with open(src + "/" + name, "rb") as f:
            data = f.read()
        with open("/data/" + name + ".tmp", "wb") as f:
            f.write(data)
        os.rename("/data/" + name + ".tmp", "/data/" + name)
        n += 1
    os.umount("/data")
    flash.close()
    print("seeded", n, "files")


main()
