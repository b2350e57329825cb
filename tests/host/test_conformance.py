"""The wallet partners' conformance kit (issue 18, docs/conformance.md): their keys as a
trust list through a real depot sync, their cases through the real firmware on the
simulated validator, a verdict per case.

The two runs of the kit here boot a fresh validator each (about 10 s with the sync); the
rest checks keys, manifests, limits, reasons and the starter pack without the simulator."""

import io
import json
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings, strategies as st

import host.tokens as ht
from host.tokens import fmt
from host.tokens.starter import CATEGORY_NAMES, make_starter
from sim import conformance
from sim import conformance_cases as cc
from sim import conformance_reasons as cr
from sim.__main__ import build_parser
from sim.conformance_keys import ConformanceError, load_keys, trust_body
from tests.support.mp import ROOT

NOW = 1_790_000_000
DOC = (ROOT / "docs" / "conformance.md").read_text(encoding="utf-8")


def pem_public(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def write_manifest(folder, cases):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cases.json").write_text(json.dumps({"cases": cases}))


# --- reasons, limits and the doc agree with the firmware --------------------------------

def test_reason_names_are_the_firmwares_and_the_doc_table_says_the_same():
    assert set(cr.MEANING) == set(cr.firmware_names()), "every firmware code explained, no other"
    assert (cr.name(7), cr.name(47), cr.name(42)) == ("unknown key", "reader fault",
                                                      "already paid")
    for code, (meaning, cause) in cr.MEANING.items():
        row = "| %d | %s | %s | " % (code, cr.name(code), meaning)
        assert row in DOC, row
        if cause:
            assert "| %s |" % cause in DOC, code


def test_doc_states_the_limits_the_firmware_has():
    assert cc.SCANNER_LINE >= fmt.MAX_QR_TEXT - 200   # read from the firmware, not a guess
    assert "**%d characters**" % cc.SCANNER_LINE in DOC
    assert "**%d** (`61 xx`" % fmt.CHUNK in DOC
    assert "%d bytes | reason 2" % fmt.MAX_TOKEN in DOC


@pytest.mark.parametrize("text,code", [("accepted", 0), ("unknown-key", 7), ("Unknown_Key", 7),
                                       (7, 7), ("7", 7), ("already-paid", 42),
                                       ("proof stale", 21), ("reader fault", 47)])
def test_expected_results_in_a_partners_words(text, code):
    assert cr.parse_expect(text) == code


@pytest.mark.parametrize("bad", ["nonsense", 99, True, None, 3.5, -1])
def test_an_expected_result_that_is_no_reason_is_refused(bad):
    with pytest.raises(ValueError, match="expected result|unknown reason"):
        cr.parse_expect(bad)


# --- keys ------------------------------------------------------------------------------

def test_pem_and_cose_keys_load_with_their_kids_and_defaults(tmp_path):
    a, b = ht.key_from_int(11), ht.key_from_int(12)
    (tmp_path / "a.pem").write_bytes(pem_public(a))
    pb = ht.public_bytes(b)
    cose = {1: 2, -1: 1, -2: pb[1:33], -3: bool(pb[64] & 1), 2: ht.kid(pb)}   # compressed
    (tmp_path / "b.cose").write_text(cbor2.dumps(cose).hex())                 # as hex text
    (tmp_path / "notes.txt").write_text("not a key")
    keys = load_keys(tmp_path, NOW)
    assert [(k.source, k.kid) for k in keys] == [("a.pem", ht.kid(a)), ("b.cose", ht.kid(b))]
    assert keys[1].pub == pb and keys[0].usage == 1
    assert keys[0].not_before <= NOW < keys[0].not_after


def test_keys_json_sets_validity_and_usage(tmp_path):
    k = ht.key_from_int(13)
    (tmp_path / "k.pem").write_bytes(pem_public(k))
    (tmp_path / "keys.json").write_text(json.dumps({"keys": [
        {"file": "k.pem", "kid": ht.kid(k).hex(), "not_before": "2027-01-01T00:00:00Z",
         "not_after": 1900000000, "usage": "none"}]}))
    (key,) = load_keys(tmp_path, NOW)
    assert (key.not_before, key.not_after, key.usage) == (1798761600, 1900000000, 0)


@pytest.mark.parametrize("setup,message", [
    ("private", "is a private key"), ("p384", "not a P-256"), ("bad-time", "not a time"),
    ("wrong-kid", "is not the key's SHA-256"), ("empty", "no issuer keys"),
    ("cose-off-curve", "not a point on P-256")])
def test_unusable_keys_are_refused_with_the_file_named(tmp_path, setup, message):
    k = ht.key_from_int(14)
    if setup == "private":
        ht.save_key(k, tmp_path / "k.pem")
    elif setup == "p384":
        (tmp_path / "k.pem").write_bytes(pem_public(ec.generate_private_key(ec.SECP384R1())))
    elif setup in ("wrong-kid", "bad-time"):
        (tmp_path / "k.pem").write_bytes(pem_public(k))
        e = {"file": "k.pem", "kid": "00" * 8} if setup == "wrong-kid" else \
            {"file": "k.pem", "not_after": "next tuesday", "not_before": "1900-01-01"}
        (tmp_path / "keys.json").write_text(json.dumps({"keys": [e]}))
    elif setup == "cose-off-curve":
        (tmp_path / "k.cose").write_bytes(cbor2.dumps({1: 2, -1: 1, -2: b"\x01" * 32,
                                                       -3: b"\x02" * 32}))
    with pytest.raises(ConformanceError, match=message) as e:
        load_keys(tmp_path, NOW)
    assert "\n" not in str(e.value) and ("k." in str(e.value) or setup == "empty")


def test_more_keys_than_a_trust_list_holds_is_said_before_booting(tmp_path):
    for i in range(200):
        (tmp_path / ("k%03d.pem" % i)).write_bytes(pem_public(ht.key_from_int(1000 + i)))
    keys = load_keys(tmp_path, NOW)
    assert len(trust_body(keys[:10])) < 16384
    with pytest.raises(ConformanceError, match="200 keys make a trust list of .* at most 16384"):
        trust_body(keys)


# --- cases -------------------------------------------------------------------------------

@pytest.mark.parametrize("change,message", [
    ({"name": None}, "name must be"), ({"channel": "bt"}, "channel must be"),
    ({"expect": "maybe"}, "expected result"), ({"qr": None}, "exactly one of"),
    ({"channel": "nfc"}, "\"qr\" files are for"), ({"qr": "missing.txt"}, "cannot read"),
    ({"colour": 1}, "unknown field"), ({"proof_time": 5}, "run-time proofs"),
    ({"qr": None, "pass": "a.txt"}, "needs \"phone_key\""),
    ({"select_answer": "90"}, "applies to NFC"),
])
def test_bad_cases_are_refused_naming_the_case(tmp_path, change, message):
    spec = {"name": "x", "channel": "qr", "expect": 0, "qr": "a.txt"}
    spec.update(change)
    spec = {k: v for k, v in spec.items() if v is not None}
    (tmp_path / "a.txt").write_text("BRT1:XX\n")
    write_manifest(tmp_path, [spec])
    with pytest.raises(ConformanceError, match=message):
        cc.load_cases(tmp_path)


def test_the_command_exits_2_with_one_line_on_a_bad_manifest(tmp_path):
    k = ht.key_from_int(15)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "k.pem").write_bytes(pem_public(k))
    write_manifest(tmp_path / "cases", [{"name": "a", "channel": "qr", "expect": "soon",
                                         "qr": "a.txt"}])
    args = build_parser().parse_args(["conformance", "--keys", str(tmp_path / "keys"),
                                      "--cases", str(tmp_path / "cases")])
    out, err = io.StringIO(), io.StringIO()
    assert conformance.run(args, out, err) == 2
    assert err.getvalue().count("\n") == 1 and "case 'a'" in err.getvalue(), err.getvalue()


VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 40, 2 ** 40),
                   st.text(max_size=40), st.sampled_from(["a.txt", "live", "none", "00" * 16,
                                                          "accepted", "qr", "nfc", "k.pem"]),
                   st.lists(st.sampled_from(["accepted", 7, "replay", "x"]), max_size=3))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(sorted(cc.OPTIONS | {"extra"})), VALUES, max_size=8))
def test_any_case_object_loads_or_gets_a_typed_error(tmp_path, spec):
    (tmp_path / "a.txt").write_text("BRT1:XX\n")
    ht.save_key(ht.key_from_int(16), tmp_path / "k.pem")
    try:
        c = cc.Case(spec, tmp_path, "case 1")
    except ConformanceError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert c.channel in ("qr", "nfc") and c.expect


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200), st.dictionaries(st.sampled_from(
    ["file", "kid", "not_before", "not_after", "usage"]), VALUES, max_size=5))
def test_any_key_file_or_keys_json_entry_loads_or_gets_a_typed_error(tmp_path, raw, entry):
    for p in tmp_path.iterdir():
        p.unlink()
    (tmp_path / "k.cose").write_bytes(raw)
    if entry:
        (tmp_path / "keys.json").write_text(json.dumps({"keys": [entry]}))
    try:
        load_keys(tmp_path, NOW)
    except ConformanceError as e:
        assert str(e) and "\n" not in str(e)


