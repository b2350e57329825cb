# crc32 (viper) against known check values and a plain-Python reference, under MicroPython.
from crc32 import crc32


def _ref(data, crc=0):
    c = crc ^ 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF


def test_check_value():
    # the standard CRC-32 check value for "123456789"
    assert crc32(b"123456789") == 0xCBF43926
    assert crc32(b"") == 0


def test_matches_reference_and_chains():
    data = bytes(range(256)) * 3
    assert crc32(data) == _ref(data)
    assert crc32(data[100:], crc32(data[:100])) == crc32(data)
    assert crc32(bytearray(data), 0, 5, 50) == _ref(data[5:50])
    assert crc32(memoryview(data)[7:9]) == _ref(data[7:9])


def test_bad_range_is_a_value_error():
    try:
        crc32(b"abc", 0, 2, 9)
    except ValueError:
        return
    raise AssertionError("no ValueError")
