"""The simulator's device host: virtual chips behind the virtual board's link.

    from sim.devhost import DevHost, run_firmware
See docs/simulator.md.
"""

from .host import DevHost
from .launch import Firmware, run_firmware

__all__ = ["DevHost", "Firmware", "run_firmware"]
