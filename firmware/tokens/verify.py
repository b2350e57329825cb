# TokenVerifier: the token half of the tap decision (DESIGN §3, §4), pure: bytes, the
# clock and the trust store in, a Verdict with a reason code out — never an exception.
#
# Order (§3): bound the sizes, decode strictly, check the pass signature before believing
# any claim (or find the pass in the cache of passes already verified), the pass's claims,
# the proof signature with the pass's phone key, then the proof's claims (binding,
# channel, freshness). Replay, deny list, anti-passback, allowance and fares are the app's:
# it calls check_qr / check_nfc and continues from the Verdict.
#
# Clock: with a trusted clock, validity (issuer key, pass) is judged at `now` before the
# proof is checked. With clock_ok False, the only time available is the proof's, which the
# phone's key vouches for: validity is judged at the proof time after the proof signature
# verified (a rooted phone could lie about its own time — the tap record's clock flag
# says so). NFC stays usable (its freshness is the challenge); a QR token is then
# refused with CLOCK_UNTRUSTED, its claims filled in for the record.
import hashlib
import time

from tokens import base45, cache as C, cose, fmt, p256, scan
from tokens.cache import PassCache
from tokens.errors import TokenError
from tokens import reasons as R

_gen = []  # type: list  # tokens/general.py, once a token has needed it (_general)


def _general():
    """The general path (tokens/general.py and the strict decoder, tokens/cbor.py: ~10 KB
    of heap on the 64-bit unix port), imported the first time a token is not in the usual
    form - a rejection, or a rare valid token written otherwise - and kept from then on.
    The usual tap never loads it (docs/validator.md 'Memory')."""
    if not _gen:
        from tokens import general
        _gen.append(general)
    return _gen[0]


DEFAULT_QR_WINDOW = 30   # seconds either side of the validator's clock
DEFAULT_IAT_SKEW = 300   # a pass issued this much "in the future" is still accepted


class Verdict:
    """The verifier's answer. ok/reason always set; claims as far as they were checked."""

    def __init__(self, channel):
        self.reset(channel)

    def reset(self, channel):
        """Back to the start of a check (a Verdict reused tap after tap: no garbage)."""
        self.ok = False
        self.reason = R.INTERNAL
        self.detail = ""
        self.channel = channel
        self.wallet_id = None
        self.pass_id = None
        self.category = None
        self.allowance = None
        self.pass_exp = None
        self.kid = None
        self.proof_id = None
        self.proof_time = None
        self.counter = None
        self.cached = False   # pass found in the cache (one signature check, not two)
        self.us_decode = 0    # stage timings, microseconds (time.ticks_us)
        self.us_pass = 0
        self.us_proof = 0

    def __repr__(self):
        return "<Verdict %s %d %s>" % ("ok" if self.ok else "rejected", self.reason,
                                       R.name(self.reason) or "?")


