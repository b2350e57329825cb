# Trust store (from a trust-list body) and the pass cache, inside MicroPython.
import hashlib

from tokens import cbor_enc, p256
from tokens.cache import PassCache, PassInfo
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


def _info(tag, iat=1_800_000_000):
    return PassInfo(b"kid-" + tag + b"xxx", "BRTW", iat, iat + 86400 * 7, b"wallet-" + tag,
                    b"pass-" + tag, 1, 10_000_000, "TSM", bytes(range(64)))


def _fields(i):
    return (i.kid, i.iss, i.iat, i.exp, i.wallet_id, i.pass_id, i.category, i.allowance,
            i.operator, i.q)


def _k(tag):
    return (tag * 16)[:16]


def test_pass_cache_is_lru_and_bounded():
    c = PassCache(3)
    for k in (b"a", b"b", b"c"):
        c.put(_k(k), _info(k))
    assert c.get(_k(b"a")).wallet_id == b"wallet-a"     # a is now the most recent
    c.put(_k(b"d"), _info(b"d"))                        # evicts b, the least recently used
    assert c.get(_k(b"b")) is None and c.get(_k(b"c")).pass_id == b"pass-c"
    assert c.get(_k(b"d")).kid == b"kid-dxxx"
    assert len(c) == 3 and c.hits == 3 and c.misses == 1
    c.put(_k(b"d"), _info(b"d", 5))
    assert len(c) == 3 and c.get(_k(b"d")).iat == 5
    assert _fields(c.get(_k(b"a"))) == _fields(_info(b"a"))
    c.clear()
    assert len(c) == 0 and c.get(_k(b"a")) is None
    off = PassCache(0)
    off.put(_k(b"x"), _info(b"x"))
    assert off.get(_k(b"x")) is None


def test_pass_cache_table_is_fixed_and_refuses_what_does_not_fit():
    import gc
    c = PassCache(16)
    for i in range(40):                                  # fill, then evict 24 times
        c.put(_k(bytes([65 + i % 26, i])), _info(b"%02d" % i))
    gc.collect()
    before = gc.mem_alloc()
    for i in range(40, 80):
        c.put(_k(bytes([65 + i % 26, i])), _info(b"%02d" % i))
    gc.collect()
    assert gc.mem_alloc() <= before   # a full cache takes no more heap as passes come
    assert len(c) == 16 and c.get(_k(bytes([65 + 79 % 26, 79]))).wallet_id == b"wallet-79"
    # a pass too wide for a slot (a long UTF-8 issuer) and a key of the wrong size: not
    # cached, and nothing else disturbed
    wide = PassInfo(b"K" * 8, "\u00e9" * 32, 1, 2, b"W" * 16, b"P" * 16, 0, 0, "OP", bytes(64))
    c.put(_k(b"w"), wide)
    c.put(b"short", _info(b"s"))
    assert c.get(_k(b"w")) is None and c.get(b"short") is None and len(c) == 16


def test_pass_info_packs_every_field_at_its_limits():
    # the widest values the verifier lets through: 64-bit integers, 16-byte ids, a 32-byte
    # issuer, an 8-byte operator; and the narrowest
    big = (1 << 64) - 1
    wide = PassInfo(b"K" * 8, "I" * 32, big, big, b"W" * 16, b"P" * 16, 5, big, "O" * 8,
                    bytes(range(100, 164)))
    narrow = PassInfo(b"k" * 8, "", 0, 0, b"w" * 4, b"p" * 4, 0, 0, "", bytes(64))
    for i in (wide, narrow, _info(b"z")):
        b = i.pack()
        assert isinstance(b, bytes) and len(b) <= 25 + 5 + 8 + 16 + 16 + 32 + 8 + 64
        assert _fields(PassInfo.unpack(b)) == _fields(i)
