"""`make sim`: the validator on the desktop, in a terminal UI (Textual).

The board is a real one for the firmware: sim.launcher.SimBoard starts the device host
(virtual PN532, QR scanner, OLED, DS3231, lights, Wi-Fi) and runs firmware/main.py
unmodified in the MicroPython unix port. This UI only *acts on the virtual world* (a phone
taps, the scanner reads a code, the power goes, the clock moves) and *shows what a rider
and a technician would see* (the OLED's pixels, the lights, the buzzer) plus what the
firmware logs (each decision, the journal status).
"""

import time

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, RichLog, Static

from sim import world as simworld
from sim.launcher import SimBoard, SimError

ANSWERS = {0: "BERHASIL", 1: "DITOLAK", 2: "SUDAH BAYAR"}
COLOURS = {0: "bold green", 1: "bold red", 2: "bold yellow"}


NARROW = 150  # columns below which the panels stack (and the body scrolls)


class ValidatorApp(App):
    TITLE = "BRT validator — simulator"
    # The most useful first: the summary (chosen wallet, last decision) is always on top;
    # wide terminals get two columns, narrow ones (80x24 up) one scrolling column with the
    # OLED as text instead of its 128-pixel-wide picture.
    CSS = """
    #summary { height: 3; padding: 0 1; background: $boost; }
    #body { height: 1fr; }
    #cols { height: auto; }
    #left { width: 134; height: auto; }
    #right { height: auto; }
    #oled { height: 34; border: round $accent; padding: 0 0; background: #05080f; color: #96dcff; }
    #lights { height: 3; border: round $panel; }
    #status { height: 9; border: round $panel; }
    #wallets { height: 10; border: round $panel; }
    #decisions { height: 14; border: round $panel; }
    #console { height: 10; border: round $panel; }
    .narrow #cols { layout: vertical; }
    .narrow #left { width: 100%; }
    .narrow #oled { height: 8; }
    .narrow #decisions { height: 10; }
    """
    BINDINGS = [
        Binding("1", "wallet(0)", "regular", show=False),
        Binding("2", "wallet(1)", "concession", show=False),
        Binding("3", "wallet(2)", "expired", show=False),
        Binding("4", "wallet(3)", "revoked", show=False),
        Binding("5", "wallet(4)", "forged", show=False),
        Binding("6", "wallet(5)", "screenshot", show=False),
        Binding("7", "wallet(6)", "other operator", show=False),
        Binding("8", "wallet(7)", "garbage", show=False),
        Binding("n", "tap", "tap NFC"),
        Binding("s", "scan", "scan QR"),
        Binding("a", "again", "again"),
        Binding("p", "power", "power cut"),
        Binding("[", "clock(-3600)", "clock -1h"),
        Binding("]", "clock(3600)", "clock +1h"),
        Binding("u", "unset_clock", "clock unset"),
        Binding("c", "clock_now", "clock now"),
        Binding("d", "depot", "depot Wi-Fi"),
        Binding("r", "revoke", "revoke at depot"),
        Binding("f", "filter", "@@STATUS lines"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, board=None, state_dir=None):
        super().__init__()
        self.board = board or SimBoard(state_dir)
        self.wallet = 0
        self.last = None            # ("tap"|"scan", wallet index)
        self.at_depot = False
        self.busy = False
        self.shown = 0              # decisions already in the table
        self.show_status = False    # @@STATUS lines in the console (key f)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("starting…", id="summary")
        with VerticalScroll(id="body"):
            with Horizontal(id="cols"):
                with Vertical(id="left"):
                    yield Static("starting…", id="oled")
                    yield Static("", id="lights")
                    yield Static("", id="status")
                with Vertical(id="right"):
                    yield Static("", id="wallets")
                    yield DataTable(id="decisions", zebra_stripes=True)
                    yield RichLog(id="console", max_lines=300)
        yield Footer()

    def on_mount(self):
        self.query_one("#oled").border_title = "OLED 128×64"
        self.query_one("#lights").border_title = "lights"
        self.query_one("#status").border_title = "validator"
        self.query_one("#wallets").border_title = "phone wallet (1-8 choose)"
        self.query_one("#decisions").border_title = "decisions"
        self.query_one("#console").border_title = "console (f: @@STATUS lines)"
        t = self.query_one("#decisions", DataTable)
        # the columns a developer reads first come first: they stay visible at 80 columns
        t.add_columns("#", "answer", "fare", "ms", "reason", "wallet", "ch", "time")
        self._layout(self.size.width)
        self._render_wallets()
        self.start_board()
        self.set_interval(0.25, self.refresh_view)

    def on_resize(self, event):
        self._layout(event.size.width)

    def _layout(self, width):
        self.set_class(width < NARROW, "narrow")
        self.query_one("#oled").border_title = \
            "OLED (text)" if width < NARROW else "OLED 128×64"

    # --- the board runs in threads: the UI never waits on it --------------------------

    @work(thread=True, exclusive=True, group="board")
    def start_board(self):
        self.busy = True
        self.board.log = self._console
        try:
            self.board.start()
            self._console("[sim] validator ready (state in %s)" % self.board.state)
        except SimError as e:
            self._console("[sim] %s" % e)
        finally:
            self.busy = False

    def _console(self, line):
        if line.startswith("@@STATUS") and not self.show_status:
            return  # once a second: shown in the status panel, not in the console
        try:
            self.call_from_thread(self.query_one("#console", RichLog).write, line)
        except RuntimeError:  # called on the UI thread itself
            self.query_one("#console", RichLog).write(line)

    @work(thread=True, exclusive=True, group="board")
    def _act(self, kind, widx):
        name = simworld.WALLET_ORDER[widx]
        self.busy = True
        try:
            if kind == "tap":
                self.board.tap(name)
            else:
                self.board.scan_wallet(name)
        except SimError as e:
            self._console("[sim] %s" % e)
        finally:
            self.busy = False

    def _go(self, kind):
        if self.busy or self.board.host is None:
            self.bell()
            return
        self.last = (kind, self.wallet)
        self._act(kind, self.wallet)

    # --- actions ------------------------------------------------------------------------

    def action_wallet(self, i):
        self.wallet = i
        self._render_wallets()

    def action_tap(self):
        self._go("tap")

    def action_scan(self):
        self._go("scan")

    def action_again(self):
        if self.last is None:
            self.bell()
            return
        self.wallet = self.last[1]
        self._render_wallets()
        self._go(self.last[0])

    @work(thread=True, exclusive=True, group="board")
    def action_power(self):
        if self.board.fw is None:
            return
        self.busy = True
        self._console("[sim] power cut")
        try:
            self.board.power_cut()
            self._console("[sim] power on: booted (%d boots)" % self.board.boots)
        except SimError as e:
            self._console("[sim] %s" % e)
        finally:
            self.busy = False

    def action_clock(self, delta):
        if self.board.host:
            self.board.set_clock(self.board.clock() + int(delta))

    def action_unset_clock(self):
        if self.board.host:
            self.board.unset_clock()

    def action_clock_now(self):
        if self.board.host:
            self.board.set_clock(self.board.now())

    def action_depot(self):
        if self.board.host:
            self.at_depot = not self.at_depot
            self.board.depot(self.at_depot)

    def action_revoke(self):
        if self.board.depot_store is None:
            self.bell()
            return
        name = simworld.WALLET_ORDER[self.wallet]
        v = self.board.revoke(name)
        self._console("[sim] back office revoked %s: deny list v%d at the depot (synced "
                      "when the bus is in the depot's Wi-Fi, key d)" % (name, v))

    def action_filter(self):
        self.show_status = not self.show_status
        self._console("[sim] @@STATUS lines %s" % ("shown" if self.show_status else "hidden"))

    async def action_quit(self):
        self.board.stop()
        self.exit()

    # --- view ---------------------------------------------------------------------------

    def _render_wallets(self):
        lines = []
        for i, name in enumerate(simworld.WALLET_ORDER):
            mark = "▶" if i == self.wallet else " "
            lines.append("%s %d %-15s %s" % (mark, i + 1, name, simworld.WALLETS[name]))
        self.query_one("#wallets", Static).update("\n".join(lines))
        self._render_summary()

    def _render_summary(self):
        name = simworld.WALLET_ORDER[self.wallet]
        out = Text()
        out.append("wallet %d %s" % (self.wallet + 1, name), style="bold")
        out.append("  %s\n" % simworld.WALLETS[name], style="dim")
        h = self.board.history
        if not h:
            out.append("last: no tap yet (n: NFC tap, s: QR scan)\n")
        else:
            d = h[-1]
            out.append("last: ")
            if d.get("power_cut"):
                out.append("CUT BY POWER", style="bold magenta")
                out.append(" %s: no answer given; after the reboot the journal tells "
                           "whether it was recorded" % d.get("wallet", "?"))
            else:
                out.append(ANSWERS.get(d.get("answer"), "?"),
                           style=COLOURS.get(d.get("answer"), ""))
                out.append(" Rp %s  %s ms  %s %s  %s %s" % (
                    d.get("fare", 0), _total_ms(d), d.get("reason"),
                    d.get("reason_name", ""), d.get("channel", "?"), d.get("wallet", "-")))
            out.append("\n")
        b = self.board
        running = b.fw is not None and b.fw.proc is not None and b.fw.proc.poll() is None
        st = b.status
        out.append("firmware %s  boots %d  faults: %s" % (
            ("ready" if st.get("ready") else "booting") if running else "stopped", b.boots,
            ", ".join(st.get("faults", [])) or "none"), style="dim")
        self.query_one("#summary", Static).update(out)

    def refresh_view(self):
        b = self.board
        self._render_summary()
        if b.host is None:
            return
        narrow = self.has_class("narrow")
        self.query_one("#oled", Static).update(b.screen() if narrow else b.screen_art())
        lt = b.lights()
        buz = lt.get("buzzer")
        light = Text()
        light.append("● GREEN  " if lt.get("green") else "○ green  ",
                     style="bold green" if lt.get("green") else "dim")
        light.append("● RED  " if lt.get("red") else "○ red  ",
                     style="bold red" if lt.get("red") else "dim")
        if isinstance(buz, dict) and buz.get("on"):
            light.append("♪ %d Hz" % buz.get("freq", 0), style="bold yellow")
        else:
            light.append("♪ quiet", style="dim")
        self.query_one("#lights", Static).update(light)
        st = b.status
        j = st.get("journal") or {}
        clk = b.clock()
        lines = [
            "device %s  bus %s  route %s  boots %d"
            % (st.get("device", "?"), st.get("bus", "?"), st.get("route", "?"), b.boots),
            "clock %s UTC%s   (real %s)"
            % (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(clk)),
               "  UNTRUSTED" if st.get("clock_ok") is False else "",
               time.strftime("%H:%M:%S", time.gmtime())),
            "journal: %s taps, %s unsent, last seq %s, room for %s more%s"
            % (j.get("count", "?"), j.get("unsent", "?"), j.get("last_seq", "?"),
               j.get("free_records", "?"), "  FULL" if j.get("full") else ""),
            "faults: %s" % (", ".join(st.get("faults", [])) or "none"),
            "depot Wi-Fi: %s   sync: %s" % ("in range" if self.at_depot else "out of range",
                                            st.get("sync", "-")),
            # the S3 figure is MODELLED: x0.71-0.75 for 32-bit objects (DESIGN §2), in 8 MB
            # of PSRAM (the old "ESP32: ~110 KiB" was the WROOM-32's free heap)
            "firmware: %s   heap in use %s KiB (S3: ~%s KiB, modelled)"
            % ("running" if b.fw and b.fw.proc and b.fw.proc.poll() is None else "stopped",
               "%.0f" % (st["heap"]["used"] / 1024) if st.get("heap") else "?",
               "%.0f" % (st["heap"]["used"] * 0.73 / 1024) if st.get("heap") else "?"),
        ]
        self.query_one("#status", Static).update("\n".join(lines))
        t = self.query_one("#decisions", DataTable)
        while self.shown < len(b.history):
            d = b.history[self.shown]
            self.shown += 1
            if d.get("power_cut"):
                answer, reason = Text("CUT BY POWER", style="bold magenta"), "no answer"
            else:
                answer = Text(ANSWERS.get(d.get("answer"), "?"),
                              style=COLOURS.get(d.get("answer"), ""))
                reason = "%s %s" % (d.get("reason"), d.get("reason_name", ""))
            t.add_row(str(self.shown), answer, str(d.get("fare", 0)), _total_ms(d), reason,
                      d.get("wallet", "-"), d.get("channel", "?"),
                      time.strftime("%H:%M:%S", time.gmtime(d.get("t", 0))))
            t.scroll_end(animate=False)


def _total_ms(d):
    tm = d.get("ms") or {}
    return "%.0f" % sum(v for v in tm.values() if isinstance(v, (int, float)))


def main(state_dir=None, fresh=False):
    board = SimBoard(state_dir, fresh=fresh)
    try:
        board.lock()  # one simulator per state folder: say so before the screen opens
    except SimError as e:
        print("sim: %s" % e)
        return 2
    ValidatorApp(board=board).run()
    return 0
