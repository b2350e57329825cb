# The tap loop: NFC and QR read concurrently in one non-blocking loop (no task ever
# waits on another: each poll is bounded - the PN532's passive activation is limited to
# one retry, the QR scanner is read from its UART buffer), the watchdog fed every turn,
# answers on the screen and lights, faults shown and retried, depot work in between.
#
# Every tap ends in exactly one Decision (docs/validator.md): answered on the OLED, with
# a light/buzzer pattern, logged on the console as "@@TAP <json>", journaled by the
# pipeline. A reader that fails is retried every few seconds; the other keeps working.
import gc
import json
import time

from micropython import const

import clock
import entropy
from app import messages, reasons, record, screen
from app.summary import summary
from drivers.gm65 import GM65Error, GM65LineError
from drivers.pn532 import PN532Error, PN532PhoneError, PN532TargetGone
from tokens import apdu
from tokens.reasons import TOO_LARGE
from tokens.errors import TokenError

ANSWER_MS = const(3000)          # an answer stays on the screen this long
RETRY_MS = const(5000)           # a faulty reader is tried again this often
STATUS_MS = const(1000)          # console status line period
SAME_QR_MS = const(3000)         # the scanner re-reading the code just decided: ignore
NFC_POLL_MS = const(60)          # bound of one InListPassiveTarget (no card: ~returns fast)
CHECKPOINT_IDLE_MS = const(1500)  # quiet this long after a tap: checkpoint the RAM state
MAX_TOKEN = const(512)

PATTERNS = {record.ACCEPTED: "accepted", record.REJECTED: "rejected",
            record.ALREADY_PAID: "already_paid"}


