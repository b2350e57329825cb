"""The simulator: the real firmware in the MicroPython unix port on a virtual board."""