def test_phone_side_limits_are_lines_not_bare_numbers():
    (line,) = cc.limits_nfc([(ht.select_apdu(), b"\x01\x90\x00"),
                             (ht.tap_apdu(bytes(16)), b"\x00" * 300 + b"\x90\x00")])
    assert "300 data bytes" in line and "at most %d" % fmt.CHUNK in line and "GET RESPONSE" in line
    assert cc.limits_nfc([(ht.tap_apdu(bytes(16)), b"\x00" * 250 + b"\x61\x10")]) == []
    long_text = fmt.PREFIX + "A" * (cc.SCANNER_LINE + 1)
    assert any("scanner line hold %d (reason 2" % cc.SCANNER_LINE in t
               for t in cc.limits_qr(long_text))
    assert any("alphanumeric" in t for t in cc.limits_qr("brt1:abc"))
    assert any("printable ASCII" in t for t in cc.limits_qr("BRT1:\x01"))


# --- the starter pack --------------------------------------------------------------------

@pytest.fixture(scope="module")
def starter(tmp_path_factory):
    root = tmp_path_factory.mktemp("starter") / "pack"
    r = subprocess.run([sys.executable, "-m", "host.tokens", "starter", str(root)],
                       cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "python -m sim conformance --keys" in r.stdout
    return root


def test_starter_pack_covers_every_reason_a_wallet_can_cause(starter):
    cases = json.loads((starter / "cases" / "cases.json").read_text())["cases"]
    codes = {cr.parse_expect(e) for c in cases
             for e in (c["expect"] if isinstance(c["expect"], list) else [c["expect"]])}
    assert set(range(0, 25)) | {40, 42, 43, 47} <= codes
    valid = {(c["channel"], c["name"].split("-", 1)[1]) for c in cases
             if c["expect"] == "accepted"}
    assert valid == {(ch, n) for ch in ("qr", "nfc") for n in CATEGORY_NAMES}
    for f in (starter / "keys").iterdir():        # the keys folder holds no private key
        assert b"PRIVATE" not in f.read_bytes(), f
    assert {k.source for k in load_keys(starter / "keys", NOW)} >= {"issuer.pem",
                                                                   "issuer-cose.cose"}


def test_starter_refuses_to_write_over_a_pack(starter):
    with pytest.raises(ht.TokenToolError, match="not empty"):
        make_starter(starter)


# --- the kit on the simulated validator -----------------------------------------------------

def test_the_kit_passes_its_own_starter_pack(starter, tmp_path):
    junit, js = tmp_path / "junit.xml", tmp_path / "results.json"
    r = subprocess.run([sys.executable, "-m", "sim", "conformance", "--keys",
                        str(starter / "keys"), "--cases", str(starter / "cases"),
                        "--junit", str(junit), "--json", str(js)],
                       cwd=str(ROOT), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(js.read_text())
    results = doc["results"]
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith(("PASS ", "FAIL "))]
    assert len(lines) == len(results) and all(ln.startswith("PASS") for ln in lines)
    assert doc["ok"] and all(x["ok"] for x in results)
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == (str(len(results)), "0")
    by = {x["name"]: x for x in results}
    # a token from a key not in the partner's list
    assert (by["key-unknown"]["got"], by["key-unknown"]["reason_name"]) == (7, "unknown key")
    assert re.search(r"^PASS  key-unknown .* got 7 unknown key ", r.stdout, re.M)
    # a broken phone-side limit is a readable line, not a bare 47
    i = r.stdout.index("nfc-one-response")
    assert "limit: NFC response APDU of 300 data bytes" in r.stdout[i:i + 400]
    i = r.stdout.index("PASS  nfc-select-no-version")
    assert "limit: SELECT of the wallet AID answered 90 00: the validator takes exactly 01 90 00" \
        in r.stdout[i:i + 400]
    assert len(by["nfc-select-no-version"]["apdus"]) == 1       # no TAP after a bad SELECT
    i = r.stdout.index("PASS  qr-stale")
    assert re.search(r"limit: QR proof time is (59|60|61) s behind the validator's clock: "
                     r"the window is \+-30 s", r.stdout[i:i + 400]), r.stdout[i:i + 400]
    # NFC proofs signed the validator's live challenges: a new one each tap
    nfc = [x for x in results if x["channel"] == "nfc" and x["got"] == 0]
    assert len(nfc) == 6
    chals = [x["challenge"] for x in nfc]
    assert len(set(chals)) == 6 and all(len(c) == 32 for c in chals)
    for x in nfc:
        tap_cmd = bytes.fromhex(x["apdus"][1][0])
        assert tap_cmd[:5] == bytes.fromhex("8054000010") and tap_cmd[5:21].hex() == x["challenge"]
    assert doc["trust_version"] >= 2 and len(doc["keys"]) == 5


def test_a_partner_pem_key_a_stranger_and_a_wrong_expectation(tmp_path):
    """The partner gives only a PEM file (no keys.json, nothing about the simulator); an
    NFC case from a pass and a phone key; a stranger's token; one wrong expectation."""
    issuer, stranger, phone = ht.key_from_int(21), ht.key_from_int(22), ht.key_from_int(23)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "gopay.pem").write_bytes(pem_public(issuer))
    cases = tmp_path / "cases"
    cases.mkdir()
    ht.save_key(phone, cases / "phone.pem")
    t = int(time.time())

    def mint(key, wid):
        return ht.mint_pass(key, ht.public_bytes(phone), wid, wid, 0, 50000, t - 3600, t + 86400)
    (cases / "gopay.pass").write_bytes(mint(issuer, b"GOPAY001"))
    (cases / "gopay2.pass").write_bytes(mint(issuer, b"GOPAY002"))
    sp = mint(stranger, b"STRANGE1")
    (cases / "stranger.txt").write_text(ht.qr_text(sp, ht.make_proof(sp, phone, t, 1)) + "\n")
    write_manifest(cases, [
        {"name": "nfc-live", "channel": "nfc", "expect": "accepted", "pass": "gopay.pass",
         "phone_key": "phone.pem"},
        {"name": "qr-stranger", "channel": "qr", "expect": "unknown-key", "qr": "stranger.txt"},
        {"name": "qr-wrong", "channel": "qr", "expect": "proof stale", "pass": "gopay2.pass",
         "phone_key": "phone.pem"}])
    args = build_parser().parse_args([
        "conformance", "--keys", str(tmp_path / "keys"), "--cases", str(cases),
        "--junit", str(tmp_path / "j.xml"), "--json", str(tmp_path / "r.json")])
    out, err = io.StringIO(), io.StringIO()
    assert conformance.run(args, out, err) == 1, out.getvalue() + err.getvalue()
    text = out.getvalue()
    assert "gopay.pem kid %s usage 1" % ht.kid(issuer).hex() in text
    assert re.search(r"^PASS  nfc-live +nfc  expected accepted +got accepted ", text, re.M)
    assert re.search(r"^PASS  qr-stranger +qr +expected 7 unknown key +got 7 unknown key ",
                     text, re.M)
    m = re.search(r"^FAIL  qr-wrong +qr +expected 21 proof stale +got accepted .*\n"
                  r" +got +ok: accepted and charged\.\n"
                  r" +expected proof stale: QR proof older than the validator's window", text,
                  re.M)
    assert m, text
    assert "1 NOT: qr-wrong" in text
    failure = ET.parse(tmp_path / "j.xml").getroot().find("testsuite/testcase[@name='qr-wrong']"
                                                         "/failure")
    assert failure.get("message") == "expected 21 proof stale, got accepted"
    live = json.loads((tmp_path / "r.json").read_text())["results"][0]
    # the phone was asked, in the validator's TAP APDU, to sign a challenge; its answer
    # (reassembled from the responses) carries a proof over exactly that challenge
    cmds = [bytes.fromhex(c) for c, _ in live["apdus"]]
    rsps = [bytes.fromhex(a) for _, a in live["apdus"]]
    assert cmds[1][5:21].hex() == live["challenge"]
    answer = b"".join(r[:-2] for r in rsps[1:])
    info = ht.inspect_token(answer, {ht.kid(issuer): ht.public_bytes(issuer)})
    assert info["proof"]["challenge"] == live["challenge"]
    assert info["pass_sig_ok"] and info["proof_sig_ok"] and live["decision"]["fare"] == 3500
