# Operator-signed downlink bundles: verify while streaming, install atomically, read back.
#
# Format (docs/bundles.md): "BRTB" | fmt 1 | kind | version u32 | issued_at u32 |
# body length N u32 | body | ES256 signature (r||s) over SHA-256 of everything before it.
#
# A bundle arrives in chunks (from the depot over HTTP, or from a file); `Installer`
# hashes each chunk and writes it to `<name>.tmp` as it comes, so RAM use is bounded by
# the chunk size whatever the body length (a deny list may be ~1 MB). Only after the
# signature checks out, and the version is strictly newer than the installed one, is
# the temporary file renamed over the installed one (LittleFS renames atomically): a
# forged, stale, truncated or oversized bundle leaves the installed one untouched.
import hashlib
import os
import struct

import micropython
from micropython import const

MAGIC = b"BRTB"
FORMAT = const(1)
HEADER = const(18)
SIG = const(64)

TRUST = const(1)
DENY = const(2)
FARES = const(3)
CONFIG = const(4)
DENY_DELTA = const(5)  # host-to-host only (back office -> depot); never installed

# installed file name per kind, under the data directory (docs/ARCHITECTURE.md)
FILES = {TRUST: "trust.cose", DENY: "deny.bin", FARES: "fares.cose", CONFIG: "config.bun"}
# body size limits per kind: a bigger bundle is refused before any byte is written
MAX_BODY = {TRUST: 16384, DENY: 1048576, FARES: 4096, CONFIG: 4096}
DENY_ENTRY = const(8)

# BundleError reasons (one short text each; the sync client reports them to the depot)
TRUNCATED = "truncated"
BAD_MAGIC = "bad_magic"
BAD_FORMAT = "bad_format"
BAD_KIND = "bad_kind"
WRONG_KIND = "wrong_kind"
TOO_LARGE = "too_large"
BAD_BODY = "bad_body"
BAD_SIGNATURE = "bad_signature"
STALE = "stale"
TRAILING = "trailing"
NOT_INSTALLED = "not_installed"
IO = "io"
BAD_CONFIG = "bad_config"  # a config bundle with a key or value outside docs/bundles.md


class BundleError(Exception):
    def __init__(self, reason, detail=""):
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


class Header:
    def __init__(self, kind, version, issued_at, length):
        self.kind = kind
        self.version = version
        self.issued_at = issued_at
        self.length = length


def parse_header(buf):
    """Header of a bundle from its first 18 bytes; BundleError if they are not one."""
    if len(buf) < HEADER:
        raise BundleError(TRUNCATED, "header")
    if bytes(buf[0:4]) != MAGIC:
        raise BundleError(BAD_MAGIC)
    if buf[4] != FORMAT:
        raise BundleError(BAD_FORMAT, str(buf[4]))
    kind = buf[5]
    if kind not in MAX_BODY:
        raise BundleError(BAD_KIND, str(kind))
    version, issued, length = struct.unpack_from(">III", buf, 6)
    if length > MAX_BODY[kind]:
        raise BundleError(TOO_LARGE, "%d > %d" % (length, MAX_BODY[kind]))
    if kind == DENY and length % DENY_ENTRY:
        raise BundleError(BAD_BODY, "deny list length")
    return Header(kind, version, issued, length)


def path_for(data_dir, kind):
    return data_dir + "/" + FILES[kind]


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def installed_header(data_dir, kind):
    """Header of the installed bundle of `kind`, or None if there is none (or it is unreadable)."""
    try:
        with open(path_for(data_dir, kind), "rb") as f:
            return parse_header(f.read(HEADER))
    except (OSError, BundleError):
        return None


def installed_version(data_dir, kind):
    h = installed_header(data_dir, kind)
    return 0 if h is None else h.version


def default_verify():
    """The firmware ES256 verifier on a precomputed digest (firmware/tokens/p256.py)."""
    # imported late: the P-256 code is only needed at install time
    from tokens import p256  # type: ignore[import-not-found,attr-defined]

    return p256.verify_digest


@micropython.viper
def _ascending(buf: ptr8, start: int, end: int, prev: ptr8, first: int) -> int:
    # True if the 8-byte entries in buf[start:end] ascend strictly, starting above `prev`
    # (unless `first`); leaves the last entry in prev. Viper: ~1 MB checks in well under a
    # second on the ESP32, where a bytecode loop would take many seconds.
    i = start
    while i < end:
        if not first:
            k = 0
            cmp = 0
            while k < 8:
                a = buf[i + k]
                b = prev[k]
                if a != b:
                    cmp = 1 if a > b else -1
                    break
                k += 1
            if cmp <= 0:
                return 0
        first = 0
        k = 0
        while k < 8:
            prev[k] = buf[i + k]
            k += 1
        i += 8
    return 1


