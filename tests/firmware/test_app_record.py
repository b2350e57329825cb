# Tap records: exact bytes (deterministic CBOR, as cbor2 canonical encodes them - the
# expected hex below was produced by cbor2.dumps(..., canonical=True) on the host), round
# trip through decode, and typed errors for bad input.
from app import record


def _hex(b):
    return "".join("%02x" % x for x in b)


def test_accepted_record_exact_bytes():
    w = record.RecordWriter()
    got = w.encode(1800000000, record.CLOCK_TRUSTED, record.QR, record.ACCEPTED, 0,
                   b"W1234567", b"P1234567", 0, 3500, bytes(range(16)), 3)
    assert _hex(got) == ("ab011a6b49d20002000302040005000648573132333435363707485031"
                         "323334353637080009190dac0a50000102030405060708090a0b0c0d0e0f0b03")


def test_unchecked_rejection_has_no_ids():
    w = record.RecordWriter()
    got = w.encode(5, record.CLOCK_UNTRUSTED, record.NFC, record.REJECTED, 47)
    assert _hex(got) == "a6010502010301040105182f0900"
    d = record.decode(bytes(got))
    assert d == {1: 5, 2: 1, 3: 1, 4: 1, 5: 47, 9: 0}


def test_time_refused_event_record_exact_bytes():
    # docs/records.md 'Event records': answer 3, channel 0, reason 56, key 13 the time offered
    w = record.RecordWriter()
    got = w.encode_event(1780305920, record.CLOCK_TRUSTED, record.TIME_REFUSED, 1780046720)
    assert _hex(got) == "a7011a6a1d500002000300040305183809000d1a6a195b80"
    d = record.decode(bytes(got))
    assert d == {1: 1780305920, 2: 0, 3: 0, 4: 3, 5: 56, 9: 0, 13: 1780046720}


def test_round_trip_and_buffer_reuse():
    w = record.RecordWriter()
    a = bytes(w.encode(1800000123, 0, 1, 2, 42, b"wallet-xx", b"pass-yy", 1, 0, b"p" * 16, 9))
    b = bytes(w.encode(1, 0, 2, 1, 3))
    assert record.decode(a) == {1: 1800000123, 2: 0, 3: 1, 4: 2, 5: 42, 6: b"wallet-xx",
                                7: b"pass-yy", 8: 1, 9: 0, 10: b"p" * 16, 11: 9}
    assert record.decode(b)[5] == 3


def test_bad_records_are_typed_errors():
    good = bytes(record.RecordWriter().encode(5, 1, 1, 1, 47))
    bad = [b"", b"\xa1", good[:-1], good + b"\x00", b"\x80", b"\xa1\x01\x20",
           b"\xa2\x02\x00\x01\x00", b"\xa1\x01\x1b" + bytes(8), b"\xa1\x06\x45ab"]
    for x in bad:
        try:
            record.decode(x)
        except record.RecordError:
            continue
        raise AssertionError("decoded %r" % (x,))
    w = record.RecordWriter()
    for args in ((-1, 0, 1, 1, 1), (1 << 40, 0, 1, 1, 1)):
        try:
            w.encode(*args)
        except record.RecordError:
            continue
        raise AssertionError("encoded %r" % (args,))
    try:
        w.encode(1, 0, 1, 1, 1, b"x" * 33)
        raise AssertionError("encoded an oversized id")
    except record.RecordError:
        pass
