# firmware/bundles.py inside MicroPython: streaming install, atomic replace, typed refusals,
# and the reader API the validator app uses. The ES256 check is injected here as a
# function that accepts exactly the SHA-256 the host would sign (so these tests check the
# streamed digest byte for byte); the real P-256 path runs in tests/host/test_bundles_fw.py.
import hashlib
import os
import random
import struct

import bundles
from app import denylist
from bundles import BundleError

KEY = b"\x04" + b"K" * 64
GOOD_SIG = b"S" * 64


_D = "/tmp/brt_bundle_test_%d" % random.getrandbits(30)


def _dir():
    d = _D
    try:
        os.mkdir(d)
    except OSError:
        pass
    for name in os.listdir(d):
        os.remove(d + "/" + name)
    return d


def make(kind, version, body, sig=GOOD_SIG, fmt=1, magic=b"BRTB"):
    head = magic + struct.pack(">BBIII", fmt, kind, version, 1760000000, len(body))
    return head + body + sig


class Verifier:
    """Accepts a signature iff it is GOOD_SIG over the digest of `expected` bytes."""

    def __init__(self):
        self.calls = 0
        self.expected = None

    def __call__(self, key, digest, sig):
        self.calls += 1
        assert key == KEY
        return sig == GOOD_SIG and digest == hashlib.sha256(self.expected).digest()


def install(d, data, chunk=7, expect_kind=0):
    v = Verifier()
    v.expected = data[:-64]
    inst = bundles.Installer(d, KEY, v, expect_kind)
    for i in range(0, len(data), chunk):
        inst.feed(data[i:i + chunk])
    return inst.finish(), v


def reason(fn):
    try:
        fn()
    except BundleError as e:
        return e.reason
    return None


def test_install_fares_streamed_then_read_back():
    d = _dir()
    body = b"\xa2ccurcIDRefares\xa2\x00\x19\r\xac\x01\x19\x03\xe8"
    for chunk in (1, 5, 18, 64, 4096):
        d = _dir()
        h, v = install(d, make(3, 2, body), chunk)
        assert (h.kind, h.version, h.length) == (3, 2, len(body))
        assert v.calls == 1
        with bundles.open_installed(d, bundles.FARES) as r:
            assert r.header.version == 2 and r.header.issued_at == 1760000000
            assert r.body() == body
            buf = bytearray(4)
            assert r.read_at(2, buf) == 4 and bytes(buf) == body[2:6]
        assert "fares.cose.tmp" not in os.listdir(d)
    assert bundles.installed_version(d, bundles.FARES) == 2


def test_newer_replaces_stale_and_equal_refused():
    d = _dir()
    install(d, make(3, 5, b"five"))
    assert reason(lambda: install(d, make(3, 5, b"same"))) == bundles.STALE
    assert reason(lambda: install(d, make(3, 4, b"older"))) == bundles.STALE
    with bundles.open_installed(d, 3) as r:
        assert r.body() == b"five"
    install(d, make(3, 6, b"six"))
    with bundles.open_installed(d, 3) as r:
        assert r.body() == b"six"
    assert sorted(os.listdir(d)) == ["fares.cose"]


def test_forged_signature_and_tampered_body_leave_installed_file():
    d = _dir()
    install(d, make(1, 1, b"trust-1"))
    assert reason(lambda: install(d, make(1, 2, b"trust-2", sig=b"X" * 64))) == bundles.BAD_SIGNATURE
    # body changed after signing: the verifier sees a different digest
    v = Verifier()
    v.expected = make(1, 2, b"trust-2")[:-64]
    inst = bundles.Installer(d, KEY, v)
    inst.feed(make(1, 2, b"trust-X"))
    assert reason(inst.finish) == bundles.BAD_SIGNATURE
    with bundles.open_installed(d, 1) as r:
        assert r.header.version == 1 and r.body() == b"trust-1"
    assert sorted(os.listdir(d)) == ["trust.cose"]


def test_truncated_at_every_length_is_refused():
    d = _dir()
    data = make(3, 9, b"0123456789")
    for cut in range(len(data)):
        got = reason(lambda c=cut: install(d, data[:c]))
        assert got == bundles.TRUNCATED, (cut, got)
        assert os.listdir(d) == [], cut
    assert reason(lambda: install(d, data + b"!")) == bundles.TRAILING


