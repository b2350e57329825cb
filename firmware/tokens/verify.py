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

from tokens import base45, cbor, cose, fmt, p256
from tokens.cache import PassCache, PassInfo
from tokens.errors import TokenError
from tokens import reasons as R

DEFAULT_QR_WINDOW = 30   # seconds either side of the validator's clock
DEFAULT_IAT_SKEW = 300   # a pass issued this much "in the future" is still accepted


class Verdict:
    """The verifier's answer. ok/reason always set; claims as far as they were checked."""

    def __init__(self, channel):
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
        # answers for when not even a Verdict can be allocated (the heap is exhausted)
        self._oom = _oom_verdict(fmt.CH_QR)  # one, its channel set when it is handed out
        p256.init()  # G's and the issuer keys' tables now, while the heap is in one piece
        trust.prepare()

    def set_trust(self, trust):
        """Install a new trust store; cached passes are forgotten (their key may be gone)."""
        self.trust = trust
        self.cache.clear()
        trust.prepare()

    def check_qr(self, text, now, clock_ok):
        """Verdict for QR text (bytes as the scanner sent them; a final CR/LF is ignored)."""
        return self._judge(fmt.CH_QR, text, None, now, clock_ok)

    def check_nfc(self, payload, challenge, now, clock_ok):
        """Verdict for the phone's answer to the tap command carrying `challenge`."""
        return self._judge(fmt.CH_NFC, payload, challenge, now, clock_ok)

    def _judge(self, channel, data, challenge, now, clock_ok):
        # the one place where every failure becomes a typed reason in the Verdict
        try:
            v = Verdict(channel)
        except MemoryError:
            self._oom.channel = channel
            return self._oom
        try:
            t0 = time.ticks_us()
            if channel == fmt.CH_QR:
                data = _qr_cbor(data)
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
        dec = cbor.Decoder()
        major, count, pos = dec.head(raw, 0, end)
        if major != 4 or count != 2:
            raise TokenError(R.MALFORMED, "token is not [pass, proof]")
        ps = pos
        pass_arr, pos = dec.decode(raw, pos, end)
        pe = pos
        proof_arr, pos = dec.decode(raw, pos, end)
        if pos != end:
            raise TokenError(R.BAD_CBOR, "trailing bytes")
        if pe - ps > fmt.MAX_PASS or end - pe > fmt.MAX_PROOF:
            raise TokenError(R.TOO_LARGE, "pass or proof")
        pprot, ppay, psig, kid = cose.parse(pass_arr, True)
        rprot, rpay, rsig, _ = cose.parse(proof_arr, False)
        phash = hashlib.sha256(memoryview(raw)[ps:pe]).digest()[:fmt.PASS_HASH_LEN]
        v.kid = kid
        t1 = time.ticks_us()
        v.us_decode = time.ticks_diff(t1, t0)

        info = self.cache.get(phash)
        v.cached = info is not None
        key = self.trust.get(kid)
        if key is None:
            raise TokenError(R.UNKNOWN_KEY)
        if not key.can_sign_passes():
            raise TokenError(R.KEY_USAGE)
        if clock_ok:
            self._key_valid(key, now)
        if info is None:
            if key.prepared is None:
                key.prepared = p256.prepare(key.x, key.y)
            if not p256.verify_prepared(key.prepared, cose.sig_digest(pprot, ppay), psig):
                raise TokenError(R.BAD_SIGNATURE)
            info = _claims(kid, ppay)
            self.cache.put(phash, info)
        v.wallet_id = info.wallet_id
        v.pass_id = info.pass_id
        v.category = info.category
        v.allowance = info.allowance
        v.pass_exp = info.exp
        if info.operator != self.operator:
            raise TokenError(R.WRONG_OPERATOR)
        if clock_ok:
            self._pass_valid(info, now)
        t2 = time.ticks_us()
        v.us_pass = time.ticks_diff(t2, t1)

        if not p256.verify_q64(info.q, cose.sig_digest(rprot, rpay), rsig):
            raise TokenError(R.PROOF_BAD_SIGNATURE)
        v.proof_id = cose.low_s_id(rsig)
        pr = cbor.loads(rpay)   # strict CBOR: BAD_CBOR; its shape: PROOF_MALFORMED
        if not isinstance(pr, dict):
            raise TokenError(R.PROOF_MALFORMED, "payload not a map")
        ph = pr.get(fmt.P_PASS_HASH)
        pt = pr.get(fmt.P_TIME)
        pc = pr.get(fmt.P_COUNTER)
        pch = pr.get(fmt.P_CHALLENGE)
        if not isinstance(ph, bytes) or not _uint(pt) or not _uint(pc) or \
                (pch is not None and not isinstance(pch, bytes)) or \
                len(pr) != (3 if pch is None else 4):
            raise TokenError(R.PROOF_MALFORMED, "fields")
        v.proof_time = pt
        v.counter = pc
        if ph != phash:
            raise TokenError(R.PROOF_WRONG_PASS)
        if not clock_ok:
            self._key_valid(key, pt)
            self._pass_valid(info, pt)
        if challenge is not None:
            if pch is None:
                raise TokenError(R.PROOF_CHANNEL, "NFC proof without challenge")
            if pch != challenge:
                raise TokenError(R.CHALLENGE_MISMATCH)
        else:
            if pch is not None:
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

    def _pass_valid(self, info, t):
        if t >= info.exp:
            raise TokenError(R.PASS_EXPIRED)
        if t + self.iat_skew < info.iat:
            raise TokenError(R.PASS_NOT_YET_VALID)


