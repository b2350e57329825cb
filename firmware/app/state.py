# Assembling the validator from what is on flash: config, bundles, stores, journal.
#
# Pure of hardware: takes the data directory and the journal partition, returns a
# Validator whose `pipeline` decides taps and whose `faults` say what is wrong. Nothing
# here raises for bad data - a missing trust list or a torn config becomes a fault shown
# on the screen and a reason code on every tap, never a validator that does not boot.

import unload

from app import config as appconfig
from app import reasons, recover
from app.allowance import AllowanceError, AllowanceStore
from app.decision import Pipeline
from app.denylist import DenyList, DenyListError
from app.fares import FareError, FareTable
from app.recent import RecentTaps, StoreError
from journal import Journal, JournalError, JournalFull
from tokens import p256
from tokens.errors import TokenError
from tokens.trust import TrustStore
from tokens.verify import TokenVerifier

DATA = "/data"
CONFIG_BUNDLE_KEYS = ("qr_window_s", "passback_s", "wifi", "depot_url")


class Validator:
    def __init__(self):
        self.config = None
        self.journal = None
        self.pipeline = None
        self.faults = []          # short names (messages.fault_lines): "config", "trust" ...
        self.details = {}         # fault -> one-line English detail, for the log
        self.trust_version = 0
        self.fares_version = 0
        self.deny_version = 0
        self.reload_pending = False   # the depot installed bundles: reboot when idle
        self.replayed = 0             # journal records replayed into the RAM state at boot

    def fault(self, name, detail):
        if name not in self.faults:
            self.faults.append(name)
        self.details[name] = detail

    def why_not_ready(self):
        """The reason code for a tap while there is no pipeline."""
        if "config" in self.faults:
            return reasons.NOT_CONFIGURED
        if "storage" in self.faults:
            return reasons.JOURNAL_ERROR
        return reasons.INTERNAL

    def refuse(self, channel, reason, now, clock_ok):
        """A tap refused before any decision could be made; journaled if the journal is
        there (a validator without config still records that riders tried)."""
        from app.decision import Decision
        d = Decision(channel, now, clock_ok)
        d.reason = reason
        if self.journal is not None:
            from app import record
            try:
                payload = record.RecordWriter().encode(
                    now, record.CLOCK_TRUSTED if clock_ok else record.CLOCK_UNTRUSTED,
                    channel, record.REJECTED, reason)
                d.seq = self.journal.append(payload, now)
            except (JournalError, record.RecordError) as e:
                d.journal_full = isinstance(e, JournalFull)
        return d

    def clear(self, name):
        if name in self.faults:
            self.faults.remove(name)
        self.details.pop(name, None)


def _bundles():
    # bundles.py (8-15 KB of bytecode) is needed at boot and at the depot only: imported
    # on demand and dropped again (forget()), so taps do not pay for it in heap
    import bundles
    return bundles


def forget(*names):
    """Drop boot-only modules so the GC can reclaim their bytecode (unload.forget)."""
    unload.forget(*names)


def load_config(data_dir=DATA, verify=True):
    """config.json, overlaid with an installed config bundle's changes; ConfigError if
    config.json itself is bad. A config bundle that does not check (signature, or a key or
    value out of range - one installed before the range was checked, say) is left out:
    the validator runs and syncs on config.json, `bundle_error` says why (a fault), so a
    corrected bundle can always arrive (docs/bundles.md 'config')."""
    bundles = _bundles()
    d = _json(data_dir + "/config.json")
    base = appconfig.validate(d)
    if not bundles.installed_version(data_dir, bundles.CONFIG):
        return base
    try:
        # the bundle's changes count only if it is signed by the operator key that
        # config.json pins (re-checked here as every bundle is at boot)
        if verify:
            bundles.check_file(bundles.path_for(data_dir, bundles.CONFIG),
                               base.operator_key_bytes())
        from tokens import cbor  # boot and depot code only: forgotten after boot (assemble)
        changes = cbor.loads(_installed(data_dir, bundles.CONFIG)[1])
        appconfig.check_changes(changes)
        for k, v in changes.items():
            d[k] = v
        cfg = appconfig.validate(d)
        if "wifi" in changes or "depot_url" in changes:
            cfg.base_link = (base.wifi, base.depot_url)   # the depot link to fall back to
        return cfg
    except (bundles.BundleError, TokenError, OSError, appconfig.ConfigError) as e:
        base.bundle_error = "config bundle left out: %s" % (e,)
        return base