def test_header_refusals():
    d = _dir()
    assert reason(lambda: install(d, make(3, 1, b"x", magic=b"BRTX"))) == bundles.BAD_MAGIC
    assert reason(lambda: install(d, make(3, 1, b"x", fmt=2))) == bundles.BAD_FORMAT
    assert reason(lambda: install(d, make(9, 1, b"x"))) == bundles.BAD_KIND
    assert reason(lambda: install(d, make(5, 1, b"x"))) == bundles.BAD_KIND  # delta: host only
    assert reason(lambda: install(d, make(3, 1, b"x"), expect_kind=2)) == bundles.WRONG_KIND
    # oversized: refused from the header alone, before any body byte is stored
    big = make(3, 1, b"")[:14] + struct.pack(">I", 4097)
    inst = bundles.Installer(d, KEY, Verifier())
    assert reason(lambda: inst.feed(big)) == bundles.TOO_LARGE
    assert os.listdir(d) == []


def test_deny_list_order_checked_and_binary_search():
    d = _dir()
    keys = sorted(set(denylist.key(b"W", b"wallet-%d" % i) for i in range(150)))
    body = b"".join(keys)
    bad = keys[1] + keys[0] + b"".join(keys[2:])
    dup = keys[0] + b"".join(keys)
    assert reason(lambda: install(d, make(2, 1, bad), chunk=13)) == bundles.BAD_BODY
    assert reason(lambda: install(d, make(2, 1, dup), chunk=8)) == bundles.BAD_BODY
    assert reason(lambda: install(d, make(2, 1, body[:-3]))) == bundles.BAD_BODY
    install(d, make(2, 1, body), chunk=13)
    # the installed file is what the validator's lookup (app/denylist.py) searches
    dl = denylist.DenyList.open(bundles.path_for(d, bundles.DENY))
    try:
        assert dl.count == 150
        for k in keys:
            assert dl.contains(k)
        for i in range(150, 250):
            assert not dl.contains(denylist.key(b"W", b"wallet-%d" % i))
        assert not dl.contains(b"\x00" * 8)
        assert not dl.contains(b"\xff" * 8)
    finally:
        dl.close()


def test_large_deny_list_streams_in_bounded_memory():
    import gc

    d = _dir()
    n = 19968  # 160 KB body: more than the whole 128 KB heap
    h = hashlib.sha256()
    head = b"BRTB" + struct.pack(">BBIII", 1, 2, 3, 1760000000, 8 * n)
    h.update(head)
    inst = bundles.Installer(d, KEY, lambda k, dg, s: dg == h.digest() and s == GOOD_SIG)
    inst.feed(head)
    chunk = bytearray(512)
    gc.collect()
    low = gc.mem_free()
    i = 0
    while i < n:
        for j in range(64):
            struct.pack_into(">II", chunk, 8 * j, 0, i + j)
        h.update(chunk)
        inst.feed(chunk)
        i += 64
        low = min(low, gc.mem_free())
    inst.feed(GOOD_SIG)
    assert inst.finish().length == 8 * n
    assert os.stat(d + "/deny.bin")[6] == 18 + 8 * n + 64
    # streaming kept the live heap far below the body size (160 KB on a 128 KB heap)
    assert gc.mem_free() - low < 16384, gc.mem_free() - low


def test_check_file_and_install_file():
    d = _dir()
    src = d + "/staged.bin"
    data = make(4, 3, b"\xa1jpassback_s\x18x")
    with open(src, "wb") as f:
        f.write(data)
    v = Verifier()
    v.expected = data[:-64]
    h = bundles.install_file(src, d, KEY, v, buf=bytearray(5))
    assert h.kind == bundles.CONFIG
    assert bundles.check_file(d + "/config.bun", KEY, v).version == 3
    with open(d + "/config.bun", "ab") as f:
        f.write(b"z")
    assert reason(lambda: bundles.check_file(d + "/config.bun", KEY, v)) == bundles.TRAILING
    assert reason(lambda: bundles.open_installed(d, bundles.TRUST)) == bundles.NOT_INSTALLED
