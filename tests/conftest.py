"""Collects tests/firmware/**/test_*.py as MicroPython tests.

Each `def test_*` in such a file is its own pytest item, but the file runs once, in one
`micropython -X heapsize=128K` process (tests/mp/runner.py), and each item reports its
own slice of the output — a failure shows the MicroPython traceback.

Per-file header comments change the run (say why in the comment):
    # mp-heapsize: 256K  because ...
    # mp-path: sim/vboard          (extra import path, relative to the repo root)
    # mp-timeout: 300              (seconds for the whole file; default 120)
    # mp-devhost: hsu              (start a sim device host for the file, PN532 on "hsu"
                                     or "i2c"; BRT_DEVHOST points the vboard at it)
"""

import ast
import os
import re

import pytest

from tests.support.mp import ROOT, DEFAULT_HEAP, run_mp

FW_TESTS = ROOT / "tests" / "firmware"
_HDR = re.compile(r"^#\s*mp-(heapsize|path|timeout|devhost):\s*(\S+)", re.M)


def pytest_pycollect_makemodule(module_path, parent):
    if FW_TESTS in module_path.parents:
        return MPFile.from_parent(parent, path=module_path)
    return None


class MPFailure(Exception):
    pass


class MPFile(pytest.File):
    def collect(self):
        src = self.path.read_text()
        opts = {"heapsize": DEFAULT_HEAP, "path": [], "timeout": "120"}
        for key, val in _HDR.findall(src):
            if key == "path":
                opts["path"].append(val)
            else:
                opts[key] = val
        self.opts = opts
        self._results = None
        tree = ast.parse(src, str(self.path))
        self._names = [node.name for node in tree.body
                       if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]
        for name in self._names:
            yield MPItem.from_parent(self, name=name)

    def results(self):
        if self._results is None:
            names = self._names
            rel = str(self.path.relative_to(ROOT))
            devhost = None
            if self.opts.get("devhost"):
                from sim.devhost import DevHost
                devhost = DevHost(pn532_bus=self.opts["devhost"])
                os.environ["BRT_DEVHOST"] = devhost.start()
            try:
                r = run_mp(["tests/mp/runner.py", rel] + names, heap=self.opts["heapsize"],
                           paths=self.opts["path"], timeout=int(self.opts["timeout"]))
                out, err, rc = r.stdout, r.stderr, r.returncode
            except Exception as e:  # timeout: every remaining item fails with the reason
                out, err, rc = getattr(e, "stdout", "") or "", str(e), -1
                if isinstance(out, bytes):
                    out = out.decode("utf-8", "replace")
            finally:
                if devhost is not None:
                    devhost.stop()
                    os.environ.pop("BRT_DEVHOST", None)
            self._results = parse_results(out, err, rc, names)
        return self._results


def parse_results(out, err, rc, names):
    res = {}
    if "@@IMPORTERROR" in out:
        tb = out.split("@@IMPORTERROR", 1)[1].split("@@ENDIMPORT", 1)[0]
        return {n: (False, "import of the test file failed under MicroPython:\n" + tb) for n in names}
    cur, buf = None, []
    for line in out.splitlines():
        if line.startswith("@@BEGIN "):
            cur, buf = line[8:], []
        elif line.startswith("@@PASS ") or line.startswith("@@FAIL "):
            res[line[7:]] = (line.startswith("@@PASS"), "\n".join(buf))
            cur = None
        elif cur is not None:
            buf.append(line)
    if cur is not None:  # the process died inside a test
        res[cur] = (False, "\n".join(buf) + "\nmicropython exited (rc=%s) inside this test:\n%s"
                    % (rc, err))
    for n in names:
        res.setdefault(n, (False, "not run: micropython exited (rc=%s) before it:\n%s" % (rc, err)))
    return res


class MPItem(pytest.Item):
    def runtest(self):
        ok, text = self.parent.results()[self.name]
        if text.strip():
            print(text)
        if not ok:
            raise MPFailure(text)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, MPFailure):
            return "MicroPython test failed (%s):\n%s" % (self.nodeid, excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, "[micropython] " + self.name