def _json(path):
    import json
    try:
        with open(path, "rb") as f:
            text = f.read(4097)
    except OSError:
        raise appconfig.ConfigError("(file)", "cannot read " + path)
    if len(text) > 4096:
        raise appconfig.ConfigError("(file)", "config larger than 4096 bytes")
    try:
        return json.loads(text)
    except (ValueError, UnicodeError):
        raise appconfig.ConfigError("(file)", "not valid JSON")


def _bundle_body(data_dir, kind, key):
    """(version, body bytes) of an installed bundle whose signature re-checks; BundleError."""
    bundles = _bundles()
    path = bundles.path_for(data_dir, kind)
    h = bundles.check_file(path, key)
    r = bundles.open_installed(data_dir, kind)
    try:
        return h.version, r.body()
    finally:
        r.close()


def assemble(journal_part, data_dir=DATA, verify_bundles=True):
    """Build the Validator. `journal_part`: the raw journal partition (or None if absent)."""
    try:
        return _assemble(journal_part, data_dir, verify_bundles)
    finally:
        # with the bundles' code, what checking them needed and a tap does not: the strict
        # CBOR decoder (the verifier loads it again for the first unusual token), the key
        # code (tokens/p256_keys.py; p256 loads it again on first use) and the trust-list
        # and fare-table parsers (loaded again by the depot's installs)
        forget("bundles", "tokens.cbor", "tokens.p256_keys", "tokens.trust_load",
               "app.fares_load")


def _assemble(journal_part, data_dir, verify_bundles):
    # the long-lived buffers first (the replay ring 4 KB, the allowance bucket 1.5 KB, G's
    # tables 4 KB), while the heap is still in one piece: checking the bundles below
    # leaves it cut into small holes where a 4 KB block may not be found
    p256.init()
    recent = RecentTaps(data_dir + "/replay.bin")
    allowance = AllowanceStore(data_dir + "/allowance")
    bundles = _bundles()
    v = Validator()
    # the journal first: taps must be recordable before anything can be accepted
    if journal_part is None:
        v.fault("storage", "no journal partition")
    else:
        j = Journal(journal_part)
        try:
            st = j.mount()
            v.journal = j
            if st.full:
                v.fault("journal_full", "journal full of unsent taps")
        except JournalError as e:
            v.fault("storage", "journal: %r" % (e,))
    try:
        cfg = load_config(data_dir, verify_bundles)
    except appconfig.ConfigError as e:
        v.fault("config", str(e))
        return v
    v.config = cfg
    if cfg.bundle_error:
        v.fault("config_bundle", cfg.bundle_error)
    key = cfg.operator_key_bytes()
    verifier = None
    try:
        ver, body = _bundle_body(data_dir, bundles.TRUST, key) if verify_bundles else \
            _installed(data_dir, bundles.TRUST)
        verifier = TokenVerifier(TrustStore.from_body(body), cfg.operator,
                                 qr_window=cfg.qr_window_s)
        v.trust_version = ver
    except (bundles.BundleError, TokenError, OSError) as e:
        v.fault("trust", "trust list: %r" % (e,))
    fares = None
    try:
        ver, body = _bundle_body(data_dir, bundles.FARES, key) if verify_bundles else \
            _installed(data_dir, bundles.FARES)
        from tokens import cbor
        fares = FareTable.from_body(cbor.loads(body), ver)
        v.fares_version = ver
    except (bundles.BundleError, TokenError, FareError, OSError) as e:
        v.fault("fares", "fare table: %r" % (e,))
    deny = None
    try:
        if verify_bundles and bundles.installed_version(data_dir, bundles.DENY):
            bundles.check_file(bundles.path_for(data_dir, bundles.DENY), key)
        deny = DenyList.open(bundles.path_for(data_dir, bundles.DENY))
        v.deny_version = deny.version
    except (bundles.BundleError, DenyListError, OSError) as e:
        v.fault("deny", "deny list: %r" % (e,))
    try:
        recent.open()
        allowance.open()
    except (StoreError, AllowanceError) as e:
        v.fault("storage", "stores: %r" % (e,))
        return v
    if v.journal is None:
        return v
    p = Pipeline(verifier, fares, deny, recent, allowance, v.journal,
                 (JournalFull, JournalError), cfg.passback_s, cfg.qr_window_s)
    try:
        # the taps since the last checkpoint: the journal is the write-ahead log
        v.replayed = recover.replay(p, v.journal)
    except (JournalError, AllowanceError, OSError) as e:
        v.fault("storage", "recovery: %r" % (e,))
        return v
    v.pipeline = p
    return v


def _installed(data_dir, kind):
    bundles = _bundles()
    r = bundles.open_installed(data_dir, kind)
    try:
        return r.header.version, r.body()
    finally:
        r.close()
