"""The `make sim` terminal UI, driven by Textual's pilot (CI never runs it interactively):
keys choose a wallet, tap by NFC, scan a QR, tap again, cut the power, move the clock;
the decisions table, the OLED panel and the status follow the real firmware."""

import asyncio

from textual.widgets import DataTable, Static

from sim.launcher import SimBoard
from sim.ui import ValidatorApp
from tests.support.pilot import until as _until


def _cell(table, row, col):
    return str(table.get_row_at(row)[col])


def test_ui_keys_drive_the_virtual_validator(tmp_path):
    board = SimBoard(tmp_path / "state")
    app = ValidatorApp(board=board)

    async def scenario():
        async with app.run_test(size=(220, 64)) as pilot:
            assert await _until(pilot, lambda: board.status.get("ready")), board.console
            table = app.query_one("#decisions", DataTable)
            await pilot.press("1", "n")                      # regular wallet, NFC tap
            assert await _until(pilot, lambda: table.row_count == 1)
            assert _cell(table, 0, 1) == "BERHASIL" and _cell(table, 0, 2) == "3500"
            assert _cell(table, 0, 5) == "regular" and _cell(table, 0, 6) == "nfc"
            await pilot.press("a")                           # the same again: already paid
            assert await _until(pilot, lambda: table.row_count == 2)
            assert _cell(table, 1, 1) == "SUDAH BAYAR"
            await pilot.press("6", "s")                      # screenshot, by QR: refused
            assert await _until(pilot, lambda: table.row_count == 3)
            assert _cell(table, 2, 1) == "DITOLAK" and _cell(table, 2, 4).startswith("21")
            await pilot.pause(0.5)
            oled = app.query_one("#oled", Static)
            assert "█" in str(oled.render()), "the OLED panel shows the screen's pixels"
            st = app.query_one("#status", Static)
            # the firmware reports its status once a second
            assert await _until(pilot, lambda: "journal: 3 taps" in str(st.render())), \
                str(st.render())
            boots = board.boots
            await pilot.press("p")                           # power cut and restart
            assert await _until(pilot, lambda: board.boots == boots + 1 and
                                board.status.get("ready"))
            before = board.clock()
            await pilot.press("]")                           # clock +1 h
            assert board.clock() >= before + 3600
            await pilot.press("u")                           # clock unset
            assert await _until(pilot, lambda: board.status.get("clock_ok") is False)
            await pilot.press("2", "s")                      # QR refused: clock untrusted
            assert await _until(pilot, lambda: table.row_count == 4)
            assert _cell(table, 3, 4).startswith("25")
            await pilot.press("q")
        return True

    try:
        assert asyncio.run(scenario())
    finally:
        board.stop()
