# Rider message layout on the 128x64 screen: one status line (Indonesian, the rider's
# language, first and largest that fits), the large amount in the middle, one small
# English line at the bottom. Text is framebuf's 8x8 font, scaled by drawing each lit
# pixel as an s x s block from one preallocated 8x8 glyph buffer.
import framebuf
from micropython import const

_W = const(128)
_H = const(64)

_glyph = bytearray(8)
_gfb = framebuf.FrameBuffer(_glyph, 8, 8, framebuf.MONO_VLSB)


def fit_scale(text, width=_W, largest=3):
    """The largest scale (<= largest) at which text fits the width; 1 at least."""
    n = len(text)
    s = largest
    while s > 1 and n * 8 * s > width:
        s -= 1
    return s


def clip(text, scale, width=_W):
    """Printable ASCII only (the font has nothing else), cut to what fits."""
    out = ""
    for ch in text:
        o = ord(ch)
        out += ch if 32 <= o < 127 else "?"
    return out[: width // (8 * scale)]


def text(fb, s, x, y, scale=1, c=1):
    """Draw text at (x, y) with the 8x8 font scaled by `scale`."""
    if scale == 1:
        fb.text(s, x, y, c)
        return
    for ch in s:
        _gfb.fill(0)
        _gfb.text(ch, 0, 0, 1)
        for col in range(8):
            bits = _glyph[col]
            if bits:
                for row in range(8):
                    if bits & (1 << row):
                        fb.fill_rect(x + col * scale, y + row * scale, scale, scale, c)
        x += 8 * scale


def centered(fb, s, y, scale):
    s = clip(s, scale)
    text(fb, s, (_W - len(s) * 8 * scale) // 2, y, scale)


def message(fb, status, big="", english=""):
    """The answer to a tap: status (Indonesian) on top, `big` (the amount) large in the
    middle, one English line at the bottom. Draws into fb; the caller calls show()."""
    fb.fill(0)
    s = fit_scale(status, largest=2)
    centered(fb, status, 0, s)
    if big:
        b = fit_scale(big, largest=3)
        centered(fb, big, 20 if b == 3 else 24, b)
    if english:
        centered(fb, english, 56, 1)


def lines(fb, rows):
    """Up to 8 plain lines (idle screen, maintenance)."""
    fb.fill(0)
    y = 0
    for r in rows[:8]:
        fb.text(clip(r, 1), 0, y, 1)
        y += 8
