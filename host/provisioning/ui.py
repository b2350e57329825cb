"""Plain messages and progress bars for the technician (a bar on a terminal, a line per
10 % otherwise, so a log file stays readable)."""

import sys


class Bar:
    def __init__(self, total, label, out=sys.stderr, width=30):
        self.total = max(1, total)
        self.label = label
        self.out = out
        self.width = width
        self.done_n = 0
        self.tty = hasattr(out, "isatty") and out.isatty()
        self._last = -1

    def advance(self, n):
        self.done_n = min(self.total, self.done_n + n)
        pct = self.done_n * 100 // self.total
        if self.tty:
            fill = self.width * self.done_n // self.total
            self.out.write("\r%s [%s%s] %3d%% %d/%d bytes" % (
                self.label, "#" * fill, "." * (self.width - fill), pct, self.done_n, self.total))
            self.out.flush()
        elif pct // 10 != self._last:
            self._last = pct // 10
            self.out.write("%s %d%%\n" % (self.label, pct))

    def done(self):
        if self.tty:
            self.out.write("\n")
        self.out.flush()


def say(msg):
    print(msg, flush=True)
