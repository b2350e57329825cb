# Offline token verification (docs/tokens.md): strict CBOR, base45, P-256 ECDSA, COSE_Sign1,
# the trust store, the pass cache and TokenVerifier. Modules import what they need; nothing
# here runs at import time.
