"""The simulated validator: device host + the real firmware in the MicroPython unix port.

    sim = SimBoard(state_dir)           # no I/O yet
    sim.start()                         # world (keys, bundles) on first run, seeds the flash,
                                        # starts the device host and firmware/main.py
    d = sim.tap("regular")              # NFC: a phone presents the wallet; -> decision dict
    d = sim.scan(text)                  # QR: the scanner reads this text; -> decision dict
    sim.power_cut(); sim.set_clock(t); sim.depot(True); sim.screen(); sim.lights()
    sim.stop()

The firmware reports each decision on its console as one line `@@TAP <json>` and its
state as `@@STATUS <json>` (docs/validator.md); this class reads them from the process's
stdout. Everything else it sees - the screen, the lights - it reads from the virtual chips,
as a rider would.
"""

import json
import os
import pathlib
import queue
import subprocess
import threading
import time

from host import tokens as ht
from host.provisioning import parttable
from sim import world as simworld
from sim.devhost import DevHost, Firmware
from sim.devhost.launch import EXIT_RESET, EXIT_WDT, MP, ROOT, firmware_env
from sim.devhost.rf import IsoDepCard
from sim.devhost.screen import screen_text
from sim.depotlink import DepotMixin

SIMBOOT = ROOT / "sim" / "vboard" / "simboot.py"
SEED = ROOT / "sim" / "seed.py"
MAIN = ROOT / "firmware" / "main.py"
BOOT_TIMEOUT_S = 60
# The simulator's MicroPython heap. The reference board (ESP32-S3-WROOM-1-N16R8) grows its
# heap into 8 MB of PSRAM (DESIGN §2), so this is not a limit the board has; it is sized
# for the whole validator with room: the firmware (drivers, tokens and the P-256 engine's
# tables, journal, app) is ~235 KB on the unix port's heap once running, plus ~30 KB of
# virtual-board modules that are C on the ESP32, plus a trust list of several issuer keys
# (2 KB of tables each). 384K ran out with 5 partner keys (the conformance kit). `make
# bench` (groups tap, heap) reports the measured figures; docs/validator.md discusses them.
SIM_HEAP = "768K"


class SimError(Exception):
    """The simulated board could not do what was asked (one-line message)."""


