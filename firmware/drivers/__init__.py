# Hardware drivers: each takes its bus (UART/I2C/Pin) as an argument; none creates
# hardware at import time. The board file (board.py) wires them to the reference pins.
