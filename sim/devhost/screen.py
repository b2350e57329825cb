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


def _expand(bits, s):
    """A glyph column (8 bits) scaled by s vertically: 8*s bits."""
    v = 0
    for r in range(8):
        if bits >> r & 1:
            v |= ((1 << s) - 1) << (r * s)
    return v


def _downsample(cols, s, py):
    """Per column, the rows py, py+s, py+2s, ... packed into consecutive bits."""
    if s == 1:
        return cols
    rows = range(py, H, s)
    out = []
    for v in cols:
        d = 0
        for k, y in enumerate(rows):
            if v >> y & 1:
                d |= 1 << k
        out.append(d)
    return out


def read_text(px):
    """Lines of text found on the screen, top to bottom: [(y, scale, text)].

    Works on one int per pixel column: for each scale (largest first) and row phase, the
    columns are down-sampled, each text row becomes a byte string of column bytes, and
    glyph candidates are C-speed slices of it looked up in a dict; a candidate counts only
    if the whole scaled block matches exactly, and is then blanked so smaller scales do
    not find pieces of it."""
    cols = _columns(px)
    found = []
    for s in (4, 3, 2, 1):
        size = 8 * s
        full = (1 << size) - 1
        for py in range(s):
            ds = _downsample(cols, s, py)
            k = 0
            while k <= (H - py) // s - 8:
                y = py + k * s
                row = bytes(((v >> k) & 0xFF) for v in ds)
                if not any(row):
                    k += 1
                    continue
                hit = False
                x = 0
                while x + size <= W:
                    key = row[x:x + size:s]
                    ch = _KEYS.get(key) if key[0] or key[1] or any(key) else None
                    if ch is not None and all(
                            (cols[x + c * s + dx] >> y) & full == _expand(key[c], s)
                            for c in range(8) for dx in range(s)):
                        found.append((y, x, s, ch))
                        for c in range(size):
                            cols[x + c] &= ~(full << y)
                        hit = True
                        x += size
                    else:
                        x += 1
                if hit:
                    ds = _downsample(cols, s, py)  # the blanked glyphs are gone
                k += 1
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
    img = Image.frombytes("P", (W, H), bytes(v for row in px for v in row))
    img.putpalette([8, 10, 16, 150, 220, 255])  # dark glass, lit pixel
    img = img.resize((W * scale, H * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()
