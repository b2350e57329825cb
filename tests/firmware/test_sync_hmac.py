# firmware/hmac256.py against the RFC 4231 HMAC-SHA256 test vectors, inside MicroPython.
import binascii

import hmac256

H = binascii.unhexlify

# (key, data, expected HMAC-SHA256) — RFC 4231 test cases 1, 2, 3, 4, 6, 7
VECTORS = [
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (H("0102030405060708090a0b0c0d0e0f10111213141516171819"), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger than "
     b"block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


def test_rfc4231_vectors():
    for key, data, want in VECTORS:
        assert binascii.hexlify(hmac256.hmac_sha256(key, data)).decode() == want


def test_streaming_equals_one_shot():
    k = hmac256.Key(b"secret" * 6)
    data = bytes(range(256)) * 3
    h = k.new()
    for i in range(0, len(data), 29):
        h.update(memoryview(data)[i:i + 29])
    assert h.digest() == k.mac(data) == hmac256.hmac_sha256(b"secret" * 6, data)


def test_equal():
    a = hmac256.hmac_sha256(b"k", b"x")
    assert hmac256.equal(a, bytes(a))
    assert not hmac256.equal(a, a[:-1] + bytes([a[-1] ^ 1]))
    assert not hmac256.equal(a, a[:31])