class TapLoop:
    def __init__(self, board, validator, wdt=None, depot=None, clock_source=None):
        self.b = board
        self.v = validator
        self.wdt = wdt
        self.depot = depot
        self.clock_source = clock_source     # () -> (unix seconds, trusted)
        self.tokbuf = bytearray(MAX_TOKEN)
        self.nfc_ok = True
        self.qr_ok = True
        self.display_ok = True
        self.nfc_hold = None                 # UID of the phone still in the field after its tap
        self._retry_at = time.ticks_ms()
        self._answer_until = None
        self._status_at = time.ticks_ms()
        self._last_qr = None
        self._last_qr_at = time.ticks_ms()
        self._idle_drawn = False
        self._last_tap_ms = time.ticks_ms()
        self.taps = 0
        self.last = None
        self._dec = None                     # the Decision every tap reuses (_into)

    # --- time ---------------------------------------------------------------------------

    def now(self):
        """(Unix seconds, trusted) from the DS3231; untrusted if it is unset or gone."""
        try:
            t, ok = self.clock_source()
        except Exception:  # noqa: BLE001 - the RTC's driver error: fall back, untrusted
            return clock.unix_now(), False
        return t, bool(ok and clock.plausible(t))

    # --- one turn -----------------------------------------------------------------------

    def run(self):
        while True:
            self.turn()

    def turn(self):
        if self.wdt is not None:
            self.wdt.feed()
        tapped = False
        if self.nfc_ok:
            tapped = self._poll_nfc()
        if self.qr_ok and not tapped:
            tapped = self._poll_qr()
        now_ms = time.ticks_ms()
        try:
            self.b.signals.tick(now_ms)
        except OSError:
            pass
        if self._answer_until is not None and time.ticks_diff(now_ms, self._answer_until) >= 0:
            self._answer_until = None
            self._idle_drawn = False
        idle = not tapped and self._answer_until is None
        if idle:
            if time.ticks_diff(now_ms, self._retry_at) >= 0:
                self._retry_at = time.ticks_add(now_ms, RETRY_MS)
                self._recover()
            if not self._idle_drawn:
                self._draw_idle()
            if not self._checkpoint(now_ms, False):
                j = self.v.journal
                if j is not None:
                    try:
                        j.maintain()    # at most one sector erase, so appends never wait
                    except Exception:  # noqa: BLE001 - a flash fault shows on the next append
                        pass
        elif not tapped:
            self._checkpoint(now_ms, True)
        if self.depot is not None:
            self.depot.step(now_ms, idle and self.nfc_hold is None)
            if idle and self.v.reload_pending and not self.depot.busy():
                # new trust list / fares / deny list / config: a clean boot loads and
                # re-verifies them exactly as at power-on (a few seconds, at the depot)
                print("@@REBOOT new bundles installed")
                import machine
                machine.reset()
        if time.ticks_diff(now_ms, self._status_at) >= 0:
            self._status_at = time.ticks_add(now_ms, STATUS_MS)
            self.report_status()
        if not tapped:
            time.sleep_ms(10)           # the QR UART buffers meanwhile; ~10 ms tap latency

    def _checkpoint(self, now_ms, only_if_full):
        """Checkpoint the RAM state when the reader has been quiet for a while (or the
        pending sums are at their bound); one LittleFS write per call."""
        p = self.v.pipeline
        if p is None or not p.dirty():
            return False
        if only_if_full:
            if not p.allowance.full():
                return False
        elif time.ticks_diff(now_ms, self._last_tap_ms) < CHECKPOINT_IDLE_MS:
            return False
        return p.checkpoint_step(self.now()[0])

    # --- NFC ----------------------------------------------------------------------------

    def _poll_nfc(self):
        nfc = self.b.nfc
        try:
            tgt = nfc.list_target(NFC_POLL_MS)
        except PN532Error as e:
            self._reader_fault("nfc", e)
            return False
        if tgt is None:
            self.nfc_hold = None        # the field is empty: the next phone is a new tap
            return False
        if tgt.uid == self.nfc_hold or not tgt.iso_dep():
            return False                # the same phone still there, or a plain card
        # a phone (HCE) keeps its random UID while it stays in the field and takes a new
        # one when it comes back: the UID tells "still there" from "tapped again"
        self.nfc_hold = tgt.uid
        t0 = time.ticks_us()
        now, ok = self.now()
        challenge = entropy.random(16)  # not os.urandom alone: radio off (entropy.py)
        p = self.v.pipeline
        try:
            apdu.select(nfc.exchange)
            payload = apdu.read_token(nfc.exchange, challenge, self.tokbuf)
        except TokenError as e:         # not a wallet, or it broke the protocol
            d = self._pre(record.NFC, e.reason, now, ok)
        except PN532PhoneError as e:
            # the phone's fault or the air's, not the reader's: the read fails (reason 47,
            # as docs/conformance.md tells wallet makers for a response over 250 bytes) and
            # the reader stays in service - a phone sending over-long answers must not take
            # the door's NFC down. Garbled: the same phone is read anew at once; too long:
            # it would fail the same way, so only once it has left and comes back
            d = self._pre(record.NFC, reasons.READER_FAULT, now, ok)
            if not e.too_long:
                self.nfc_hold = None
        except PN532TargetGone:         # pulled away mid-exchange: nothing was decided
            d = self._pre(record.NFC, reasons.READER_FAULT, now, ok)
            self.nfc_hold = None
        except PN532Error as e:
            d = self._pre(record.NFC, reasons.READER_FAULT, now, ok)
            self._reader_fault("nfc", e)
        else:
            us_read = time.ticks_diff(time.ticks_us(), t0)
            if p is None:
                d = self._pre(record.NFC, self.v.why_not_ready(), now, ok)
            else:
                d = p.decide_nfc(payload, challenge, now, ok, self._into())
            d.us_read = us_read
        self.answer(d)
        try:
            nfc.release()
        except PN532Error:
            pass
        return True

    # --- QR -----------------------------------------------------------------------------

    def _poll_qr(self):
        t0 = time.ticks_us()
        try:
            line = self.b.qr.poll()
        except GM65LineError as e:     # noise or an over-long line: ask for a new scan
            now, ok = self.now()
            # a line longer than the format allows is the token's fault (docs/tokens.md:
            # TOO_LARGE), noise the reader's
            why = TOO_LARGE if e.why == "too long" else reasons.READER_FAULT
            self.answer(self._pre(record.QR, why, now, ok))
            return True
        except (GM65Error, OSError) as e:
            self._reader_fault("qr", e)
            return False
        if line is None:
            return False
        now_ms = time.ticks_ms()
        if self._last_qr is not None and bytes(line) == self._last_qr and \
                time.ticks_diff(now_ms, self._last_qr_at) < SAME_QR_MS:
            return False                # the same code read again while still in view
        self._last_qr = bytes(line)
        self._last_qr_at = now_ms
        us_read = time.ticks_diff(time.ticks_us(), t0)
        now, ok = self.now()
        p = self.v.pipeline
        if p is None:
            d = self._pre(record.QR, self.v.why_not_ready(), now, ok)
        else:
            d = p.decide_qr(line, now, ok, self._into())
        d.us_read = us_read
        self.answer(d)
        return True

    # --- answers ------------------------------------------------------------------------

    def _into(self):
        # one Decision for every tap, reset by the pipeline: a new one per tap was ~0.4 KB
        # of garbage on the PSRAM heap (docs/validator.md 'Memory'); self.last is the same
        # object, which is what it means: the last tap
        d = self._dec
        if d is None:
            from app.decision import Decision
            d = self._dec = Decision()
        return d

    def _pre(self, channel, reason, now, ok):
        """A tap refused before the decision could start: still journaled if possible."""
        p = self.v.pipeline
        if p is not None:
            return p.fault(channel, reason, now, ok, self._into())
        return self.v.refuse(channel, reason, now, ok)

    def answer(self, d):
        t0 = time.ticks_us()
        self.taps += 1
        self.last = d
        self._last_tap_ms = time.ticks_ms()
        head, detail_id, detail_en = messages.lines(d)
        if self.display_ok:
            try:
                from drivers import layout
                layout.message(self.b.display, head, detail_id, detail_en)
                self.b.display.show()
            except OSError:
                self.display_ok = False
        try:
            self.b.signals.start(PATTERNS.get(d.answer, "rejected"))
        except OSError:
            pass
        self._answer_until = time.ticks_add(time.ticks_ms(), ANSWER_MS)
        d.us_answer = time.ticks_diff(time.ticks_us(), t0)
        if d.journal_full:
            self.v.fault("journal_full", "journal full of unsent taps")
        print("@@TAP", json.dumps(summary(d, reasons.describe(d.reason))))
        # Collect now, between taps, never inside a decision: on the S3 the GC heap is in
        # PSRAM and a collection walks all of it, so the next decision starts on a
        # collected heap and its allocations find room without one (tests/host/
        # test_app_soak.py; docs/validator.md 'Memory'). The rider already has the answer.
        gc.collect()

    # --- faults and the idle screen -----------------------------------------------------

    def _reader_fault(self, name, e):
        if name == "nfc":
            self.nfc_ok = False
        else:
            self.qr_ok = False
        self.v.fault(name, "%s: %s" % (type(e).__name__, e))
        self._idle_drawn = False

    def _recover(self):
        """Try the failed parts again; a part that answers is back in service."""
        b = self.b
        if not self.nfc_ok:
            try:
                b.nfc.begin()
                self.nfc_ok = True
                self.v.clear("nfc")
                self._idle_drawn = False
            except PN532Error:
                pass
        if not self.qr_ok:
            try:
                b.qr.configure()
                self.qr_ok = True
                self.v.clear("qr")
                self._idle_drawn = False
            except (GM65Error, OSError):
                pass
        if not self.display_ok:
            try:
                b.display.init_display()
                self.display_ok = True
                self._idle_drawn = False
            except OSError:
                pass
        _, ok = self.now()
        if ok and "clock" in self.v.faults:
            self.v.clear("clock")
            self._idle_drawn = False
        elif not ok and "clock" not in self.v.faults:
            self.v.fault("clock", "clock unset or implausible")
            self._idle_drawn = False
        j = self.v.journal
        if j is not None and "journal_full" in self.v.faults:
            try:
                if not j.status().full:
                    self.v.clear("journal_full")
                    self._idle_drawn = False
            except Exception:  # noqa: BLE001
                pass

    def _draw_idle(self):
        self._idle_drawn = True
        if self.display_ok and not screen.draw_idle(self.b.display, self.v):
            self.display_ok = False

    def report_status(self):
        t, ok = self.now()
        print("@@STATUS", json.dumps(screen.status(self, t, ok)))

