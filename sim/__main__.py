"""`make sim` / `python -m sim`: arrives with the validator issue (see README)."""

import sys

print("the simulator is not built yet: it arrives with the validator issue", file=sys.stderr)
sys.exit(2)
