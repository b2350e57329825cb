# Validator entry point: MicroPython runs /main.py after boot.py.
# The application (boot sequence and tap loop) lands with the validator issue; until then
# the board only reports its firmware version and clock.
import clock

VERSION = "0.1.0"


def main():
    print("brt-validator", VERSION, "unix time", clock.unix_now())


if __name__ == "__main__":
    main()
