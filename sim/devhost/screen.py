"""What the rider sees on the virtual SSD1306: as text (read back from the pixels with
MicroPython's own 8×8 font, at scales 1–4), as block art, and as PNG (Pillow)."""

import io

from .font8x8 import FIRST, GLYPHS
from .ssd1306 import H, W

_GLYPHS = [bytes.fromhex(g) for g in GLYPHS]
_KEYS = {}
for _i, _g in enumerate(_GLYPHS):
    if any(_g):
        _KEYS.setdefault(_g, chr(FIRST + _i))


def _columns(px):
    """One int per column, bit y set where pixel (x, y) is lit."""
    cols = []
    for x in range(W):
        v = 0
        for y in range(H):
            if px[y][x]:
                v |= 1 << y
        cols.append(v)
    return cols


def _exact(px, x, y, s, glyph):
    """The s×-scaled glyph covers exactly the 8s×8s block at (x, y)."""
    for c in range(8):
        colbits = glyph[c]
        for r in range(8):
            want = (colbits >> r) & 1
            for dy in range(s):
                row = px[y + r * s + dy]
                for dx in range(s):
                    if row[x + c * s + dx] != want:
                        return False
    return True


def read_text(px):
    """Lines of text found on the screen, top to bottom: [(y, scale, text)]."""
    px = [list(r) for r in px]
    found = []
    for s in (4, 3, 2, 1):
        size = 8 * s
        for py in range(s):
            # columns down-sampled to every s-th row starting at py
            ds = []
            for x in range(W):
                v = 0
                k = 0
                for y in range(py, H, s):
                    if px[y][x]:
                        v |= 1 << k
                    k += 1
                ds.append(v)
            for k in range((H - py) // s - 7):
                y = py + k * s
                x = 0
                while x + size <= W:
                    key = bytes(((ds[x + c * s] >> k) & 0xFF) for c in range(8))
                    ch = _KEYS.get(key)
                    if ch is not None and _exact(px, x, y, s, key):
                        found.append((y, x, s, ch))
                        for dy in range(size):  # blank it: smaller scales must not
                            row = px[y + dy]    # find pieces of it
                            for dx in range(size):
                                row[x + dx] = 0
                        x += size
                    else:
                        x += 1
    lines = {}
    for y, x, s, ch in found:
        lines.setdefault((y, s), []).append((x, ch))
    out = []
    for (y, s), chars in sorted(lines.items()):
        chars.sort()
        text, last = "", None
        for x, ch in chars:
            if last is not None and x - last >= 8 * s * 2 - 1:
                text += " " * ((x - last) // (8 * s) - 1 or 1)
            elif last is not None and x - last > 8 * s:
                text += " "
            text += ch
            last = x
        out.append((y, s, text))
    return out


def screen_text(dev, art=False):
    """The text on the screen, one line per text row (or block art with art=True)."""
    px = dev.pixels()
    if art:
        rows = []
        for y in range(0, H, 2):
            rows.append("".join(" ▀▄█"[px[y][x] | (px[y + 1][x] << 1)] for x in range(W))
                        .rstrip())
        return "\n".join(rows)
    return "\n".join(t for _, _, t in read_text(px))


def screen_png_bytes(dev, scale=4):
    from PIL import Image

    px = dev.pixels()
    img = Image.new("RGB", (W, H), (8, 10, 16))
    on = (150, 220, 255)
    put = img.putpixel
    for y in range(H):
        for x in range(W):
            if px[y][x]:
                put((x, y), on)
    img = img.resize((W * scale, H * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()