class TokenVerifier:
    def __init__(self, trust, operator, qr_window=DEFAULT_QR_WINDOW, cache_size=16,
                 iat_skew=DEFAULT_IAT_SKEW):
        self.trust = trust
        self.operator = operator
        self.qr_window = qr_window
        self.iat_skew = iat_skew
        self.cache = PassCache(cache_size)
        self._scan = scan.Scan(operator)
        self.fast = True  # the in-place scanners first (tests turn them off to compare)
        self._tok = memoryview(bytearray(fmt.MAX_TOKEN))  # a QR token, base45-decoded
        # answers for when not even a Verdict can be allocated (the heap is exhausted)
        self._oom = _oom_verdict(fmt.CH_QR)  # one, its channel set when it is handed out
        p256.init()  # G's and the issuer keys' tables now, while the heap is in one piece
        trust.prepare()

    def verdict(self):
        """A Verdict to pass as `into`, tap after tap."""
        return Verdict(fmt.CH_QR)

    def set_trust(self, trust):
        """Install a new trust store; cached passes are forgotten (their key may be gone)."""
        self.trust = trust
        self.cache.clear()
        trust.prepare()

    def check_qr(self, text, now, clock_ok, into=None):
        """Verdict for QR text (bytes as the scanner sent them; a final CR/LF is ignored).
        into: a Verdict to reuse (the tap path's, app/decision.py), else a new one."""
        return self._judge(fmt.CH_QR, text, None, now, clock_ok, into)

    def check_nfc(self, payload, challenge, now, clock_ok, into=None):
        """Verdict for the phone's answer to the tap command carrying `challenge`."""
        return self._judge(fmt.CH_NFC, payload, challenge, now, clock_ok, into)

    def _judge(self, channel, data, challenge, now, clock_ok, into):
        # the one place where every failure becomes a typed reason in the Verdict
        if into is not None:
            v = into
            v.reset(channel)
        else:
            try:
                v = Verdict(channel)
            except MemoryError:
                self._oom.channel = channel
                return self._oom
        try:
            t0 = time.ticks_us()
            if channel == fmt.CH_QR:
                data = _qr_cbor(data, self._tok)
            else:
                challenge = bytes(challenge)
            self._check(data, v, now, clock_ok, challenge, t0)
        except TokenError as e:
            v.reason = e.reason
            v.detail = e.detail
        except MemoryError:
            v.reason = R.INTERNAL
            v.detail = "out of memory"
        except Exception as e:  # noqa: BLE001 - a bug must reject the tap, not crash the loop
            _internal(v, e)
        return v

    # ---- the steps ----

    def _check(self, raw, v, now, clock_ok, challenge, t0):
        end = len(raw)
        if end > fmt.MAX_TOKEN:
            raise TokenError(R.TOO_LARGE, "token")
        sc = self._scan
        mv = memoryview(raw)
        inplace = self.fast and sc.token(raw, end)
        if inplace:
            # the usual form: the parts as views of the token's buffer (tokens/scan.py);
            # the signatures' inputs are hashed from it too (cose.sig_digest_at)
            o = sc.o
            ps = o[0]
            pe = o[7]
            if pe - ps > fmt.MAX_PASS or end - pe > fmt.MAX_PROOF:
                raise TokenError(R.TOO_LARGE, "pass or proof")
            ppay = mv[o[3]:o[4]]
            psig = mv[o[5]:o[6]]
            kid = bytes(mv[o[14]:o[14] + fmt.KID_LEN])
            rpay = mv[o[10]:o[11]]
            rsig = mv[o[12]:o[13]]
        else:
            # anything else: the general decoder, for the exact reason (tokens/general.py)
            ps, pe, pprot, ppay, psig, kid, rprot, rpay, rsig = _general().token(raw, end)
        # the pass hash: its first 16 bytes are what a proof binds and the cache's key
        phash = hashlib.sha256(mv[ps:pe]).digest()
        v.kid = kid
        t1 = time.ticks_us()
        v.us_decode = time.ticks_diff(t1, t0)

        cache = self.cache
        k = cache.find(phash)
        v.cached = k >= 0
        key = self.trust.get(kid)
        if key is None:
            raise TokenError(R.UNKNOWN_KEY)
        if not key.can_sign_passes():
            raise TokenError(R.KEY_USAGE)
        if clock_ok:
            self._key_valid(key, now)
        if k < 0:
            if key.prepared is None:
                key.prepared = p256.prepare(key.x, key.y)
            dg = cose.sig_digest_at(mv, sc.o, 0) if inplace else _general().sig_digest(pprot, ppay)
            if not p256.verify_prepared(key.prepared, dg, psig):
                raise TokenError(R.BAD_SIGNATURE)
            e = cache.scratch()
            if self.fast and sc.claims(ppay, len(ppay), e):
                odd = sc.odd
            else:
                odd = _general().claims(ppay, e, self.operator)
            # the cnf key's y from its x (into the entry): BAD_CNF_KEY if x is off the curve
            if not p256.decompress_into(e, C.E_Q, odd):
                raise TokenError(R.BAD_CNF_KEY, "not on the curve")
            k = cache.commit(phash)
        e = cache.entry(k)
        v.wallet_id = bytes(e[C.E_WALLET:C.E_WALLET + e[C.E_WLEN]])
        v.pass_id = bytes(e[C.E_PASS:C.E_PASS + e[C.E_PLEN]])
        v.category = e[C.E_CAT]
        v.allowance = C.u32(e, C.E_ALLOW)
        v.pass_exp = C.u32(e, C.E_EXP)
        iat = C.u32(e, C.E_IAT)
        if not e[C.E_OPOK]:
            raise TokenError(R.WRONG_OPERATOR)
        if clock_ok:
            self._pass_valid(v.pass_exp, iat, now)
        t2 = time.ticks_us()
        v.us_pass = time.ticks_diff(t2, t1)

        dg = cose.sig_digest_at(mv, sc.o, 7) if inplace else _general().sig_digest(rprot, rpay)
        if not p256.verify_q64(e[C.E_Q:C.E_Q + 64], dg, rsig):
            raise TokenError(R.PROOF_BAD_SIGNATURE)
        v.proof_id = cose.low_s_id(rsig)
        n = len(rpay)
        if self.fast and sc.proof(rpay, n):
            pt = sc.pt
            pc = sc.pc
            # the pass hash bound (any length: a wrong one is PROOF_WRONG_PASS) and the
            # challenge, compared in place
            bound = sc.phl == fmt.PASS_HASH_LEN and scan.same(rpay, sc.ph, sc.phl, phash)
            has_ch = sc.ch >= 0
            ch_ok = has_ch and challenge is not None and sc.chl == len(challenge) and \
                scan.same(rpay, sc.ch, sc.chl, challenge)
        else:
            ph, pt, pc, pch = _general().proof(rpay)
            bound = ph == phash[:fmt.PASS_HASH_LEN]
            has_ch = pch is not None
            ch_ok = has_ch and pch == challenge
        v.proof_time = pt
        v.counter = pc
        if not bound:
            raise TokenError(R.PROOF_WRONG_PASS)
        if not clock_ok:
            self._key_valid(key, pt)
            self._pass_valid(v.pass_exp, iat, pt)
        if challenge is not None:
            if not has_ch:
                raise TokenError(R.PROOF_CHANNEL, "NFC proof without challenge")
            if not ch_ok:
                raise TokenError(R.CHALLENGE_MISMATCH)
        else:
            if has_ch:
                raise TokenError(R.PROOF_CHANNEL, "QR proof with a challenge")
            if not clock_ok:
                raise TokenError(R.CLOCK_UNTRUSTED)
            if pt > now + self.qr_window:
                raise TokenError(R.PROOF_FUTURE)
            if pt < now - self.qr_window:
                raise TokenError(R.PROOF_STALE)
        v.us_proof = time.ticks_diff(time.ticks_us(), t2)
        v.ok = True
        v.reason = R.OK

    def _key_valid(self, key, t):
        w = key.valid_at(t)
        if w < 0:
            raise TokenError(R.KEY_NOT_YET_VALID)
        if w > 0:
            raise TokenError(R.KEY_EXPIRED)

    def _pass_valid(self, exp, iat, t):
        if t >= exp:
            raise TokenError(R.PASS_EXPIRED)
        if t + self.iat_skew < iat:
            raise TokenError(R.PASS_NOT_YET_VALID)


def _qr_cbor(text, buf):
    """The CBOR bytes inside QR text, decoded into buf (MAX_TOKEN bytes, the verifier's:
    a view of it is returned): bounded, prefix checked, base45 decoded."""
    if isinstance(text, str):
        text = text.encode()
    end = len(text)
    while end and text[end - 1] in (10, 13):
        end -= 1
    if end > fmt.MAX_QR_TEXT:
        raise TokenError(R.TOO_LARGE, "QR text")
    pl = len(fmt.PREFIX)
    if end < pl or not scan.same(text, 0, pl, fmt.PREFIX):
        raise TokenError(R.BAD_PREFIX)
    return buf[:base45.decode_into(text, pl, end, buf)]


def _internal(v, e):
    v.reason = R.INTERNAL
    try:
        v.detail = repr(e)
    except MemoryError:  # describing the error must not raise a second one
        v.detail = "internal error"


def _oom_verdict(channel):
    v = Verdict(channel)
    v.detail = "out of memory"
    return v
