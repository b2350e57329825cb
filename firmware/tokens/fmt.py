# The token format's numbers (docs/tokens.md is the spec; host/tokens/fmt.py mirrors it).
from micropython import const

PREFIX = b"BRT1:"               # QR text prefix: scheme BRT, format version 1
ALG_ES256 = const(-7)
H_ALG = const(1)
H_KID = const(4)
C_ISS = const(1)
C_EXP = const(4)
C_IAT = const(6)
C_CNF = const(8)
C_WALLET = const(-1)
C_PASS = const(-2)
C_CATEGORY = const(-3)
C_ALLOWANCE = const(-4)
C_OPERATOR = const(-5)
CNF_COSE_KEY = const(1)
K_KTY = const(1)
K_CRV = const(-1)
K_X = const(-2)
K_Y = const(-3)
KTY_EC2 = const(2)
CRV_P256 = const(1)
P_PASS_HASH = const(1)
P_TIME = const(2)
P_COUNTER = const(3)
P_CHALLENGE = const(4)

PASS_HASH_LEN = const(16)
ID_LEN_MIN = const(4)
ID_LEN_MAX = const(16)
KID_LEN = const(8)
CHALLENGE_LEN = const(16)
ISS_MAX = const(32)
OPERATOR_MAX = const(8)
N_CATEGORIES = const(6)         # fare categories 0..5 (ARCHITECTURE 'Shared vocabulary')

MAX_PASS = const(320)
MAX_PROOF = const(200)
MAX_TOKEN = const(512)          # CBOR [pass, proof]
MAX_QR_TEXT = const(773)        # len(PREFIX) + MAX_TOKEN / 2 * 3

USAGE_PASS = const(1)           # trust list usage bit: may sign wallet passes
CH_NFC = const(1)               # channel numbers as in tap records
CH_QR = const(2)

# NFC
AID = b"\xf0BRT1"
CLA_PROPRIETARY = const(0x80)
INS_TAP = const(0x54)
CHUNK = const(250)
