# MicroPython worker for tests/host/test_app_fuzz.py: one request per line
#   "C <json text>"  -> config.parse:  "ok" | "err <field>" | "CRASH <exception>"
#   "R <hex>"        -> record.decode: "ok" | "err"         | "CRASH <exception>"
import sys

from app import config, record


def main():
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        kind, arg = line[0], line[2:].rstrip("\n")
        try:
            if kind == "C":
                try:
                    config.parse(arg)
                    out = "ok"
                except config.ConfigError as e:
                    out = "err " + e.field
            else:
                try:
                    record.decode(bytes(int(arg[i:i + 2], 16) for i in range(0, len(arg), 2)))
                    out = "ok"
                except record.RecordError:
                    out = "err"
        except Exception as e:  # noqa: BLE001 - what the test looks for
            out = "CRASH %r" % (e,)
        print(out)


main()
