# Small file helpers for /data (the firmware's files on LittleFS).
#
# write_atomic: LittleFS renames atomically, so "write name.tmp, then rename over name"
# means a power cut leaves either the whole old file or the whole new one, never a mix.
# A stale name.tmp from a cut is harmless: the next write_atomic truncates it.
import os

DATA = "/data"


def write_atomic(path, data):
    """Replace `path` with `data` (bytes, or an iterable of byte chunks) atomically."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        if isinstance(data, (bytes, bytearray, memoryview)):
            f.write(data)
        else:
            for chunk in data:
                f.write(chunk)
    os.rename(tmp, path)


def read_bytes(path, default=None):
    """The whole file, or `default` if it does not exist."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        if e.errno == 2:  # ENOENT
            return default
        raise


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def size(path):
    """Size in bytes, or -1 if the file does not exist."""
    try:
        return os.stat(path)[6]
    except OSError:
        return -1


def remove(path):
    """Remove a file; True if it existed."""
    try:
        os.remove(path)
        return True
    except OSError:
        return False
