# Runs first after every reset (on the ESP32 after _boot.py has mounted the flash).
#
# The production lock lives in maint_lock.boot(): unlocked, it returns at once and main.py
# starts the validator as usual; locked, it never returns to the prompt unless the depot
# tool opened an authenticated maintenance session.
#
# First of all the interrupt character goes off: MicroPython enables Ctrl-C as it starts
# running this file, and a Ctrl-C that ended boot.py here would give the REPL (the ESP32
# port then even skips main.py). One that arrives before the switch is caught and ignored;
# maint_lock.boot() turns Ctrl-C back on for an unlocked board.
while True:
    try:
        import micropython

        micropython.kbd_intr(-1)
        break
    except KeyboardInterrupt:
        pass

import maint_lock  # noqa: E402

maint_lock.boot()
