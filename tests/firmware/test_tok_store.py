# Trust store (from a trust-list body) and the pass cache, inside MicroPython.
import hashlib

from tokens import cbor_enc, p256
from tokens import cache as C
from tokens.cache import PassCache
from tokens.errors import TokenError
from tokens.reasons import MALFORMED
from tokens.trust import TrustStore

G65 = b"\x04" + p256.GX.to_bytes(32, "big") + p256.GY.to_bytes(32, "big")
KID = hashlib.sha256(G65).digest()[:8]


def row(kid=KID, pub=G65, nb=100, na=200, usage=1):
    return [kid, pub, nb, na, usage]


def reason(body):
    try:
        TrustStore.from_body(body)
    except TokenError as e:
        return e.reason, e.detail
    return None


def test_trust_store_from_body():
    ts = TrustStore.from_body(cbor_enc.dumps([row()]))
    k = ts.get(KID)
    assert len(ts) == 1 and k is not None and ts.get(b"\x00" * 8) is None
    assert (k.x, k.y) == (p256.GX, p256.GY) and k.can_sign_passes()
    assert k.valid_at(99) < 0 and k.valid_at(100) == 0 and k.valid_at(199) == 0
    assert k.valid_at(200) > 0  # not_after is exclusive
    assert not TrustStore.from_body(cbor_enc.dumps([row(usage=2)])).get(KID).can_sign_passes()
    assert len(TrustStore.from_body(cbor_enc.dumps([]))) == 0


def test_bad_trust_lists_are_typed_errors():
    off = b"\x04" + p256.GX.to_bytes(32, "big") + (p256.GY ^ 1).to_bytes(32, "big")
    cases = [
        b"\xff",                                   # not CBOR
        cbor_enc.dumps({1: 2}),                        # not an array
        cbor_enc.dumps([[KID, G65, 1, 2]]),            # 4 fields
        cbor_enc.dumps([row(kid=b"\x00" * 8)]),         # kid is not SHA-256(pub)[:8]
        cbor_enc.dumps([row(kid=KID[:7])]),
        cbor_enc.dumps([row(pub=G65[:64])]),
        cbor_enc.dumps([row(pub=off, kid=hashlib.sha256(off).digest()[:8])]),  # off the curve
        cbor_enc.dumps([row(nb=-1)]),
        cbor_enc.dumps([row(usage=True)]),
        cbor_enc.dumps([row(na=2**32)]),               # not a u32 (docs/ranges.md)
        cbor_enc.dumps([row(nb=5, na=5)]),             # not_before must be < not_after
        cbor_enc.dumps([row(usage=256)]),              # usage is a byte
        cbor_enc.dumps([row(), row()]),                # duplicate kid
        cbor_enc.dumps([row()] * 33),                  # more than 32 keys
    ]
    for body in cases:
        got = reason(body)
        assert got is not None and got[0] == MALFORMED, (body, got)


def _fill(c, tag, iat=1_800_000_000):
    """Fill the scratch entry as the verifier does for a pass tagged `tag`."""
    e = c.scratch()
    C.put_u32(e, C.E_IAT, iat)
    C.put_u32(e, C.E_EXP, iat + 86400 * 7)
    C.put_u32(e, C.E_ALLOW, 10_000_000)
    e[C.E_CAT] = 1
    e[C.E_OPOK] = 1
    w = b"wallet-" + tag
    p = b"pass-" + tag
    e[C.E_WLEN] = len(w)
    e[C.E_WALLET:C.E_WALLET + len(w)] = w
    e[C.E_PLEN] = len(p)
    e[C.E_PASS:C.E_PASS + len(p)] = p
    e[C.E_Q:C.E_Q + 64] = bytes(range(64))


def _wallet(c, k):
    e = c.entry(k)
    return bytes(e[C.E_WALLET:C.E_WALLET + e[C.E_WLEN]])


def _k(tag):
    return (tag * 16)[:16]


def _put(c, tag, iat=1_800_000_000):
    _fill(c, tag, iat)
    return c.commit(_k(tag))


def test_pass_cache_is_lru_and_bounded():
    c = PassCache(3)
    for k in (b"a", b"b", b"c"):
        _put(c, k)
    k = c.find(_k(b"a"))
    assert _wallet(c, k) == b"wallet-a"                  # a is now the most recent
    _put(c, b"d")                                        # evicts b, the least recently used
    assert c.find(_k(b"b")) == -1
    e = c.entry(c.find(_k(b"c")))
    assert bytes(e[C.E_PASS:C.E_PASS + e[C.E_PLEN]]) == b"pass-c"
    assert _wallet(c, c.find(_k(b"d"))) == b"wallet-d"
    assert len(c) == 3 and c.hits == 3 and c.misses == 1
    _put(c, b"d", 5)                                     # the same key: its row, updated
    assert len(c) == 3 and C.u32(c.entry(c.find(_k(b"d"))), C.E_IAT) == 5
    e = c.entry(c.find(_k(b"a")))
    assert C.u32(e, C.E_IAT) == 1_800_000_000 and C.u32(e, C.E_EXP) == 1_800_000_000 + 604800
    assert C.u32(e, C.E_ALLOW) == 10_000_000 and e[C.E_CAT] == 1 and e[C.E_OPOK] == 1
    assert bytes(e[C.E_Q:C.E_Q + 64]) == bytes(range(64))
    c.clear()
    assert len(c) == 0 and c.find(_k(b"a")) == -1
    # a cache of size 0 keeps nothing, and commit hands back the scratch row to read from
    off = PassCache(0)
    k = _put(off, b"x")
    assert _wallet(off, k) == b"wallet-x" and off.find(_k(b"x")) == -1


def test_pass_cache_table_is_fixed_and_a_tap_leaves_no_garbage():
    import gc
    c = PassCache(16)
    for i in range(40):                                  # fill, then evict 24 times
        _put(c, bytes([65 + i % 26, i]))
    gc.collect()
    before = gc.mem_alloc()
    grown = 0
    for i in range(40, 80):
        key = _k(bytes([65 + i % 26, i]))
        _fill(c, bytes([65 + i % 26, i]))
        gc.disable()
        a0 = gc.mem_alloc()
        k = c.commit(key)
        k2 = c.find(key)
        grown += gc.mem_alloc() - a0
        gc.enable()
        assert k == k2
    # a miss's commit and a hit's find leave nothing but a view or two (where objects per
    # pass left ~850 bytes each)
    assert grown <= 40 * 64, grown
    gc.collect()
    assert gc.mem_alloc() <= before   # a full cache takes no more heap as passes come
    last = bytes([65 + 79 % 26, 79])
    assert len(c) == 16 and _wallet(c, c.find(_k(last))) == b"wallet-" + last
    # a key of the wrong size is neither found nor cached
    assert c.find(b"short") == -1
    assert c.commit(b"short") == 16 and len(c) == 16


def test_u32_fields_at_their_limits():
    b = bytearray(8)
    for v in (0, 1, 0xFF, 0x100, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF):
        C.put_u32(b, 3, v)
        assert C.u32(b, 3) == v and b[0:3] == bytes(3)