def _qr_cbor(text):
    """The CBOR bytes inside QR text: bounded, prefix checked, base45 decoded."""
    if isinstance(text, str):
        text = text.encode()
    end = len(text)
    while end and text[end - 1] in (10, 13):
        end -= 1
    if end > fmt.MAX_QR_TEXT:
        raise TokenError(R.TOO_LARGE, "QR text")
    pl = len(fmt.PREFIX)
    if end < pl or bytes(text[:pl]) != fmt.PREFIX:
        raise TokenError(R.BAD_PREFIX)
    return base45.decode(text, pl, end)


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


def _uint(x):
    # every unsigned field of a token is a uint32 (times until 2106, rupiah, counters):
    # docs/tokens.md "Numbers"
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 0xFFFFFFFF


def _id(x):
    return isinstance(x, bytes) and fmt.ID_LEN_MIN <= len(x) <= fmt.ID_LEN_MAX


def _claims(kid, payload):
    """PassInfo from the (signature-checked) claims; PASS_MALFORMED etc. if they are wrong."""
    # strict CBOR inside the payload too (BAD_CBOR, with the general limits); its shape is
    # the claims' business (PASS_MALFORMED)
    c = cbor.loads(payload)
    if not isinstance(c, dict) or len(c) != 9:
        raise TokenError(R.PASS_MALFORMED, "claims map")
    iss = c.get(fmt.C_ISS)
    iat = c.get(fmt.C_IAT)
    exp = c.get(fmt.C_EXP)
    wallet = c.get(fmt.C_WALLET)
    pid = c.get(fmt.C_PASS)
    cat = c.get(fmt.C_CATEGORY)
    allow = c.get(fmt.C_ALLOWANCE)
    op = c.get(fmt.C_OPERATOR)
    cnf = c.get(fmt.C_CNF)
    if not isinstance(iss, str) or len(iss) > fmt.ISS_MAX or not _uint(iat) or \
            not _uint(exp) or not _id(wallet) or not _id(pid) or not _uint(cat) or \
            not _uint(allow) or not isinstance(op, str) or not isinstance(cnf, dict):
        raise TokenError(R.PASS_MALFORMED, "claim types")
    if not isinstance(cat, int) or cat >= fmt.N_CATEGORIES:
        raise TokenError(R.BAD_CATEGORY)
    ck = cnf.get(fmt.CNF_COSE_KEY)
    if len(cnf) != 1 or not isinstance(ck, dict) or len(ck) != 4 or \
            ck.get(fmt.K_KTY) != fmt.KTY_EC2 or ck.get(fmt.K_CRV) != fmt.CRV_P256:
        raise TokenError(R.BAD_CNF_KEY, "cnf is not an EC2 P-256 COSE_Key")
    x = ck.get(fmt.K_X)
    odd = ck.get(fmt.K_Y)
    if not isinstance(x, bytes) or len(x) != 32 or not isinstance(odd, bool):
        raise TokenError(R.BAD_CNF_KEY, "cnf x / y-sign")
    q = p256.decompress64(x, odd)
    if q is None:
        raise TokenError(R.BAD_CNF_KEY, "not on the curve")
    # the point as 64 bytes: a cached pass then holds ~100 bytes less than with two ints
    return PassInfo(kid, iss, iat, exp, wallet, pid, cat, allow, op, q)
