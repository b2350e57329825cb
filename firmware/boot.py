# Runs first after every reset (on the ESP32 after _boot.py has mounted the flash).
# The production lock lives in maint.boot(): unlocked, it returns at once and main.py
# starts the validator as usual; locked, it disables Ctrl-C and never returns to the
# prompt unless the depot tool opened an authenticated maintenance session.
import maint

maint.boot()
