# The token's general path: what tokens/scan.py does not take (an unusual encoding, or a
# malformed token) is decoded here with the general strict decoder (tokens/cbor.py) and
# checked step by step, so that every malformed token gets its exact reason
# (docs/tokens.md). It allocates (lists, dicts, bytes): it runs for rejections and for the
# rare valid token written differently from the usual form, never for the usual tap. So it
# is not in the heap until a token needs it: tokens/verify.py imports it (and with it the
# strict decoder) the first time, and keeps it.
import hashlib

from tokens import cache as C, cbor, cose, fmt
from tokens.errors import TokenError
from tokens import reasons as R


def token(raw, end):
    """(pass start, pass end, pass prot, payload, sig, kid, proof prot, payload, sig) of a
    token; TokenError with the reason if it is not one."""
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
    pprot, ppay, psig, kid = cose_parse(pass_arr, True)
    rprot, rpay, rsig, _ = cose_parse(proof_arr, False)
    return ps, pe, pprot, ppay, psig, kid, rprot, rpay, rsig


def uint32(x):
    # every unsigned field of a token is a uint32 (times until 2106, rupiah, counters):
    # docs/tokens.md "Numbers"
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 0xFFFFFFFF


def _id(x):
    return isinstance(x, bytes) and fmt.ID_LEN_MIN <= len(x) <= fmt.ID_LEN_MAX


def claims(payload, e, operator):
    """The (signature-checked) claims into the cache entry e (the cnf key's x at E_Q);
    returns the key's y-sign. PASS_MALFORMED, BAD_CATEGORY, BAD_CNF_KEY if they are wrong."""
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
    if not isinstance(iss, str) or len(iss) > fmt.ISS_MAX or not uint32(iat) or \
            not uint32(exp) or not _id(wallet) or not _id(pid) or not uint32(cat) or \
            not uint32(allow) or not isinstance(op, str) or not isinstance(cnf, dict):
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
    C.put_u32(e, C.E_IAT, iat)
    C.put_u32(e, C.E_EXP, exp)
    C.put_u32(e, C.E_ALLOW, allow)
    e[C.E_CAT] = cat
    e[C.E_OPOK] = 1 if op == operator else 0
    _put_id(e, C.E_WLEN, wallet)
    _put_id(e, C.E_PLEN, pid)
    e[C.E_Q:C.E_Q + 32] = x
    return odd


def _put_id(e, o, ident):
    # a checked id (bytes, 4..16): its length at o, its bytes after it
    n = len(ident)
    e[o] = n
    e[o + 1:o + 1 + n] = ident


def proof(rpay):
    """(pass hash, time, counter, challenge or None) of a proof's payload: BAD_CBOR or
    PROOF_MALFORMED if it is not one."""
    pr = cbor.loads(rpay)   # strict CBOR: BAD_CBOR; its shape: PROOF_MALFORMED
    if not isinstance(pr, dict):
        raise TokenError(R.PROOF_MALFORMED, "payload not a map")
    ph = pr.get(fmt.P_PASS_HASH)
    pt = pr.get(fmt.P_TIME)
    pc = pr.get(fmt.P_COUNTER)
    pch = pr.get(fmt.P_CHALLENGE)
    if not isinstance(ph, bytes) or not uint32(pt) or not uint32(pc) or \
            (pch is not None and not isinstance(pch, bytes)) or \
            len(pr) != (3 if pch is None else 4):
        raise TokenError(R.PROOF_MALFORMED, "fields")
    return ph, pt, pc, pch


def cose_parse(arr, with_kid):
    """(protected bytes, payload bytes, signature bytes, kid or None) of a decoded
    COSE_Sign1 array; TokenError(MALFORMED / BAD_ALG) if it is not one of ours."""
    if not isinstance(arr, list) or len(arr) != 4:
        raise TokenError(R.MALFORMED, "not a COSE_Sign1 array")
    prot, unprot, payload, sig = arr
    if not isinstance(prot, bytes) or not isinstance(payload, bytes) or \
            not isinstance(sig, bytes) or not isinstance(unprot, dict):
        raise TokenError(R.MALFORMED, "COSE_Sign1 field types")
    if unprot:
        raise TokenError(R.MALFORMED, "unprotected header must be empty")
    if len(sig) != 64:
        raise TokenError(R.MALFORMED, "signature length")
    h = cbor.loads(prot)   # a CBOR part of its own: not strict CBOR is BAD_CBOR
    if not isinstance(h, dict) or h.get(fmt.H_ALG) != fmt.ALG_ES256:
        raise TokenError(R.BAD_ALG, "alg")
    kid = None
    if with_kid:
        kid = h.get(fmt.H_KID)
        if not isinstance(kid, bytes) or len(kid) != fmt.KID_LEN or len(h) != 2:
            raise TokenError(R.BAD_ALG, "kid")
    elif len(h) != 1:
        raise TokenError(R.BAD_ALG, "extra header")
    return prot, payload, sig, kid


def sig_digest(prot, payload):
    """SHA-256 of the Sig_structure (external_aad empty)."""
    h = hashlib.sha256(cose.SIG1)
    h.update(cbor.head(2, len(prot)))
    h.update(prot)
    h.update(b"\x40")
    h.update(cbor.head(2, len(payload)))
    h.update(payload)
    return h.digest()
