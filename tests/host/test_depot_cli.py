"""Depot CLI, registry API, status page, and the upload-batch decoder against generated
input (every malformed body is a typed DepotError, never a crash)."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from hypothesis import given, settings, strategies as st

from host import bundles as hb
from host.depot import register, wire
from host.depot.__main__ import main
from host.depot.errors import DepotError
from host.depot.server import DepotServer, status_page
from host.depot.store import DepotStore
from tests.support.mp import ROOT


def test_register_api_and_cli(tmp_path, capsys):
    db = str(tmp_path / "d.db")
    assert register(db, "val-9", b"k" * 32) is True
    assert register(db, "val-9", b"j" * 32) is False  # re-provisioned: new secret
    s = DepotStore(db).open()
    assert s.secret("val-9") == b"j" * 32
    s.close()
    for bad in [("", b"k" * 32), ("a/b", b"k" * 32), ("val", b"short")]:
        with pytest.raises(DepotError) as e:
            register(db, *bad)
        assert e.value.reason == "bad_input"
    assert main(["--db", db, "register", "val-10", "--secret-hex", "ab" * 16]) == 0
    assert main(["--db", db, "register", "val-11", "--secret-hex", "zz"]) == 1
    assert "not hex" in capsys.readouterr().err
    assert main(["--db", db, "register", "val-11"]) == 1
    assert main(["--db", db, "status"]) == 0
    out = capsys.readouterr().out
    assert "val-9" in out and "val-10" in out and "2 validators" in out
    key = hb.generate_key()
    f = tmp_path / "fares.bin"
    f.write_bytes(hb.sign_bundle(hb.FARES, 4, hb.fares_body({0: 3500}), key))
    assert main(["--db", db, "bundle", str(f), "--operator-pub",
                 hb.public_bytes(key).hex()]) == 0
    assert main(["--db", db, "bundle", str(f), "--operator-pub",
                 hb.public_bytes(hb.generate_key()).hex()]) == 1
    assert "bad_signature" in capsys.readouterr().err
    assert main(["--db", db, "bundle", str(tmp_path / "missing")]) == 1
    assert main(["--db", db, "status", "--json"]) == 0
    st_ = json.loads(capsys.readouterr().out)
    assert st_["bundles"] == {"3": 4}


def test_status_page_shows_devices_pending_and_gaps(tmp_path):
    s = DepotStore(str(tmp_path / "d.db")).open()
    s.register("val-1", b"k" * 32)
    s.ingest("val-1", [(1, 0, b"a"), (2, 0, b"b"), (5, 0, b"c")])
    srv = DepotServer(s).start()
    try:
        with urllib.request.urlopen(srv.url + "/", timeout=10) as r:
            page = r.read().decode()
        with urllib.request.urlopen(srv.url + "/v1/status", timeout=10) as r:
            st_ = json.loads(r.read())
    finally:
        srv.stop()
        s.close()
    assert "val-1" in page and "seq 3&ndash;4 missing" in page
    assert "pending: 0 batches, 3 taps" in page
    assert st_["gaps"] == [["val-1", 3, 4]] and st_["devices"][0]["taps"] == 3
    assert "<script" not in status_page(dict(st_, depot_id="<script>"))


def test_serve_starts_with_one_command(tmp_path):
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        port = so.getsockname()[1]
    p = subprocess.Popen([sys.executable, "-m", "host.depot", "--db", str(tmp_path / "d.db"),
                          "serve", "--host", "127.0.0.1", "--port", str(port)],
                         cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        line = p.stdout.readline()
        assert "serving on http://127.0.0.1:%d" % port in line, line + p.stderr.read()
        t0 = time.time()
        with urllib.request.urlopen("http://127.0.0.1:%d/v1/time" % port, timeout=10) as r:
            assert abs(json.loads(r.read())["time"] - t0) < 5
    finally:
        p.terminate()
        p.wait(10)
        p.stdout.close()
        p.stderr.close()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decode_batch_never_crashes(data):
    try:
        wire.decode_batch(data)
    except DepotError as e:
        assert e.reason in ("malformed", "too_large")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=200)), max_size=30,
                unique_by=lambda r: r[0]), st.integers(0, 400), st.integers(1, 255))
def test_decode_batch_round_trip_and_mutations(recs, pos, xor):
    recs = sorted((s, 1760000000, p) for s, p in recs)
    if not recs:
        return
    body = wire.encode_batch("val-1", 1760000000, recs)
    assert wire.decode_batch(body) == ("val-1", 1760000000, recs)
    bad = bytearray(body)
    bad[pos % len(bad)] ^= xor
    try:
        wire.decode_batch(bytes(bad))
    except DepotError as e:
        assert e.reason == "malformed"
