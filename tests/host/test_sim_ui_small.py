"""`make sim` for everyone (issue 16 item 4): at 80x24 the first screen shows the chosen
wallet and the last decision (fare, ms, reason); one simulator per state folder; a tap
cut by the power says so. Textual's pilot drives the real UI on the real firmware.

The same check by hand, in a real terminal: docs/simulator.md 'make sim in a small
terminal' (tmux at 80x24, send-keys, capture-pane)."""

import asyncio
import html
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from textual.widgets import DataTable

from sim.launcher import SimBoard, SimError
from sim.ui import ValidatorApp
from tests.support.pilot import until
from tests.support.mp import ROOT


async def _until(pilot, pred, timeout=40):
    return await until(pilot, pred, timeout)


def _visible(app):
    """The text of the cells on screen (what a terminal of that size shows)."""
    svg = app.export_screenshot()
    body = svg[svg.find("<g"):]  # past the style sheet
    text = html.unescape(re.sub(r"<[^>]+>", "", body)).replace("\xa0", " ")
    return re.sub(r"\s+", " ", text)


def test_80x24_shows_the_wallet_and_the_last_decision(tmp_path):
    board = SimBoard(tmp_path / "state")
    app = ValidatorApp(board=board)

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            assert await _until(pilot, lambda: board.status.get("ready")), board.console
            assert app.has_class("narrow")
            await pilot.press("2", "n")  # concession wallet, NFC tap
            table = app.query_one("#decisions", DataTable)
            assert await _until(pilot, lambda: table.row_count == 1)
            await pilot.pause(0.6)
            seen = _visible(app)
            assert "wallet 2 concession" in seen, seen
            assert "last: BERHASIL Rp 1000" in seen and " 0 ok " in seen, seen
            # the summary is on the first rows, the table's key columns within 80
            summary = app.query_one("#summary")
            assert summary.region.y <= 2 and summary.region.right <= 80
            cols = list(table.columns.values())
            labels = [str(c.label) for c in cols]
            assert labels[:5] == ["#", "answer", "fare", "ms", "reason"]
            assert sum(c.get_render_width(table) for c in cols[:5]) <= 78
            # @@STATUS lines stay out of the console unless asked for (key f)
            assert not any("@@STATUS" in str(line) for line in
                           app.query_one("#console").lines)
            # a tap cut by the power says so
            board.label = "regular"
            board._waiting = "regular"
            await pilot.press("p")
            assert await _until(pilot, lambda: table.row_count == 2)
            await pilot.pause(0.6)
            assert "CUT BY POWER" in _visible(app)
            await pilot.press("q")
        return True

    try:
        assert asyncio.run(scenario())
    finally:
        board.stop()


def test_one_simulator_per_state_folder(tmp_path):
    first = SimBoard(tmp_path / "state")
    first.lock()
    try:
        with pytest.raises(SimError, match="another simulator .* is using"):
            SimBoard(tmp_path / "state").lock()
        # the headless commands say it in one line and exit 2, touching nothing
        r = subprocess.run([sys.executable, "-m", "sim", "--state", str(tmp_path / "state"),
                            "tap", "--wallet", "regular"], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr.count("\n") == 1 and "another simulator" in r.stderr, r.stderr
        assert not (tmp_path / "state" / "flash.img").exists()
    finally:
        first.stop()
    SimBoard(tmp_path / "state").lock()  # free again once the first one stopped


def _tmux(*args):
    # a tmux server of this test's own (other test runs may share the machine)
    return subprocess.run(["tmux", "-L", "brt-sim-test-%d" % os.getpid()] + list(args),
                          capture_output=True, text=True, timeout=20)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
def test_make_sim_in_a_real_80x24_terminal(tmp_path):
    # the real thing: `python -m sim` (what `make sim` runs) in an 80x24 tmux window,
    # keys sent to it, the screen read back
    cmd = "cd %s && %s -m sim --state %s; sleep 30" % (ROOT, sys.executable, tmp_path / "st")
    assert _tmux("new-session", "-d", "-s", "sim", "-x", "80", "-y", "24", cmd).returncode == 0

    def screen():
        return _tmux("capture-pane", "-p", "-t", "sim").stdout

    def until(pred, timeout=60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            s = screen()
            if pred(s):
                return s
            time.sleep(0.3)
        return screen()

    try:
        s = until(lambda s: "firmware ready" in s)
        assert "firmware ready" in s, s
        _tmux("send-keys", "-t", "sim", "2")
        time.sleep(0.5)
        _tmux("send-keys", "-t", "sim", "n")
        s = until(lambda s: "last: BERHASIL" in s)
        assert "wallet 2 concession" in s and "last: BERHASIL Rp 1000" in s, s
        assert all(len(line) <= 80 for line in s.splitlines())
        _tmux("send-keys", "-t", "sim", "q")
        until(lambda s: "firmware ready" not in s, 20)
    finally:
        _tmux("kill-server")
