"""QR rendering (segno): the code's version and a PNG."""

import segno

from .errors import TokenToolError


def make_qr(text, error="M"):
    """segno QR code for the token text in alphanumeric mode (base45 is alphanumeric)."""
    try:
        return segno.make_qr(text, error=error, mode="alphanumeric", boost_error=False)
    except Exception as e:  # segno raises DataOverflowError/ValueError
        raise TokenToolError("cannot make a QR code: %s" % e) from None


def qr_version(text, error="M"):
    return make_qr(text, error).version


def save_png(text, path, scale=4, error="M"):
    make_qr(text, error).save(str(path), kind="png", scale=scale, border=4)
