# Deterministic CBOR encoder (shortest heads, map keys sorted by their encoding): the
# counterpart of tokens/cbor.py's decoder, for tests and tools on the device. Kept out of
# tokens/cbor.py because the tap path only decodes: loading an encoder it never calls
# would cost the validator's heap ~1.5 KB.
from tokens.cbor import head


def _enc(obj, out):
    if obj is False:
        out.append(0xF4)
    elif obj is True:
        out.append(0xF5)
    elif obj is None:
        out.append(0xF6)
    elif isinstance(obj, int):
        if obj >= 0:
            out.extend(head(0, obj))
        else:
            out.extend(head(1, -1 - obj))
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        out.extend(head(2, len(obj)))
        out.extend(obj)
    elif isinstance(obj, str):
        b = obj.encode()
        out.extend(head(3, len(b)))
        out.extend(b)
    elif isinstance(obj, (list, tuple)):
        out.extend(head(4, len(obj)))
        for x in obj:
            _enc(x, out)
    elif isinstance(obj, dict):
        out.extend(head(5, len(obj)))
        items = []
        for k in obj:
            kbuf = bytearray()
            _enc(k, kbuf)
            items.append((bytes(kbuf), obj[k]))
        items.sort(key=lambda kv: kv[0])
        for kb, v in items:
            out.extend(kb)
            _enc(v, out)
    else:
        raise ValueError("cannot encode to CBOR")


def dumps(obj):
    """Deterministic CBOR bytes of int, bytes, str, bool, None, list/tuple, dict."""
    out = bytearray()
    _enc(obj, out)
    return bytes(out)