class SimBoard(DepotMixin):
    def __init__(self, state_dir=None, heap=SIM_HEAP, fresh=False, log=None):
        self.state = pathlib.Path(state_dir or simworld.default_state_dir())
        self.heap = heap
        self.fresh = fresh
        self.log = log or (lambda line: None)
        self.world = None
        self.host = None
        self.fw = None
        self.decisions = queue.Queue()
        self.history = []          # every decision dict, in order
        self.status = {}           # last @@STATUS
        self.console = []          # last console lines
        self.label = None          # what the next decision is about (wallet name), for logs
        self.offset = 0            # the world's time ahead of the real clock (advance())
        self.skew = 0              # the validator's clock minus the world's (set_clock())
        self.depot_srv = None
        self.depot_store = None
        self.boots = 0
        self._reader = None
        self._expect_exit = False
        self._supervisor = None
        self._stopping = False
        self._lock = threading.Lock()
        self._waiting = None       # label of the tap waiting for its answer
        self._lockf = None         # the state folder's lock (lock())

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def image(self):
        return self.state / "flash.img"

    def lock(self):
        """One simulator per state folder: a second one (`make sim` twice, or `python -m sim
        tap` while `make sim` runs) would write the same simulated flash and reuse journal
        sequence numbers. The lock is the kernel's (flock): it goes when the process does."""
        if getattr(self, "_lockf", None) is not None:
            return
        import fcntl
        self.state.mkdir(parents=True, exist_ok=True)
        f = open(self.state / "sim.lock", "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            who = f.read().strip() or "?"
            f.close()
            raise SimError("another simulator (pid %s) is using %s: stop it, or give this "
                           "one its own --state DIR" % (who, self.state)) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._lockf = f

    def start(self):
        self.lock()
        if self.fresh and self.state.exists():
            # a new world: new keys, a blank flash, a new depot database
            import shutil
            for p in ("flash.img", "world.json", "depot.sqlite", "depot.sqlite-wal",
                      "depot.sqlite-shm"):
                (self.state / p).unlink(missing_ok=True)
            for d in ("keys", "provision"):
                shutil.rmtree(self.state / d, ignore_errors=True)
        self.state.mkdir(parents=True, exist_ok=True)
        self.world = simworld.World.load_or_create(self.state)
        self.host = DevHost(unique_id=bytes.fromhex(self.world.device_id),
                            psk=None)
        self.host.start()
        self._start_depot()
        # the DS3231's battery kept the time since provisioning set it
        self.host.ds3231.set_time(self.now(), clear_osf=True)
        if not self.image.exists():
            self._seed()
        self._spawn()
        self.wait_ready()
        return self

    def _seed(self):
        src = self.state / "provision"
        src.mkdir(exist_ok=True)
        # the board's 16 MB flash with the partition table provisioning writes
        parttable.write_image(self.image)
        for name, data in self.world.data_files(int(time.time())).items():
            (src / name).write_bytes(data)
        env = firmware_env(self.host)
        r = subprocess.run([MP, "-X", "heapsize=256K", str(SEED), str(self.image), str(src)],
                           env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise SimError("seeding the flash image failed: %s%s" % (r.stdout, r.stderr))

    def _spawn(self):
        self.fw = Firmware(self.host, [SIMBOOT, self.image, MAIN], heap=self.heap,
                           extra_env={"PYTHONUNBUFFERED": "1"})
        self.fw.start(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0)
        self.boots += 1
        self.status = {}
        self._reader = threading.Thread(target=self._read, args=(self.fw.proc,), daemon=True)
        self._reader.start()

    def _read(self, proc):
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.startswith("@@TAP "):
                try:
                    d = json.loads(line[6:])
                except ValueError:
                    continue
                if self.label is not None:
                    d["wallet"] = self.label
                self.history.append(d)
                self.decisions.put(d)
            elif line.startswith("@@STATUS "):
                try:
                    self.status = json.loads(line[9:])
                except ValueError:
                    pass
            else:
                self.console.append(line)
                del self.console[:-200]
            self.log(line)
        # the effective exit: machine.reset() ends its process with SIGKILL (HARD_RESET)
        rc = self.host.note_exit(proc.wait())
        with self._lock:
            expected = self._expect_exit or self._stopping
        if not expected and rc in (EXIT_RESET, EXIT_WDT):
            # the board reboots by itself after machine.reset() or a watchdog bite
            self.log("[sim] firmware exited %d: rebooting" % rc)
            self._spawn()
        elif not expected:
            self.log("[sim] firmware exited %d" % rc)

    def wait_ready(self, timeout=BOOT_TIMEOUT_S):
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if self.status.get("ready"):
                return self.status
            if self.fw.proc.poll() is not None and not self.status:
                raise SimError("firmware exited %s during boot:\n%s"
                               % (self.fw.proc.returncode, "\n".join(self.console[-20:])))
            time.sleep(0.05)
        raise SimError("firmware not ready after %d s:\n%s"
                       % (timeout, "\n".join(self.console[-20:])))

    def stop(self):
        with self._lock:
            self._stopping = True
        if self.fw is not None:
            self.fw.kill()
        if self.host is not None:
            self.host.stop()
        if getattr(self, "depot_srv", None) is not None:
            self.depot_srv.stop()
            self.depot_srv = None
        if getattr(self, "_lockf", None) is not None:
            self._lockf.close()  # releases the flock
            self._lockf = None

    def power_cut(self, restart=True):
        """Cut the power (SIGKILL at whatever instruction) and, by default, power on again."""
        with self._lock:
            self._expect_exit = True
        self.fw.kill()
        if self._reader is not None:
            self._reader.join(5)
        with self._lock:
            self._expect_exit = False
        if self._waiting is not None:
            # a tap in flight: the rider got no answer; say so (the journal, after the
            # reboot, shows whether its record was durable - docs/validator.md Durability)
            d = {"power_cut": True, "wallet": self._waiting, "answer": None,
                 "reason": None, "reason_name": "power cut before the answer", "fare": 0}
            self.history.append(d)
            self.decisions.put(d)
        self.host.antenna.remove()
        if restart:
            self._spawn()
            self.wait_ready()

    # --- the world --------------------------------------------------------------------------

    def now(self):
        """The world's time (the phones' clocks, set by the network), not the validator's."""
        return int(time.time()) + self.offset

    def advance(self, seconds):
        """Time passes for everyone: the phones' clocks and the validator's DS3231."""
        # keep the validator's clock as far from the world's as it was set (re-reading
        # the chip each time would lose a fraction of a second per step, and drift)
        self.offset += int(seconds)
        if self.host.ds3231.running:
            self.host.ds3231.set_time(self.now() + self.skew)
        else:
            self.host.ds3231.set_time(self.clock())

    def clock(self):
        return self.host.ds3231.now()

    def set_clock(self, t):
        """Set the DS3231 (as the depot does at every sync): running, OSF cleared."""
        self.host.ds3231.start_oscillator()
        self.host.ds3231.set_time(int(t), clear_osf=True)
        self.skew = int(t) - self.now()

    def unset_clock(self):
        """The DS3231 lost its battery: oscillator stopped, reads 2000-01-01, OSF set."""
        self.host.ds3231.set_time(946684800)
        self.host.ds3231.stop_oscillator()

    def depot(self, reachable):
        self.host.wlan.reachable = bool(reachable)

    def screen(self):
        return screen_text(self.host.ssd1306)

    def screen_art(self):
        return screen_text(self.host.ssd1306, art=True)

    def lights(self):
        return self.host.pins.state()

    # --- taps ---------------------------------------------------------------------------

    def _drain(self):
        while True:
            try:
                self.decisions.get_nowait()
            except queue.Empty:
                return

    def next_decision(self, timeout=30):
        self._waiting = self.label
        try:
            return self.decisions.get(timeout=timeout)
        except queue.Empty:
            raise SimError("no decision from the validator within %d s (screen: %r)"
                           % (timeout, self.screen())) from None
        finally:
            self._waiting = None

    def phone(self, wallet=None, answer_fn=None, chunk=ht.CHUNK):
        """An NFC phone (ISO-DEP card) answering SELECT and TAP like the wallet app
        (host.tokens.PhoneCard: the wallet's APDU side, with response chaining of `chunk`
        data bytes per response)."""
        if answer_fn is None:
            def answer_fn(challenge):
                return self.world.nfc_answer(wallet, challenge, self.now())
        # a phone in card emulation shows a random UID (first byte 08) each time it enters
        # the field - which is how the validator tells a new tap from a phone left there
        return IsoDepCard(ht.PhoneCard(answer_fn, chunk).process, uid=b"\x08" + os.urandom(3))

    def tap(self, wallet, timeout=30, hold=True):
        """Present the wallet's phone by NFC; returns the decision. The phone stays in the
        field until the validator answered (a rider holds it there), then leaves."""
        if wallet not in simworld.WALLETS:
            raise SimError("unknown wallet %r (one of: %s)"
                           % (wallet, ", ".join(simworld.WALLET_ORDER)))
        self._drain()
        self.label = wallet
        self.host.antenna.present(self.phone(wallet))
        try:
            return self.next_decision(timeout)
        finally:
            self.host.antenna.remove()

    def tap_phone(self, answer_fn=None, label="phone", timeout=30, card=None):
        """NFC tap of any phone: answer_fn(challenge16) -> the wallet's answer bytes (e.g. a
        partner wallet's own pass and proof), or a ready `card` (self.phone(...))."""
        self._drain()
        self.label = label
        self.host.antenna.present(card or self.phone(answer_fn=answer_fn))
        try:
            return self.next_decision(timeout)
        finally:
            self.host.antenna.remove()

    def scan(self, text, timeout=30, label="qr-text"):
        """The QR scanner reads `text` (one line); returns the decision."""
        last, at = getattr(self, "_last_scan", (None, 0.0))
        wait = 3.2 - (time.monotonic() - at)
        if text == last and wait > 0:
            # the validator ignores the same code read again within 3 s (still in view):
            # showing it again means taking the phone away and back
            time.sleep(wait)
        self._last_scan = (text, time.monotonic())
        self._drain()
        self.label = label
        if not self.host.gm65.show(text):
            raise SimError("the QR scanner did not output the code (not in scan mode?)")
        return self.next_decision(timeout)

    def scan_wallet(self, wallet, timeout=30):
        if wallet not in simworld.WALLETS:
            raise SimError("unknown wallet %r" % wallet)
        return self.scan(self.world.qr(wallet, self.now()), timeout, label=wallet)
