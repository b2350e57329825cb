"""host/bundles.py: build, sign, parse, merge — and the same bytes through firmware/bundles.py
under MicroPython (header parse, streamed digest, install)."""

import hashlib

import cbor2
import pytest
from hypothesis import given, settings, strategies as st

from host import bundles as hb
from tests.support.mp import run_code

KEY = hb.generate_key()
PUB = hb.public_bytes(KEY)
OTHER = hb.generate_key()


def test_round_trip_every_kind():
    issuer = hb.public_bytes(hb.generate_key())
    bodies = {
        hb.TRUST: hb.trust_body([(issuer, 1700000000, 1900000000, hb.USAGE_PASS)]),
        hb.DENY: hb.deny_body([hb.deny_entry(b"W", b"w%d" % i) for i in range(50)]),
        hb.FARES: hb.fares_body({0: 3500, 1: 1000, 2: 1000, 3: 1000, 4: 1000, 5: 1000}),
        hb.CONFIG: hb.config_body({"passback_s": 90}),
        hb.DENY_DELTA: hb.delta_body(0, add=[b"A" * 8]),
    }
    for kind, body in bodies.items():
        raw = hb.sign_bundle(kind, 7, body, KEY, issued_at=1760000000)
        b = hb.parse_bundle(raw, PUB, expect_kind=kind)
        assert (b.kind, b.version, b.issued_at, b.body) == (kind, 7, 1760000000, body)
        assert len(raw) == 18 + len(body) + 64
    trust = cbor2.loads(bodies[hb.TRUST])
    assert trust[0][0] == hashlib.sha256(issuer).digest()[:8] and trust[0][1] == issuer
    assert cbor2.loads(bodies[hb.FARES]) == {"cur": "IDR", "fares": {0: 3500, 1: 1000, 2: 1000,
                                                                     3: 1000, 4: 1000, 5: 1000}}


def test_refusals_have_reasons():
    raw = hb.sign_bundle(hb.FARES, 3, hb.fares_body({0: 3500}), KEY)
    with pytest.raises(hb.BundleError) as e:
        hb.parse_bundle(raw, hb.public_bytes(OTHER))
    assert e.value.reason == "bad_signature"
    forged = raw[:20] + bytes([raw[20] ^ 1]) + raw[21:]
    assert _reason(lambda: hb.parse_bundle(forged, PUB)) == "bad_signature"
    for cut in (0, 5, 17, 18, len(raw) - 1):
        assert _reason(lambda c=cut: hb.parse_bundle(raw[:c], PUB)) == "truncated"
    assert _reason(lambda: hb.parse_bundle(raw + b"x", PUB)) == "trailing"
    assert _reason(lambda: hb.parse_bundle(b"XXXX" + raw[4:])) == "bad_magic"
    assert _reason(lambda: hb.parse_bundle(raw, expect_kind=hb.DENY)) == "wrong_kind"
    assert _reason(lambda: hb.sign_bundle(hb.FARES, 1, b"x" * 4097, KEY)) == "too_large"
    assert _reason(lambda: hb.sign_bundle(9, 1, b"", KEY)) == "bad_kind"
    assert _reason(lambda: hb.sign_bundle(hb.FARES, 0, b"", KEY)) == "bad_input"
    assert _reason(lambda: hb.fares_body({7: 100})) == "bad_input"
    assert _reason(lambda: hb.config_body({"locked": True})) == "bad_config"
    assert _reason(lambda: hb.config_body({"wifi": {"ssid": "x"}})) == "bad_config"
    # every value within the range a validator accepts (docs/bundles.md 'Config ranges')
    assert _reason(lambda: hb.config_body({"qr_window_s": 1000})) == "bad_config"
    assert _reason(lambda: hb.config_body({"qr_window_s": 4})) == "bad_config"
    assert _reason(lambda: hb.config_body({"passback_s": 3601})) == "bad_config"
    assert _reason(lambda: hb.config_body({"depot_url": "https://x.example"})) == "bad_config"
    assert _reason(lambda: hb.config_body({})) == "bad_config"
    hb.config_body({"qr_window_s": 300, "passback_s": 0, "depot_url": "http://10.0.0.1:80",
                    "wifi": {"ssid": "depot", "psk": ""}})
    assert _reason(lambda: hb.deny_entry(b"X", b"id")) == "bad_input"
    unsorted = hb.sign_bundle(hb.DENY, 1, b"B" * 8 + b"A" * 8, KEY)
    assert _reason(lambda: hb.parse_bundle(unsorted, PUB)) == "bad_body"


