"""GPIO pins and PWM outputs of the virtual board, with a timeline of changes so tests and
the UI can see a light pattern or a beep that has already ended."""

import threading
import time


class Pins:
    def __init__(self, names=None):
        self.names = dict(names or {})  # pin number -> name ("green", "red", "buzzer")
        self.mode = {}
        self.level = {}
        self.inputs = {}  # levels driven from outside onto input pins
        self.pwm = {}  # pin -> (freq, duty_u16)
        self.history = []  # (monotonic time, name-or-number, kind, value)
        self._lock = threading.Lock()

    def _name(self, pin):
        return self.names.get(pin, str(pin))

    def _note(self, pin, kind, value):
        self.history.append((time.monotonic(), self._name(pin), kind, value))
        if len(self.history) > 5000:
            del self.history[:1000]

    def init(self, pin, mode, pull, value):
        with self._lock:
            self.mode[pin] = mode
            if value is not None:
                self.level[pin] = value
                self._note(pin, "level", value)

    def set(self, pin, value):
        with self._lock:
            if self.level.get(pin) != value:
                self._note(pin, "level", value)
            self.level[pin] = value

    def get(self, pin):
        with self._lock:
            if pin in self.inputs:
                return self.inputs[pin]
            return self.level.get(pin, 0)

    def set_pwm(self, pin, freq, duty):
        with self._lock:
            state = (freq, duty) if freq and duty else (0, 0)
            if self.pwm.get(pin) != state:
                self._note(pin, "pwm", state)
            self.pwm[pin] = state

    def state(self):
        """{name: level} for outputs and {name: {"freq":…, "duty_u16":…}} for PWM pins."""
        with self._lock:
            out = {}
            for pin, lvl in self.level.items():
                out[self._name(pin)] = lvl
            for pin, (f, d) in self.pwm.items():
                out[self._name(pin)] = {"freq": f, "duty_u16": d, "on": bool(f and d)}
            return out

    def timeline(self, since=0.0):
        with self._lock:
            return [h for h in self.history if h[0] >= since]
