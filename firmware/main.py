# Validator entry point: MicroPython runs /main.py after boot.py (which holds the
# production lock). The application is in app/ (docs/validator.md).
import app.main

app.main.run()
