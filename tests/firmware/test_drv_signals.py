# Lights and buzzer patterns against the virtual pins/PWM: named, non-blocking, advanced
# by tick(); time is passed in so the steps are checked exactly.
# mp-path: sim/vboard  (the virtual machine module)
# mp-devhost: hsu
import json
import time

import machine

from drivers.signals import PATTERNS, Signals, SignalsError


def ctl(cmd, **kw):
    kw["cmd"] = cmd
    return json.loads(machine.sim_control(json.dumps(kw)))


def make():
    return Signals(machine.Pin(4, machine.Pin.OUT, value=0),
                   machine.Pin(5, machine.Pin.OUT, value=0),
                   machine.PWM(machine.Pin(6), freq=2700, duty_u16=0))


def state():
    s = ctl("lights")
    return s["green"], s["red"], s["buzzer"]["freq"] if s["buzzer"]["on"] else 0


def test_every_pattern_plays_its_steps_and_ends_dark():
    s = make()
    for name, steps in PATTERNS.items():
        t = 1000
        s.start(name, t)
        for g, r, hz, ms in steps:
            assert s.tick(t)  # the step begins
            assert state() == (g, r, hz), (name, state())
            assert s.tick(t + ms - 1)  # and lasts its time
            assert state() == (g, r, hz), (name, state())
            t += ms
        assert s.tick(t) is False and not s.busy()
        assert state() == (0, 0, 0)


def test_tick_is_non_blocking_and_catches_up():
    s = make()
    s.start("rejected", 0)
    t0 = time.ticks_ms()
    assert s.tick(10000) is False  # long overdue: ends at once
    assert time.ticks_diff(time.ticks_ms(), t0) < 1000  # the pattern lasts seconds: no sleeping
    assert state() == (0, 0, 0)


def test_new_pattern_replaces_running_one():
    s = make()
    s.start("accepted", 0)
    s.start("fault", 50)
    assert s.name == "fault" and state() == (0, 1, 500)


def test_unknown_pattern():
    s = make()
    try:
        s.start("party")
        raise AssertionError("unknown pattern started")
    except SignalsError:
        pass
    assert s.tick() is False
