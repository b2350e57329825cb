"""Waiting in tests of the `make sim` terminal UI (Textual's pilot drives it)."""

import time


async def until(pilot, pred, timeout=30):
    """True once pred() holds, polled every 0.1 s of the pilot's clock; False after timeout s."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if pred():
            return True
        await pilot.pause(0.1)
    return False
