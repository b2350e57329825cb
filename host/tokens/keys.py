"""P-256 keys for issuers, the operator and phones; kid; ES256 signatures as raw r||s.

Built on `cryptography` (OpenSSL) — deliberately independent of the firmware's pure-Python
verifier, so each checks the other.
"""

import hashlib
import os

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature, encode_dss_signature)

from .errors import TokenToolError

# P-256 group order: signatures are normalised to low-S (s <= N/2) so a signature has
# exactly one encoding; the proof id (a hash of the signature) depends on that.
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
KINDS = ("issuer", "operator", "phone")


def generate_key():
    """A fresh P-256 private key (cryptography's EllipticCurvePrivateKey)."""
    return ec.generate_private_key(ec.SECP256R1())


def key_from_int(d):
    """Deterministic key from a secret scalar (tests and fixtures only)."""
    return ec.derive_private_key(d, ec.SECP256R1())


def save_key(key, path):
    """Write the private key as unencrypted PKCS#8 PEM, readable by the owner only."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def load_key(path):
    """Read a P-256 private key from PEM; TokenToolError if it is not one."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise TokenToolError("cannot read key %s: %s" % (path, e.strerror)) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise TokenToolError("%s is not an unencrypted PEM private key (%s)" % (path, e)) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise TokenToolError("%s is not a P-256 key" % path)
    return key


def public_bytes(key):
    """65-byte uncompressed point 04||x||y of a private or public key."""
    pub = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return pub.public_bytes(serialization.Encoding.X962,
                            serialization.PublicFormat.UncompressedPoint)


def public_key_from_bytes(pub65):
    """Public key object from a 65-byte uncompressed point; TokenToolError if invalid."""
    if not isinstance(pub65, (bytes, bytearray)) or len(pub65) != 65 or pub65[0] != 4:
        raise TokenToolError("a public key is 65 bytes 04||x||y")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes(pub65))
    except ValueError:
        raise TokenToolError("public key is not a point on P-256") from None


def kid(pub):
    """Key id: the first 8 bytes of SHA-256 of the 65-byte public key (or of a key object)."""
    if not isinstance(pub, (bytes, bytearray)):
        pub = public_bytes(pub)
    return hashlib.sha256(bytes(pub)).digest()[:8]


def sign_es256(private_key, data):
    """ES256 over `data` (SHA-256 inside): 64-byte r||s, normalised to low S."""
    der = private_key.sign(bytes(data), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    if s > N // 2:
        s = N - s
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify_es256(pub, data, sig64):
    """True if sig64 (r||s) is a valid ES256 signature of `data` by `pub` (bytes or key)."""
    if len(sig64) != 64:
        return False
    if isinstance(pub, (bytes, bytearray)):
        try:
            pub = public_key_from_bytes(pub)
        except TokenToolError:
            return False
    r = int.from_bytes(sig64[:32], "big")
    s = int.from_bytes(sig64[32:], "big")
    if not (0 < r < N and 0 < s < N):
        return False
    try:
        pub.verify(encode_dss_signature(r, s), bytes(data), ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


def low_s(sig64):
    """The low-S form of a 64-byte signature (the same signature, one canonical encoding)."""
    s = int.from_bytes(sig64[32:], "big")
    if s > N // 2:
        s = N - s
    return bytes(sig64[:32]) + s.to_bytes(32, "big")
