# The production lock's maintenance handshake (firmware/maint_lock.py listen()), inside
# MicroPython: a console stream fed with the depot tool's lines, answers collected.
import io
import select

import maint_lock
from hmac256 import Key

SECRET = bytes(range(32))
DEV = "240ac4a1b2c3"


class Console(io.IOBase):
    # a serial console: bytes the host sent, readable one at a time, pollable
    def __init__(self, data=b""):
        self.data = bytearray(data)

    def ioctl(self, req, arg):
        if req == 3:  # MP_STREAM_POLL
            return (arg & select.POLLIN) if self.data else 0
        return -1  # e.g. MP_STREAM_GET_FILENO (the unix port asks): not a file descriptor

    def read(self, n):
        b = bytes(self.data[:n])
        self.data = self.data[n:]
        return b


class Out:
    def __init__(self):
        self.lines = []

    def write(self, s):
        self.lines.append(s)


def _challenge(out):
    words = out.lines[-1].split()
    assert words[0] == "BRT-MAINT" and words[1] == "CHALLENGE" and words[2] == DEV
    return bytes(int(words[3][i:i + 2], 16) for i in range(0, 32, 2))


class Scripted(Console):
    # answers each challenge with `answer(nonce)` as soon as it is printed
    def __init__(self, out, answer):
        super().__init__(b"BRT-MAINT HELLO\r\n")
        self.out = out
        self.answer = answer
        self.seen = 0

    def ioctl(self, req, arg):
        if len(self.out.lines) > self.seen:
            self.seen = len(self.out.lines)
            if "CHALLENGE" in self.out.lines[-1]:
                mac = self.answer(_challenge(self.out))
                self.data += b"BRT-MAINT OPEN " + "".join("%02x" % b for b in mac).encode() + b"\n"
        return super().ioctl(req, arg)


MAINT = Key(SECRET).mac(b"BRT-KDF-v1|maint")   # what the depot registry holds


def test_right_answer_opens_a_session():
    out = Out()
    # the answer is under the maint key derived from the secret (docs/sync-api.md 'Keys'),
    # computed here independently of maint_lock.mac
    s = Scripted(out, lambda n: Key(MAINT).mac(b"BRT-MAINT-v1|" + DEV.encode() + b"|" + n))
    assert maint_lock.listen(SECRET, DEV, 2000, s, out) is True
    assert out.lines[-1] == "BRT-MAINT OK\r\n"


def test_answer_under_the_secret_itself_is_denied():
    # the secret is never the maintenance key: only the derived one opens
    out = Out()
    s = Scripted(out, lambda n: Key(SECRET).mac(b"BRT-MAINT-v1|" + DEV.encode() + b"|" + n))
    assert maint_lock.listen(SECRET, DEV, 300, s, out) is False


def test_answer_under_another_secret_is_denied():
    out = Out()
    s = Scripted(out, lambda n: maint_lock.mac(b"\x01" * 32, DEV, n))
    assert maint_lock.listen(SECRET, DEV, 300, s, out) is False
    assert out.lines[-1] == "BRT-MAINT DENIED bad-answer\r\n"


def test_answer_for_another_device_is_denied():
    out = Out()
    s = Scripted(out, lambda n: maint_lock.mac(SECRET, "240ac4000000", n))
    assert maint_lock.listen(SECRET, DEV, 300, s, out) is False
    assert "DENIED" in out.lines[-1]


def test_answer_without_challenge_or_replayed_is_denied():
    out = Out()
    nonce_mac = b"BRT-MAINT OPEN " + b"ab" * 32 + b"\r\n"
    assert maint_lock.listen(SECRET, DEV, 300, Console(nonce_mac), out) is False
    assert out.lines == ["BRT-MAINT DENIED no-challenge\r\n"]


def test_each_challenge_is_fresh():
    out = Out()
    maint_lock.listen(SECRET, DEV, 200, Console(b"BRT-MAINT HELLO\r\n"), out)
    maint_lock.listen(SECRET, DEV, 200, Console(b"BRT-MAINT HELLO\r\n"), out)
    assert len(out.lines) == 2
    a, b = out.lines[0].split()[3], out.lines[1].split()[3]
    assert len(a) == 32 and a != b


def test_garbage_and_ctrl_chars_are_ignored_and_lines_bounded():
    out = Out()
    junk = b"\x03\x03\x01\x04" + b"A" * 5000 + b"\r\nBRT-MAINT\r\nprint(1)\r\n\x02\r\n"
    assert maint_lock.listen(SECRET, DEV, 300, Console(junk), out) is False
    assert out.lines == []


def test_not_enrolled_device_denies():
    out = Out()
    s = Scripted(out, lambda n: maint_lock.mac(SECRET, DEV, n))
    assert maint_lock.listen(None, DEV, 300, s, out) is False
    assert out.lines[-1] == "BRT-MAINT DENIED not-enrolled\r\n"


def test_fingerprint_is_short_and_keyed_on_the_secret():
    a, b = maint_lock.fingerprint(SECRET), maint_lock.fingerprint(b"\x00" * 32)
    assert len(a) == 16 and a != b and SECRET.hex() not in a


def test_random_noise_then_the_real_handshake_still_opens():
    # line noise, stray REPL control bytes, half lines: none of it opens the board, and
    # it does not stop the genuine request that follows
    import os
    for n in (1, 7, 160, 161, 999):
        out = Out()
        s = Scripted(out, lambda nonce: Key(MAINT).mac(
            b"BRT-MAINT-v1|" + DEV.encode() + b"|" + nonce))
        s.data = bytearray(os.urandom(n).replace(b"\n", b"").replace(b"\r", b"")
                           + b"\r\n" + b"BRT-MAINT HELLO\r\n")
        assert maint_lock.listen(SECRET, DEV, 2000, s, out) is True
        assert out.lines[-1] == "BRT-MAINT OK\r\n"