def test_delta_merge():
    a, b, c = b"a" * 8, b"b" * 8, b"c" * 8
    d1 = hb.parse_bundle(hb.sign_bundle(hb.DENY_DELTA, 1, hb.delta_body(0, add=[a, b]), KEY), PUB)
    d2 = hb.parse_bundle(hb.sign_bundle(hb.DENY_DELTA, 2, hb.delta_body(1, add=[c], remove=[a]),
                                        KEY), PUB)
    s1 = hb.merge_delta(set(), 0, d1)
    assert s1 == {a, b}
    assert hb.merge_delta(s1, 1, d2) == {b, c}
    assert _reason(lambda: hb.merge_delta(s1, 1, d1)) == "stale"
    assert _reason(lambda: hb.merge_delta(set(), 0, d2)) == "bad_input"  # gap
    assert hb.deny_body([c, a, a, b]) == a + b + c


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parse_bundle_never_crashes(data):
    try:
        hb.parse_bundle(data, PUB)
    except hb.BundleError as e:
        assert e.reason in {"truncated", "bad_magic", "bad_format", "bad_kind", "too_large",
                            "trailing", "bad_signature", "bad_body"}


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 200), st.integers(0, 255))
def test_parse_bundle_bit_flips(body, pos, xor):
    raw = bytearray(hb.sign_bundle(hb.CONFIG, 2, body[:100], KEY))
    pos %= len(raw)
    raw[pos] ^= xor or 1
    with pytest.raises(hb.BundleError):
        hb.parse_bundle(bytes(raw), PUB)


def _reason(fn):
    try:
        fn()
    except hb.BundleError as e:
        return e.reason
    return None


def test_firmware_streams_the_same_digest(tmp_path):
    """Bundles signed by the host, installed by firmware/bundles.py under MicroPython; the
    firmware's digest must be the one the host signed (checked with the host's verify)."""
    body = hb.deny_body([hb.deny_entry(b"P", b"p%d" % i) for i in range(100)])
    raw = hb.sign_bundle(hb.DENY, 4, body, KEY, issued_at=1760000001)
    src = tmp_path / "in.bin"
    src.write_bytes(raw)
    out = run_code("""
import bundles, binascii
seen = []
def verify(key, digest, sig):
    seen.append((binascii.hexlify(digest).decode(), binascii.hexlify(sig).decode()))
    return True
h = bundles.install_file(%r, %r, b"k", verify, buf=bytearray(37))
print(h.kind, h.version, h.issued_at, h.length)
print(seen[0][0], seen[0][1])
""" % (str(src), str(tmp_path)))
    line1, line2 = out.split("\n")[:2]
    assert line1 == "2 4 1760000001 %d" % len(body)
    digest, sig = line2.split()
    assert digest == hashlib.sha256(raw[:-64]).hexdigest()
    assert sig == raw[-64:].hex()
    assert (tmp_path / "deny.bin").read_bytes() == raw


def test_cli_build_and_show(tmp_path, capsys):
    pem = tmp_path / "op.pem"
    hb.save_private_key(KEY, str(pem))
    out = tmp_path / "f.bin"
    assert hb.main(["build", "fares", "--version", "3", "--key", str(pem), "-o", str(out),
                    "--fare", "0=3500", "--fare", "1=1000"]) == 0
    b = hb.parse_bundle(out.read_bytes(), PUB, expect_kind=hb.FARES)
    assert cbor2.loads(b.body)["fares"] == {0: 3500, 1: 1000}
    assert hb.main(["show", str(out), "--pub", PUB.hex()]) == 0
    assert '"version": 3' in capsys.readouterr().out
    assert hb.main(["show", str(out), "--pub", hb.public_bytes(OTHER).hex()]) == 1
    assert "bad_signature" in capsys.readouterr().err
    assert hb.main(["build", "fares", "--version", "3", "--key", str(pem), "-o", str(out),
                    "--fare", "9=1"]) == 1
    assert hb.main(["build", "config", "--version", "1", "--key", str(pem), "-o", str(out),
                    "--set", "passback_s=90"]) == 0
    assert hb.main(["build", "deny", "--version", "1", "--key", str(tmp_path / "none.pem"),
                    "-o", str(out)]) == 1
    assert hb.main(["show", str(tmp_path / "none")]) == 1


def test_fare_table_amounts_within_docs_ranges():
    """docs/ranges.md: a fare is 0..1,000,000 rupiah (the firmware refuses a table above)."""
    from host import ranges
    assert hb.fares_body({0: ranges.MAX_FARE})
    for amount in (ranges.MAX_FARE + 1, 2 ** 32, -1, True, 3500.0):
        with pytest.raises(hb.BundleError):
            hb.fares_body({0: amount})
