"""Serial provisioning for depot technicians (DESIGN §7).

The full tool arrives with the provisioning issue; until then this entry point only says so.
"""

import sys


def main(argv=None):
    print("host/provision.py: provisioning is not built yet (see the provisioning issue)",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
