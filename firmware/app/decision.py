# The tap decision of DESIGN §4, as one pure pipeline: bytes in, a Decision out.
#
# Everything it needs is passed in - the token verifier, the fare table, the deny list,
# the recent-taps ring (replay + anti-passback), the allowance store, the journal and the
# clock state - so the same code runs on the bus, in the simulator and in tests with real
# parts. It never raises: every failure becomes a rejection with a reason code.
#
# The two promises it keeps: never say OK before the tap is durable in the journal, and
# never charge twice for one tap - the journal record is the commit point and carries the
# proof id and wallet id, and the replay/passback/allowance state is rebuilt from the
# journal after a power cut (app/recover.py). A rejection is journaled too (best effort:
# a full journal still rejects). The tap path writes nothing to flash but the journal.
import time

from app import reasons, record
from app.allowance import AllowanceError
from app.denylist import DenyListError, key as deny_key
from app.recent import StoreError

ACCEPTED = record.ACCEPTED
REJECTED = record.REJECTED
ALREADY_PAID = record.ALREADY_PAID


class Decision:
    """The answer to one tap, with what the screen, the journal and the logs need."""

    def __init__(self, channel=0, t=0, clock_ok=False):
        self.reset(channel, t, clock_ok)

    def reset(self, channel, t, clock_ok):
        """Back to a fresh answer (the loop reuses one Decision tap after tap: a new one
        each time left ~0.4 KB of garbage on the heap, docs/validator.md 'Memory')."""
        self.channel = channel
        self.t = t
        self.clock_ok = clock_ok
        self.answer = REJECTED
        self.reason = reasons.INTERNAL
        self.fare = 0
        self.category = None
        self.wallet_id = None
        self.pass_id = None
        self.proof_id = None
        self.seq = None           # journal sequence number, if journaled
        self.journal_full = False
        # stage timings in microseconds (the loop fills read and answer)
        self.cached = False       # the pass was in the verifier's cache (one signature)
        self.us_read = 0
        self.us_decode = 0
        self.us_verify = 0
        self.us_checks = 0
        self.us_journal = 0
        self.us_answer = 0

    @property
    def ok(self):
        return self.answer == ACCEPTED


