# Strict CBOR decoding, the encoder, base45 and the NFC APDU helper, byte for byte
# (inside MicroPython, heap 128K).
from tokens import apdu, base45, cbor, cbor_enc
from tokens.errors import TokenError
from tokens.reasons import BAD_CBOR, BAD_ENCODING, MALFORMED, TOO_LARGE


def reason(fn, *a, **kw):
    try:
        fn(*a, **kw)
    except TokenError as e:
        return e.reason
    return None


def test_decodes_the_types_the_format_uses():
    assert cbor.loads(bytes.fromhex("00")) == 0
    assert cbor.loads(bytes.fromhex("17")) == 23
    assert cbor.loads(bytes.fromhex("1818")) == 24
    assert cbor.loads(bytes.fromhex("1903e8")) == 1000
    assert cbor.loads(bytes.fromhex("1a6b0c44de")) == 0x6B0C44DE
    assert cbor.loads(bytes.fromhex("1b000000e8d4a51000")) == 1000000000000
    assert cbor.loads(bytes.fromhex("20")) == -1
    assert cbor.loads(bytes.fromhex("3903e7")) == -1000
    assert cbor.loads(bytes.fromhex("3bffffffffffffffff")) == -2 ** 64
    assert cbor.loads(bytes.fromhex("4401020304")) == b"\x01\x02\x03\x04"
    assert cbor.loads(bytes.fromhex("6449455446")) == "IETF"
    assert cbor.loads(bytes.fromhex("62c3bc")) == "\u00fc"
    assert cbor.loads(bytes.fromhex("8301820203820405")) == [1, [2, 3], [4, 5]]
    assert cbor.loads(bytes.fromhex("a201020304")) == {1: 2, 3: 4}
    assert cbor.loads(bytes.fromhex("f4f5f6")[0:1]) is False
    assert cbor.loads(b"\xf5") is True and cbor.loads(b"\xf6") is None


def test_refuses_what_strict_cbor_forbids():
    bad = [
        "1817",              # 23 in two bytes: not shortest
        "190017",            # 23 in three bytes
        "1a0000ffff",        # 65535 in five bytes
        "1b00000000ffffffff",
        "5f4101ff",          # indefinite bstr
        "9f01ff",            # indefinite array
        "bf0102ff",          # indefinite map
        "1c", "1d", "1e",    # reserved
        "c0617a",            # tag
        "f93c00",            # half float
        "fb3ff0000000000000",  # double
        "f7", "f0", "f820",  # undefined, simple values
        "a201020103",        # duplicate key
        "a1800102",          # array as map key (and trailing)
        "a18001",            # array as map key
        "62c328",            # invalid UTF-8
        "0001",              # trailing byte
        "",                  # empty
        "19",                # truncated head
        "4501",              # bstr longer than the data
        "5bffffffffffffffff",  # 2^64-1 bytes declared: refused before any allocation
        "9bffffffffffffffff",
        "bb7fffffffffffffff",
    ]
    for h in bad:
        assert reason(cbor.loads, bytes.fromhex(h)) == BAD_CBOR, h


def test_depth_and_item_limits():
    deep = b"\x81" * 6 + b"\x00"
    assert cbor.loads(deep) is not None
    assert reason(cbor.loads, b"\x81" * 7 + b"\x00") == BAD_CBOR
    assert reason(cbor.loads, b"\x81" * 3000 + b"\x00") == BAD_CBOR
    many = b"\x98\x80" + b"\x00" * 128  # 128 items + the array itself
    assert reason(cbor.loads, many) == BAD_CBOR
    assert len(cbor.loads(many, max_items=200)) == 128


def test_encoder_is_deterministic_and_round_trips():
    v = {10: 1, 1: [b"ab", "x", True, None, -300], -1: {2: 18446744073709551615}}
    b = cbor_enc.dumps(v)
    # keys in bytewise order of their encoding: 01, 0a, 20
    assert b == bytes.fromhex("a3" "0185426162617" "8f5f6390" "12b" "0a01" "20a1021bffffffffffffffff"
                              .replace(" ", ""))
    assert cbor.loads(b) == v
    assert cbor.head(2, 23) == b"\x57" and cbor.head(2, 24) == b"\x58\x18"
    assert cbor.head(0, 65536) == b"\x1a\x00\x01\x00\x00"


def test_base45_rfc9285_examples():
    assert base45.encode(b"AB") == b"BB8"
    assert base45.encode(b"Hello!!") == b"%69 VD92EX0"
    assert base45.encode(b"base-45") == b"UJCLQE7W581"
    assert bytes(base45.decode(b"QED8WEX0")) == b"ietf!"
    assert bytes(base45.decode(b"")) == b""
    assert reason(base45.decode, b"GGW") == BAD_ENCODING      # 65535 < value
    assert reason(base45.decode, b"ZZZ") == BAD_ENCODING
    assert reason(base45.decode, b"A") == BAD_ENCODING        # length 1 mod 3
    assert reason(base45.decode, b"aB8") == BAD_ENCODING      # lower case
    assert reason(base45.decode, b":Z") == BAD_ENCODING       # final pair > 255
    # into a buffer (the verifier's, no allocation): the byte count; no room is TOO_LARGE
    out = bytearray(8)
    assert base45.decode_into(b"xQED8WEX0", 1, 9, out) == 5 and out[:5] == b"ietf!"
    assert reason(base45.decode_into, b"QED8WEX0", 0, 8, bytearray(4)) == 2


class Phone:
    # a scripted card: answers with the given responses, records the commands
    def __init__(self, answers):
        self.answers = list(answers)
        self.cmds = []

    def __call__(self, cmd):
        self.cmds.append(bytes(cmd))
        return self.answers.pop(0)


def test_apdu_select_and_chained_answer_exact_bytes():
    data = bytes(range(256)) + bytes(44)   # 300 bytes: 250 + 50
    ph = Phone([b"\x01\x90\x00", data[:250] + b"\x61\x32", data[250:] + b"\x90\x00"])
    assert apdu.select(ph) == 1
    buf = bytearray(512)
    got = apdu.read_token(ph, bytes(range(16)), buf)
    assert bytes(got) == data
    assert ph.cmds == [bytes.fromhex("00a4040005f04252543100"),
                       bytes.fromhex("8054000010000102030405060708090a0b0c0d0e0f00"),
                       bytes.fromhex("00c0000032")]


def test_apdu_errors_are_typed():
    assert reason(apdu.select, Phone([b"\x6a\x82"])) == MALFORMED
    assert reason(apdu.read_token, Phone([b"\x69\x85"]), bytes(16)) == MALFORMED
    assert reason(apdu.read_token, Phone([b"\x90"]), bytes(16)) == MALFORMED
    endless = Phone([b"\x00" * 250 + b"\x61\x00"] * 5)
    assert reason(apdu.read_token, endless, bytes(16), bytearray(512)) == TOO_LARGE
    tiny = Phone([b"\x00\x61\x01"] * 100)  # one byte at a time, forever
    assert reason(apdu.read_token, tiny, bytes(16), bytearray(512)) == MALFORMED
