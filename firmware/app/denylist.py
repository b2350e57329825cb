# Deny-list lookup on the installed signed file, by binary search with seeks.
#
# Format (docs/ARCHITECTURE.md 'Bundles', kind 2): an 18-byte bundle header, a body of
# N/8 sorted 8-byte entries, a 64-byte signature. Entry = SHA-256(b"W"+wallet_id)[:8] or
# SHA-256(b"P"+pass_id)[:8]. The signature was checked when the bundle was installed
# (bundles.py, tmp + verify + rename), so here only the header and the size are checked.
# 100,000 entries are 800 KB: the file is never read into RAM, one 8-byte buffer is reused,
# and a lookup costs about log2(N) = 17 seeks.
import hashlib

from micropython import const

HEADER = const(18)
SIG = const(64)
ENTRY = const(8)
KIND_DENY = const(2)


class DenyListError(Exception):
    pass


def key(tag, ident):
    """The 8-byte deny-list key of a wallet (tag b"W") or pass (tag b"P") id."""
    h = hashlib.sha256(tag)
    h.update(ident)
    return h.digest()[:ENTRY]


class DenyList:
    """Open with DenyList.open(path); missing file = empty list (nothing revoked yet)."""

    def __init__(self, f, count, version):
        self._f = f
        self.count = count
        self.version = version
        self._buf = bytearray(ENTRY)

    @classmethod
    def empty(cls):
        return cls(None, 0, 0)

    @classmethod
    def open(cls, path):
        try:
            f = open(path, "rb")
        except OSError:
            return cls.empty()
        try:
            hdr = f.read(HEADER)
            if len(hdr) != HEADER or hdr[0:4] != b"BRTB" or hdr[4] != 1:
                raise DenyListError("not a bundle")
            if hdr[5] != KIND_DENY:
                raise DenyListError("not a deny-list bundle")
            version = int.from_bytes(hdr[6:10], "big")
            n = int.from_bytes(hdr[14:18], "big")
            if n % ENTRY:
                raise DenyListError("body not a whole number of entries")
            size = f.seek(0, 2)
            if size != HEADER + n + SIG:
                raise DenyListError("file size does not match its header")
        except DenyListError:
            f.close()
            raise
        except OSError:
            f.close()
            raise DenyListError("cannot read deny list")
        return cls(f, n // ENTRY, version)

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None

    def contains(self, k):
        """True if the 8-byte key is listed. DenyListError if the file cannot be read."""
        f = self._f
        if f is None:
            return False
        buf = self._buf
        lo, hi = 0, self.count - 1
        try:
            while lo <= hi:
                mid = (lo + hi) >> 1
                f.seek(HEADER + ENTRY * mid)
                if f.readinto(buf) != ENTRY:
                    raise DenyListError("short read")
                if buf == k:
                    return True
                if buf < k:
                    lo = mid + 1
                else:
                    hi = mid - 1
        except OSError:
            raise DenyListError("cannot read deny list")
        return False

    def denies(self, wallet_key, pass_key):
        """True if the wallet or the pass is revoked (by their keys, which the tap path
        computes once: the pass's is the allowance's key too)."""
        if self._f is None:
            return False
        return self.contains(wallet_key) or self.contains(pass_key)
