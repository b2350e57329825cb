# Runs first after every reset (on the ESP32 after _boot.py has mounted the flash).
#
# The production lock lives in maint_lock.boot(): unlocked, it returns at once and main.py
# starts the validator as usual; locked, it never returns to the prompt unless the depot
# tool opened an authenticated maintenance session.
#
# First of all the interrupt character goes off: MicroPython enables Ctrl-C as it starts
# running this file (shared/runtime/pyexec.c: after compiling it), and a Ctrl-C that ended
# boot.py here would give the REPL (the ESP32 port then even skips main.py). One that
# arrives before the switch stays *pending* and the VM raises it at the next branch
# (py/vm.c pending_exception_check), even after the switch: so a branch (`if`) inside the
# try comes after it. A `break` alone would be that branch outside the try (it leaves the
# try first), and so would the jump at the end of a handler: the handler switches again
# and sits inside an outer try. maint_lock.boot() turns Ctrl-C back on for an unlocked
# board.
while True:
    try:
        try:
            import micropython

            micropython.kbd_intr(-1)
            if micropython:  # the branch where a pending Ctrl-C is raised, inside the try
                break
        except KeyboardInterrupt:
            import micropython

            micropython.kbd_intr(-1)
    except KeyboardInterrupt:
        pass

import maint_lock  # noqa: E402

maint_lock.boot()