class Installer:
    """Streams one bundle into `<data_dir>/<file>.tmp`, then verifies and installs it.

    inst = Installer("/data", operator_key, verify)      # no I/O here
    inst.feed(chunk) ...                                  # any chunk sizes
    header = inst.finish()                                # verify, rename; BundleError
    Any error (or `abort()`) removes the temporary file; the installed bundle stays.
    `verify(pubkey65, digest32, sig64) -> bool` is the ES256 check.
    """

    def __init__(self, data_dir, operator_key, verify=None, expect_kind=0):
        self.data_dir = data_dir
        self.key = operator_key
        self.verify = verify
        self.expect_kind = expect_kind
        self.header = None
        self.pos = 0
        self._hdr = bytearray(HEADER)
        self._sig = bytearray(SIG)
        self._hash = hashlib.sha256()
        self._f = None
        self._tmp = None
        self._prev = bytearray(DENY_ENTRY)
        self._ent = bytearray(DENY_ENTRY)
        self._entn = 0
        self._first = 1

    def _on_header(self):
        h = parse_header(self._hdr)
        if self.expect_kind and h.kind != self.expect_kind:
            raise BundleError(WRONG_KIND, "%d, expected %d" % (h.kind, self.expect_kind))
        have = installed_version(self.data_dir, h.kind)
        if h.version <= have:  # refused before downloading the body
            raise BundleError(STALE, "version %d, installed %d" % (h.version, have))
        self.header = h
        self._tmp = path_for(self.data_dir, h.kind) + ".tmp"
        try:
            self._f = open(self._tmp, "wb")
            self._f.write(self._hdr)
        except OSError as e:
            raise BundleError(IO, str(e))
        self._hash.update(self._hdr)

    def _body(self, mv):
        self._hash.update(mv)
        if self.header.kind == DENY:  # type: ignore[union-attr]
            self._check_order(mv)
        try:
            self._f.write(mv)  # type: ignore[union-attr]
        except OSError as e:
            raise BundleError(IO, str(e))

    def _check_order(self, mv):
        n = len(mv)
        i = 0
        if self._entn:  # complete an entry split across chunks
            take = min(DENY_ENTRY - self._entn, n)
            self._ent[self._entn:self._entn + take] = mv[0:take]
            self._entn += take
            i = take
            if self._entn == DENY_ENTRY:
                self._entn = 0
                if not _ascending(self._ent, 0, DENY_ENTRY, self._prev, self._first):  # type: ignore[arg-type]
                    raise BundleError(BAD_BODY, "deny list not strictly ascending")
                self._first = 0
        whole = i + ((n - i) // DENY_ENTRY) * DENY_ENTRY
        if whole > i:
            if not _ascending(mv, i, whole, self._prev, self._first):  # type: ignore[arg-type]
                raise BundleError(BAD_BODY, "deny list not strictly ascending")
            self._first = 0
        if whole < n:
            self._ent[0:n - whole] = mv[whole:n]
            self._entn = n - whole

    def feed(self, data):
        try:
            self._feed(data)
        except BundleError:
            self.abort()
            raise

    def _feed(self, data):
        mv = memoryview(data)
        n = len(mv)
        i = 0
        while i < n:
            pos = self.pos
            if pos < HEADER:
                take = min(HEADER - pos, n - i)
                self._hdr[pos:pos + take] = mv[i:i + take]
                self.pos += take
                i += take
                if self.pos == HEADER:
                    self._on_header()
                continue
            end_body = HEADER + self.header.length  # type: ignore[union-attr]
            if pos < end_body:
                take = min(end_body - pos, n - i)
                self._body(mv[i:i + take])
            elif pos < end_body + SIG:
                take = min(end_body + SIG - pos, n - i)
                off = pos - end_body
                self._sig[off:off + take] = mv[i:i + take]
            else:
                raise BundleError(TRAILING)
            self.pos += take
            i += take

    def finish(self):
        """Verify the signature and install; returns the Header. BundleError otherwise."""
        try:
            return self._finish()
        except BundleError:
            self.abort()
            raise

    def _finish(self):
        h = self.header
        if h is None or self.pos < HEADER + h.length + SIG:
            raise BundleError(TRUNCATED, "%d bytes" % self.pos)
        if self._entn:
            raise BundleError(BAD_BODY, "deny list length")
        try:
            self._f.write(self._sig)  # type: ignore[union-attr]
            self._f.close()  # type: ignore[union-attr]
        except OSError as e:
            raise BundleError(IO, str(e))
        self._f = None
        digest = self._hash.digest()
        verify = self.verify or default_verify()
        if not verify(self.key, digest, bytes(self._sig)):
            raise BundleError(BAD_SIGNATURE)
        if h.kind == CONFIG:  # signed is not enough: a value out of range is refused here
            check_config(self._tmp)
        have = installed_version(self.data_dir, h.kind)
        if h.version <= have:
            raise BundleError(STALE, "version %d, installed %d" % (h.version, have))
        try:
            os.rename(self._tmp, path_for(self.data_dir, h.kind))
        except OSError as e:
            raise BundleError(IO, str(e))
        self._tmp = None
        return h

    def abort(self):
        if self._f is not None:
            try:
                self._f.close()
            except OSError:
                pass
            self._f = None
        if self._tmp is not None and _exists(self._tmp):
            try:
                os.remove(self._tmp)
            except OSError:
                pass
        self._tmp = None


def check_config(path):
    """BundleError(bad_config) unless the config bundle file's body is a map of changes
    app/config.py accepts (every key one a bundle may change, every value in its range).
    Checked before the rename, so an out-of-range config never becomes the installed one
    and can never stop the validator (or its syncing) at the next boot."""
    from app import config as appconfig
    from tokens import cbor
    from tokens.errors import TokenError
    try:
        with open(path, "rb") as f:
            hd = parse_header(f.read(HEADER))
            body = f.read(hd.length)
        changes = cbor.loads(body)
        appconfig.check_changes(changes)
    except appconfig.ConfigError as e:
        raise BundleError(BAD_CONFIG, str(e))
    except (TokenError, ValueError, TypeError):
        raise BundleError(BAD_CONFIG, "body is not a CBOR map")
    except OSError as e:
        raise BundleError(IO, str(e))


def install_file(src, data_dir, operator_key, verify=None, expect_kind=0, buf=None):
    """Install the bundle in file `src` (e.g. staged by provisioning); returns its Header."""
    buf = buf or bytearray(512)
    inst = Installer(data_dir, operator_key, verify, expect_kind)
    try:
        with open(src, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                inst.feed(memoryview(buf)[:n])
    except OSError as e:
        inst.abort()
        raise BundleError(IO, str(e))
    return inst.finish()


def check_file(path, operator_key, verify=None, buf=None):
    """Verify an installed bundle's signature in place (streaming); returns its Header."""
    buf = buf or bytearray(512)
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER)
            hd = parse_header(head)
            h.update(head)
            left = hd.length
            mv = memoryview(buf)
            while left:
                n = f.readinto(mv[:min(left, len(buf))])
                if not n:
                    raise BundleError(TRUNCATED, "body")
                h.update(mv[:n])
                left -= n
            sig = f.read(SIG)
            if len(sig) != SIG:
                raise BundleError(TRUNCATED, "signature")
            if f.read(1):
                raise BundleError(TRAILING)
    except OSError as e:
        raise BundleError(IO, str(e))
    verify = verify or default_verify()
    if not verify(operator_key, h.digest(), sig):
        raise BundleError(BAD_SIGNATURE)
    return hd


class Reader:
    """An installed bundle, opened for reading: header, body, or seeks into the body.

    r = open_installed("/data", bundles.FARES)   # BundleError(NOT_INSTALLED) if none
    r.header.version; r.body(); r.read_at(off, buf); r.close()  (or `with`)
    The signature was checked at install time; `check_file` re-checks it if wanted.
    """

    def __init__(self, f, header):
        self.f = f
        self.header = header

    def body(self):
        """The whole body as bytes (for the small kinds; a deny list should use read_at)."""
        self.f.seek(HEADER)
        data = self.f.read(self.header.length)
        if len(data) != self.header.length:
            raise BundleError(TRUNCATED, "body")
        return data

    def read_at(self, offset, buf):
        """Fill `buf` from body offset `offset`; returns the byte count (short at the end)."""
        if offset < 0 or offset > self.header.length:
            raise BundleError(BAD_BODY, "offset")
        self.f.seek(HEADER + offset)
        n = min(len(buf), self.header.length - offset)
        if n == len(buf):
            return self.f.readinto(buf)
        return self.f.readinto(memoryview(buf)[:n])

    def close(self):
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_bundle(path):
    """Open a bundle file for reading (see Reader); BundleError if missing or malformed."""
    try:
        f = open(path, "rb")
    except OSError:
        raise BundleError(NOT_INSTALLED, path)
    try:
        h = parse_header(f.read(HEADER))
    except BundleError:
        f.close()
        raise
    return Reader(f, h)


def open_installed(data_dir, kind):
    return open_bundle(path_for(data_dir, kind))

