"""`flash`: write a MicroPython release image with esptool used as a library.

Chip detection, the image offset for that chip (the ESP32 and ESP32-S2 boot from 0x1000,
the newer chips from 0x0), write with compression, verify by reading the flash back,
hard reset. Skipped when the board already answers with the wanted MicroPython version.
esptool talks the ROM bootloader's protocol; `esp` below is its ESPLoader.

The image's bootloader header gets the flash size esptool detects (16 MB on the reference
board): the bootloader refuses any partition that ends past the size in that header, and
the validator's table (partition.py) uses all 16 MB. A release image also carries
MicroPython's own partition table (it is bootloader + table + app from 0x0): on a board
that already has the validator's table, the table is written back in the same session,
or the board would boot with the stock layout (journal gone, LittleFS unmountable).
"""

import contextlib
import pathlib
import re

from . import parttable
from .errors import BadConfig, NoAnswer, ProvisionError, WrongChip

OFFSETS = {"ESP32": 0x1000, "ESP32-S2": 0x1000, "ESP32-S3": 0x0, "ESP32-C3": 0x0,
           "ESP32-C6": 0x0}


def image_version(path):
    m = re.search(r"v(\d+\.\d+(?:\.\d+)?)", pathlib.Path(path).name)
    return m.group(1) if m else None


def running_version(link):
    """'1.29.0' if a MicroPython REPL answers on the port, else None."""
    try:
        out = link.exec("import sys\nprint('@@V', '.'.join(str(x) for x in "
                        "sys.implementation.version[:3]), sys.platform)\n", timeout=5)
    except ProvisionError:
        return None
    for line in out.splitlines():
        if line.startswith("@@V "):
            return line.split()[1]
    return None


@contextlib.contextmanager
def bootloader(esptool_cmds, port, hint):
    """esptool's loader for the ROM bootloader on `port`, as one session (flash and
    partition): no answer is NoAnswer with `hint` for the technician, an esptool error inside
    the session is NoAnswer too, and the serial port is closed at the end whatever happened
    (run_stub's loader shares it)."""
    import esptool
    try:
        esp = esptool_cmds.detect_chip(port, 115200)
    except (esptool.FatalError, OSError) as e:
        raise NoAnswer("no ESP32 bootloader answers on %s: %s" % (port, e), hint) from None
    try:
        yield esp
    except esptool.FatalError as e:
        raise NoAnswer("esptool: %s" % e) from None
    finally:
        try:
            esp._port.close()
        except Exception:  # noqa: BLE001 - closing a port that may already be gone
            pass


def flash(port, image, chip="ESP32-S3", want_version=None, link=None, say=print, esptool_cmds=None,
          baud=460800):
    """Flash `image`; returns {"skipped": bool, "chip", "offset", "version"}."""
    path = pathlib.Path(image)
    if not path.is_file():
        raise BadConfig("no firmware image %s" % image)
    want = want_version or image_version(path)
    if link is not None and want:
        have = running_version(link)
        if have and (have == want or have.startswith(want + ".") or want.startswith(have)):
            say("flash: board already runs MicroPython %s — skipped" % have)
            return {"skipped": True, "chip": chip, "version": have}
        link.close()
    if esptool_cmds is None:
        import esptool.cmds as esptool_cmds
    with bootloader(esptool_cmds, port,
                    "hold BOOT while pressing EN, or check the USB cable") as esp:
        name = esp.CHIP_NAME
        if name != chip:
            raise WrongChip("this board is an %s, expected %s" % (name, chip),
                            "use the image for %s, or --chip %s" % (chip, name))
        offset = OFFSETS.get(name)
        if offset is None:
            raise WrongChip("no MicroPython image offset known for %s" % name)
        say("flash: %s detected, writing %s at 0x%x" % (name, path.name, offset))
        esp = esptool_cmds.run_stub(esp)
        if baud and baud != 115200:
            esp.change_baud(baud)
        esptool_cmds.attach_flash(esp)
        data = path.read_bytes()
        keep = _validator_table(esptool_cmds, esp)
        writes = [(offset, data)]
        if keep is not None and offset <= parttable.TABLE_OFFSET < offset + len(data):
            writes.append((parttable.TABLE_OFFSET, keep))
        for w in writes:
            esptool_cmds.write_flash(esp, [w], compress=True, flash_size="detect")
        for w in writes:
            esptool_cmds.verify_flash(esp, [w], flash_size="detect")
        if len(writes) > 1:
            say("flash: the validator's partition table kept")
        esptool_cmds.reset_chip(esp, "hard-reset")
    return {"skipped": False, "chip": name, "offset": offset, "version": want,
            "table_kept": keep is not None}


def _validator_table(esptool_cmds, esp):
    """The validator table's bytes if the board has it at 0x8000 now, else None."""
    want = parttable.to_binary(parttable.VALIDATOR_16MB)
    have = esptool_cmds.read_flash(esp, parttable.TABLE_OFFSET, parttable.TABLE_MAX)
    return want if bytes(have) == want else None
