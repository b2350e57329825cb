"""`install`: copy the compiled firmware (`make firmware` -> build/firmware/) to the board.

Only files whose SHA-256 differs from the device's copy are sent. Each file goes to
`<name>.part`, is hashed on the device, and only then renamed over the old one, so a cut
cable leaves every file either old or new; `manifest.json` goes last, and the device's
firmware identity is the hash of that manifest. Running it again after an interruption
sends only what is still missing. Stale modules (not in the manifest) are removed: a left-
over `foo.py` would shadow a new `foo.mpy`. The snippets use only what a freshly flashed
MicroPython has (os, hashlib, binascii, json): install works before maint.py is there.
"""

import base64
import hashlib
import json
import pathlib

from .errors import BuildError, DeviceError

# raw bytes per raw-paste command (base64 in it: ~1.4 KB). Small enough that the board's
# fragmented ~110 KB heap always has room for the command text and the decoded chunk.
CHUNK = 1024
SKIP_DIRS = ("data", "vboard")  # device data and the simulator's board modules

_HASH_FN = """import os, hashlib, binascii, json
def _h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    h = hashlib.sha256()
    b = bytearray(512)
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(memoryview(b)[:n])
    f.close()
    return binascii.hexlify(h.digest()).decode()
"""

_LIST_FN = """def _walk(d, out):
    for e in os.ilistdir(d):
        p = (d.rstrip('/') + '/' + e[0])
        if e[1] == 0x4000:
            if p.lstrip('/') not in %r:
                _walk(p, out)
        else:
            out.append(p.lstrip('/'))
    return out
"""


def load_manifest(build_dir):
    build = pathlib.Path(build_dir)
    mpath = build / "manifest.json"
    try:
        manifest = json.loads(mpath.read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BuildError("no usable firmware build in %s (%s)" % (build, e),
                         "run `make firmware` first") from None
    for e in files:
        p = build / e["file"]
        if not p.is_file() or hashlib.sha256(p.read_bytes()).hexdigest() != e["sha256"]:
            raise BuildError("build is inconsistent: %s does not match manifest.json" % e["file"],
                             "run `make firmware` again")
    return manifest, mpath.read_bytes()


def _helpers(link):
    # the hash helper is sent once per REPL session, not with every file
    if "_h" in link.defined:
        return ""
    link.defined.add("_h")
    return _HASH_FN


def device_hashes(link, paths):
    """{path: sha256 hex or None} of files on the board (one line each: no big string)."""
    code = _helpers(link) + "for _p in %r:\n    print('@@H', _p, _h(_p))\n" % (list(paths),)
    out = {}
    for line in link.exec(code, timeout=60).splitlines():
        if line.startswith("@@H "):
            p, h = line[4:].rsplit(" ", 1)
            out[p] = None if h == "None" else h
    if set(out) != set(paths):
        raise DeviceError("unexpected answer from the device while hashing files")
    return out


def device_files(link):
    code = _helpers(link) + _LIST_FN % (SKIP_DIRS,) + \
        "for _p in _walk('/', []):\n    print('@@L', _p)\n"
    return [line[4:] for line in link.exec(code, timeout=60).splitlines()
            if line.startswith("@@L ")]


def _parse(out, tag):
    for line in out.splitlines():
        if line.startswith(tag):
            try:
                return json.loads(line[len(tag):])
            except ValueError:
                break
    raise DeviceError("unexpected answer from the device: %r" % out[-200:])


def put_file(link, path, data, progress=None):
    """Write `data` to `path` on the device through `path.part`, verified, then renamed."""
    parts = path.split("/")[:-1]
    code = "import os, gc\n_f = None\ngc.collect()\nfor _d in %r:\n    try:\n        os.mkdir(_d)\n" \
           "    except OSError:\n        pass\n_f = open(%r, 'wb')\n" % (
               ["/".join(parts[:i + 1]) for i in range(len(parts))], path + ".part")
    link.exec(code)
    for i in range(0, len(data), CHUNK):
        b64 = base64.b64encode(data[i:i + CHUNK]).decode()
        link.exec("import binascii\n_f.write(binascii.a2b_base64(%r))\n" % b64)
        if progress:
            progress(min(CHUNK, len(data) - i))
    want = hashlib.sha256(data).hexdigest()
    code = _helpers(link) + ("_f.close()\n_g = _h(%r)\nif _g == %r:\n    os.rename(%r, %r)\n"
                       "print('@@P', json.dumps(_g))\n") % (path + ".part", want, path + ".part",
                                                             path)
    got = _parse(link.exec(code, timeout=60), "@@P ")
    if got != want:
        raise DeviceError("%s: written %s, read back %s" % (path, want[:12], (got or "")[:12]),
                          "flash worn or full? run install again")


def install(link, build_dir, say=print, bar=None):
    """Bring the device's firmware to the build's; returns {"sent": [...], "fw": sha}."""
    manifest, mbytes = load_manifest(build_dir)
    build = pathlib.Path(build_dir)
    files = [e["file"] for e in manifest["files"]]
    have = device_hashes(link, files + ["manifest.json"])
    todo = [e for e in manifest["files"] if have.get(e["file"]) != e["sha256"]]
    fw = hashlib.sha256(mbytes).hexdigest()
    say("install: %d of %d files differ (%d bytes to send)"
        % (len(todo), len(files), sum(e["size"] for e in todo)))
    progress = bar(sum(e["size"] for e in todo), "install") if bar else None
    for e in todo:
        put_file(link, e["file"], (build / e["file"]).read_bytes(),
                 progress.advance if progress else None)
    if progress:
        progress.done()
    stale = [p for p in device_files(link)
             if p.endswith((".py", ".mpy")) and p not in files]
    if stale:
        say("install: removing %d stale module(s): %s" % (len(stale), ", ".join(stale)))
        link.exec("import os\nfor _p in %r:\n    os.remove(_p)\n" % (stale,))
    if have.get("manifest.json") != fw or todo:
        put_file(link, "manifest.json", mbytes)
    # verify everything by hash, not only what was sent
    final = device_hashes(link, files + ["manifest.json"])
    bad = [f for f in files if final.get(f) != have_sha(manifest, f)]
    if bad or final.get("manifest.json") != fw:
        raise DeviceError("verify failed for %s" % ", ".join(bad or ["manifest.json"]))
    return {"sent": [e["file"] for e in todo], "removed": stale, "fw": fw,
            "files": len(files)}


def have_sha(manifest, name):
    for e in manifest["files"]:
        if e["file"] == name:
            return e["sha256"]
    return None
