"""The foundation's promises: firmware is xtensawin code, CPython-only constructs are
caught with file:line, and MicroPython failures surface with their traceback."""

import pathlib
import shutil
import subprocess
import sys

from tests.conftest import parse_results
from tests.support.mp import MP, ROOT, run_mp

PY = sys.executable


def _copy_firmware(tmp_path):
    dst = tmp_path / "firmware"
    shutil.copytree(ROOT / "firmware", dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def _build(tmp_path, march):
    out = tmp_path / ("fw-" + march)
    r = subprocess.run([PY, "tools/build_firmware.py", "--src", "firmware", "--out", str(out),
                        "--march", march], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


def test_xtensawin_build_is_refused_by_x64_port_and_x64_build_runs(tmp_path):
    xt = _build(tmp_path, "xtensawin")
    manifest = (xt / "manifest.json").read_text()
    assert '"march": "xtensawin"' in manifest and "crc32.mpy" in manifest
    r = subprocess.run([MP, "-c", "import crc32"], cwd=xt, capture_output=True, text=True)
    assert r.returncode != 0 and "incompatible .mpy arch" in r.stdout + r.stderr
    x64 = _build(tmp_path, "x64")
    r = subprocess.run([MP, "-c", "import crc32, clock; print(hex(crc32.crc32(b'123456789')),"
                        " clock.plausible(clock.unix_now()))"],
                       cwd=x64, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split() == ["0xcbf43926", "True"]


def test_manifest_hashes_match_files(tmp_path):
    import hashlib
    import json
    xt = _build(tmp_path, "xtensawin")
    m = json.loads((xt / "manifest.json").read_text())
    assert (xt / "main.py").exists(), "main.py must stay source: MicroPython runs main.py"
    for e in m["files"]:
        data = (xt / e["file"]).read_bytes()
        assert len(data) == e["size"] and hashlib.sha256(data).hexdigest() == e["sha256"]


def _mpycheck(fw):
    return subprocess.run([PY, "tools/mpycheck.py", str(fw)], cwd=ROOT, capture_output=True,
                          text=True)


def test_cpython_only_import_is_caught_with_location(tmp_path):
    fw = _copy_firmware(tmp_path)
    clock = fw / "clock.py"
    clock.write_text("import dataclasses\n" + clock.read_text())
    r = _mpycheck(fw)
    assert r.returncode == 1
    assert "clock.py:1: imports 'dataclasses'" in r.stdout
    # and MicroPython itself refuses it, naming the module
    r = run_mp(["-c", "import clock"], firmware=fw)
    assert r.returncode != 0 and "dataclasses" in r.stdout + r.stderr


def test_cpython_only_method_is_caught_with_location(tmp_path):
    fw = _copy_firmware(tmp_path)
    (fw / "bits.py").write_text("def width(n):\n    return n.bit_length()\n")
    r = _mpycheck(fw)
    assert r.returncode == 1 and "bits.py:2: uses .bit_length()" in r.stdout
    r = run_mp(["-c", "import bits; bits.width(5)"], firmware=fw)
    assert r.returncode != 0 and "bit_length" in r.stdout + r.stderr


def test_syntax_micropython_cannot_compile_is_caught(tmp_path):
    fw = _copy_firmware(tmp_path)
    (fw / "m.py").write_text("def f(x):\n    match x:\n        case 1:\n            return 2\n")
    r = _mpycheck(fw)
    assert r.returncode == 1 and "m.py: mpy-cross -march=xtensawin failed" in r.stdout


def test_wrong_machine_call_is_caught_by_type_check(tmp_path):
    fw = _copy_firmware(tmp_path)
    (fw / "bad_uart.py").write_text("import machine\nu = machine.UART(1, baudrat=9600)\n")
    r = subprocess.run([PY, "tools/typecheck.py", str(fw)], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "bad_uart.py:2" in r.stdout and "baudrat" in r.stdout


def test_firmware_test_failure_shows_micropython_traceback(tmp_path):
    t = tmp_path / "test_x.py"
    t.write_text("def test_ok():\n    pass\n\ndef test_bad():\n    x = {}\n    x['k']\n")
    r = run_mp(["tests/mp/runner.py", str(t), "test_ok", "test_bad"])
    res = parse_results(r.stdout, r.stderr, r.returncode, ["test_ok", "test_bad"])
    assert res["test_ok"][0] is True
    ok, text = res["test_bad"]
    assert not ok and "Traceback" in text and "KeyError" in text and "line 6" in text


def test_crash_of_micropython_is_reported_not_lost():
    res = parse_results("@@BEGIN test_a\npartial\n", "MemoryError", -9, ["test_a", "test_b"])
    assert res["test_a"][0] is False and "inside this test" in res["test_a"][1]
    assert res["test_b"][0] is False and "before it" in res["test_b"][1]


def test_repo_layout():
    for p in ["firmware/main.py", "firmware/drivers", "host/provision.py", "sim", "tests",
              "docs", "Makefile", "pyproject.toml", "README.md", ".ci/run"]:
        assert (ROOT / p).exists(), p
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert pathlib.Path(MP).exists()
