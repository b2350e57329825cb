# Lights and buzzer: named patterns (accepted, rejected, already paid, fault) that never
# block. start(name) begins a pattern; tick() — called from the app's loop — moves it to
# its next step when that step's time is up. Pins are written only when a step changes,
# so a tick in between costs one ticks_diff.
import time

from micropython import const

_BEEP_HI = const(2700)  # Hz: the buzzer's loudest band, for "OK"
_BEEP_LO = const(500)  # Hz: low, for "no"
_DUTY_ON = const(32768)

# steps: (green, red, buzzer Hz (0 = silent), milliseconds)
PATTERNS = {
    "accepted": ((1, 0, _BEEP_HI, 120), (1, 0, 0, 880)),
    "already_paid": ((1, 0, _BEEP_HI, 80), (0, 0, 0, 80), (1, 0, _BEEP_HI, 80),
                     (1, 0, 0, 760)),
    "rejected": ((0, 1, _BEEP_LO, 150), (0, 1, 0, 100), (0, 1, _BEEP_LO, 150),
                 (0, 1, 0, 1100)),
    "fault": ((0, 1, _BEEP_LO, 600), (0, 0, 0, 200), (0, 1, 0, 200), (0, 0, 0, 200),
              (0, 1, 0, 200), (0, 0, 0, 200)),
}


class SignalsError(Exception):
    """An unknown pattern name (the only thing that can go wrong here)."""


class Signals:
    def __init__(self, green, red, buzzer):
        # green/red: machine.Pin outputs; buzzer: machine.PWM
        self.green = green
        self.red = red
        self.buzzer = buzzer
        self.name = None
        self._steps = None
        self._i = 0
        self._t0 = time.ticks_ms()

    def _apply(self, g, r, hz):
        self.green.value(g)
        self.red.value(r)
        if hz:
            self.buzzer.freq(hz)
            self.buzzer.duty_u16(_DUTY_ON)
        else:
            self.buzzer.duty_u16(0)

    def start(self, name, now=None):
        steps = PATTERNS.get(name)
        if steps is None:
            raise SignalsError("no pattern %r" % name)
        self.name = name
        self._steps = steps
        self._i = 0
        self._t0 = time.ticks_ms() if now is None else now  # type: ignore[assignment]
        st = steps[0]
        self._apply(st[0], st[1], st[2])

    def busy(self):
        return self._steps is not None

    def tick(self, now=None):
        """Advance the running pattern; True while one is running."""
        steps = self._steps
        if steps is None:
            return False
        if now is None:
            now = time.ticks_ms()
        changed = False
        while time.ticks_diff(now, self._t0) >= steps[self._i][3]:
            self._t0 = time.ticks_add(self._t0, steps[self._i][3])  # type: ignore[type-var]
            self._i += 1
            changed = True
            if self._i >= len(steps):
                self.off()
                return False
        if changed:
            st = steps[self._i]
            self._apply(st[0], st[1], st[2])
        return True

    def off(self):
        self._steps = None
        self.name = None
        self._apply(0, 0, 0)
