"""The token format's numbers (docs/tokens.md is the spec; firmware/tokens/fmt.py mirrors it)."""

PREFIX = "BRT1:"            # QR text prefix: scheme BRT, format version 1
FORMAT_VERSION = 1

ALG_ES256 = -7
# COSE header labels
H_ALG = 1
H_KID = 4
# CWT claims (RFC 8392) ...
C_ISS = 1
C_EXP = 4
C_IAT = 6
C_CNF = 8
# ... and this format's own claims (small negative keys: one byte each)
C_WALLET = -1
C_PASS = -2
C_CATEGORY = -3
C_ALLOWANCE = -4
C_OPERATOR = -5
# cnf / COSE_Key (RFC 8747, RFC 9053)
CNF_COSE_KEY = 1
K_KTY, K_CRV, K_X, K_Y = 1, -1, -2, -3
KTY_EC2, CRV_P256 = 2, 1
# tap proof payload
P_PASS_HASH = 1
P_TIME = 2
P_COUNTER = 3
P_CHALLENGE = 4

PASS_HASH_LEN = 16
ID_LEN_MIN, ID_LEN_MAX = 4, 16      # wallet id and pass id (bstr)
KID_LEN = 8
CHALLENGE_LEN = 16
ISS_MAX = 32
OPERATOR_MAX = 8
CATEGORIES = (0, 1, 2, 3, 4, 5)     # ARCHITECTURE 'Shared vocabulary'

MAX_PASS = 320
MAX_PROOF = 200
MAX_TOKEN = 512                     # CBOR [pass, proof]
MAX_QR_TEXT = len(PREFIX) + (MAX_TOKEN // 2) * 3

# NFC (ISO 7816-4 over ISO-DEP)
AID = bytes.fromhex("F042525431")   # proprietary (category F) AID: F0 "BRT1"
INS_TAP = 0x54                      # 'T'
CLA_PROPRIETARY = 0x80
CHUNK = 250                         # bytes per response APDU (PN532 frames carry ~262)