class Pipeline:
    """decide_qr(text, now, clock_ok) / decide_nfc(payload, challenge, now, clock_ok).

    verifier: tokens.TokenVerifier; fares: app.fares.FareTable or None (none installed);
    deny: app.denylist.DenyList or None (unreadable: revocation cannot be checked);
    recent: app.recent.RecentTaps; allowance: app.allowance.AllowanceStore;
    journal: journal.Journal (append(payload, t) -> seq; JournalFull, JournalError).
    """

    def __init__(self, verifier, fares, deny, recent, allowance, journal, journal_errors,
                 passback_s=60, qr_window_s=30):
        self.verifier = verifier
        self.fares = fares
        self.deny = deny
        self.recent = recent
        self.allowance = allowance
        self.journal = journal
        # (JournalFull, JournalError) of the journal in use: the pipeline tells them apart
        self.journal_full_exc, self.journal_exc = journal_errors
        self.passback_s = passback_s
        self.qr_window_s = qr_window_s
        # a proof can pass the QR freshness check for qr_window_s either side of now; keep
        # it in the replay ring at least that long (plus slack for a clock that is set at
        # the depot while proofs are in the ring), and a paid tap at least passback_s
        self.horizon = max(2 * qr_window_s + 30, passback_s)
        self.writer = record.RecordWriter()
        # the verifier's answer, reused tap after tap
        self._verdict = verifier.verdict() if verifier is not None else None
        self.last_seq = recent.upto_seq   # newest journal seq the RAM state includes

    # --- entry points -------------------------------------------------------------------

    def _decision(self, into, channel, now, clock_ok):
        if into is None:
            return Decision(channel, now, clock_ok)
        into.reset(channel, now, clock_ok)
        return into

    def decide_qr(self, text, now, clock_ok, into=None):
        """The Decision for QR text; into: a Decision to reuse (the loop's), else a new one."""
        d = self._decision(into, record.QR, now, clock_ok)
        t0 = time.ticks_us()
        if self.verifier is None:
            return self._reject(d, reasons.NO_TRUST_LIST, t0)
        try:
            # steps 1-5: decode, pass signature (cached), pass validity, proof signature,
            # freshness (QR: the proof's time within qr_window_s of now). With an
            # untrusted clock a QR proof has no freshness at all: the verifier refuses it
            # (token reason CLOCK_UNTRUSTED) after the signatures, so the record says whose
            # it was. NFC (challenge-based) still works.
            v = self.verifier.check_qr(text, now, clock_ok, self._verdict)
        except Exception:  # noqa: BLE001 - the verifier promises a Verdict; never crash
            return self._reject(d, reasons.INTERNAL, t0)
        return self._after_verify(d, v, t0)

    def decide_nfc(self, payload, challenge, now, clock_ok, into=None):
        d = self._decision(into, record.NFC, now, clock_ok)
        t0 = time.ticks_us()
        if self.verifier is None:
            return self._reject(d, reasons.NO_TRUST_LIST, t0)
        try:
            # steps 1-5; NFC freshness is the validator's own random challenge, which the
            # phone signed - valid whatever the clock says
            v = self.verifier.check_nfc(payload, challenge, now, clock_ok, self._verdict)
        except Exception:  # noqa: BLE001
            return self._reject(d, reasons.INTERNAL, t0)
        return self._after_verify(d, v, t0)

    def fault(self, channel, reason, now, clock_ok, into=None):
        """A tap that failed before it could be decided (reader fault): journal it."""
        d = self._decision(into, channel, now, clock_ok)
        return self._reject(d, reason, time.ticks_us())

    # --- steps 6-12 ---------------------------------------------------------------------

    def _after_verify(self, d, v, t0):
        t1 = time.ticks_us()
        d.us_decode = v.us_decode
        d.us_verify = time.ticks_diff(t1, t0) - v.us_decode
        d.cached = v.cached
        if v.reason:
            # the token layer's reason (1-39); the verdict carries the pass's claims only
            # once the pass signature verified, and the proof id only once the proof's did
            d.wallet_id = v.wallet_id
            d.pass_id = v.pass_id
            d.category = v.category
            d.proof_id = v.proof_id
            return self._reject(d, v.reason, t1)
        d.wallet_id = v.wallet_id
        d.pass_id = v.pass_id
        d.category = v.category
        d.proof_id = v.proof_id
        try:
            return self._checks(d, v, t1)
        except Exception:  # noqa: BLE001 - a bug in a check must not freeze the door
            return self._reject(d, reasons.INTERNAL, t1)

    def _checks(self, d, v, t1):
        now = d.t
        recent = self.recent
        # step 6: replay - this proof was used before (a screenshot shown twice)
        if recent.seen_proof(v.proof_id):
            return self._reject(d, reasons.REPLAY, t1)
        # step 7: deny list - wallet or pass revoked
        wkey = deny_key(b"W", v.wallet_id)
        pkey = deny_key(b"P", v.pass_id)   # the allowance's key too (step 9)
        if self.deny is None:
            return self._reject(d, reasons.DENY_LIST_BAD, t1)
        try:
            if self.deny.denies(wkey, pkey):
                return self._reject(d, reasons.DENIED, t1)
        except DenyListError:
            return self._reject(d, reasons.DENY_LIST_BAD, t1)
        # step 8: anti-passback - the same wallet accepted here within passback_s:
        # "already paid", no second charge. The proof is remembered so it cannot be
        # replayed for a charge once the window has passed.
        slot = recent.free_slot(now, self.horizon)
        if recent.paid_within(wkey, now, self.passback_s):
            d.answer = ALREADY_PAID
            d.reason = reasons.ALREADY_PAID
            if slot >= 0:
                recent.put(slot, v.proof_id, wkey, now, False)
            d.us_checks = time.ticks_diff(time.ticks_us(), t1)
            return self._journal(d)
        # step 10 (looked up before 9: the allowance is in rupiah, so it needs the fare)
        if self.fares is None:
            return self._reject(d, reasons.NO_FARE_TABLE, t1)
        fare = self.fares.fare(v.category)
        if fare is None:
            return self._reject(d, reasons.NO_FARE, t1)
        # step 9: offline allowance - rupiah this pass spent here, plus this fare
        try:
            spent = self.allowance.spent(pkey, now)
        except AllowanceError:
            return self._reject(d, reasons.STORE_ERROR, t1)
        if spent + fare > v.allowance:
            return self._reject(d, reasons.ALLOWANCE_EXHAUSTED, t1)
        if slot < 0:
            # every slot holds a proof that could still be fresh: recording this one
            # would forget another, which could then be replayed
            return self._reject(d, reasons.BUSY, t1)
        # step 11: journal the tap - the one flash write of the tap path, and its commit
        # point. The proof and the wallet are marked in RAM first; the journal record
        # carries them, so after a power cut boot re-marks them from the journal
        # (app/recover.py): once the record is durable, neither the proof nor the boarding
        # can be charged again; if it is not, nothing was charged.
        recent.put(slot, v.proof_id, wkey, now, True)
        d.answer = ACCEPTED
        d.reason = reasons.OK
        d.fare = fare
        d.us_checks = time.ticks_diff(time.ticks_us(), t1)
        self._journal(d)
        if d.seq is None:
            # not durable: the tap did not happen; forget the mark
            recent.clear(slot)
            d.answer = REJECTED
            d.fare = 0
            d.reason = reasons.JOURNAL_FULL if d.journal_full else reasons.JOURNAL_ERROR
            return d
        self.allowance.add(pkey, fare, v.pass_exp, d.seq, now)
        # step 12: the answer - the caller shows it
        return d

    # --- idle time: checkpoint the RAM state (the journal covers it until then) --------

    def dirty(self):
        return self.recent.dirty or self.allowance.npending > 0

    def checkpoint_step(self, now):
        """One bounded piece of checkpoint work (one LittleFS write); False when clean.

        Allowance sums first, the ring last: the ring's upto_seq says "the journal up to
        here is in the files", so it is written only when the sums are."""
        try:
            if self.allowance.flush_one(now):
                return True
            if self.recent.dirty:
                self.recent.save(self.last_seq)
                return True
        except (AllowanceError, StoreError):
            # the journal still has every tap: the next idle moment tries again
            return False
        return False

    def _reject(self, d, reason, t_start):
        d.answer = REJECTED
        d.reason = reason
        d.fare = 0
        d.us_checks = time.ticks_diff(time.ticks_us(), t_start)
        return self._journal(d)

    def _journal(self, d):
        t0 = time.ticks_us()
        fv = self.fares.version if self.fares is not None else None
        try:
            payload = self.writer.encode(
                d.t, record.CLOCK_TRUSTED if d.clock_ok else record.CLOCK_UNTRUSTED,
                d.channel, d.answer, d.reason, d.wallet_id, d.pass_id, d.category, d.fare,
                d.proof_id, fv)
            d.seq = self.journal.append(payload, d.t)
            self.last_seq = d.seq
        except self.journal_full_exc:
            d.journal_full = True
        except self.journal_exc:
            pass
        except record.RecordError:
            pass
        d.us_journal = time.ticks_diff(time.ticks_us(), t0)
        return d
