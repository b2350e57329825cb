"""The phone wallet as an ISO-DEP card emulation over nfcpy.

`NfcpyPhone(wallet, "udp:127.0.0.1:54321")` listens as an NFC-A target (random UID,
SEL_RES 0x20 = ISO-DEP) with nfcpy's `ContactlessFrontend.listen`, answers RATS with its
ATS and then speaks ISO 14443-4 blocks itself — I-blocks (with chaining both ways),
R(ACK)/R(NAK), S(DESELECT) — carrying the wallet's APDUs (host.tokens.PhoneCard). The
reader on the other side is the device host's NfcpyAntenna (nfcpy's ISO-DEP initiator).

    phone = NfcpyPhone(wallet, "udp:127.0.0.1:54321"); phone.start()
    phone.present() / phone.remove()      # hold the phone at the reader / take it away
    phone.stop()
"""

import threading

# ATS: TL=5, T0=0x78 (TA, TB, TC follow; FSCI 8 = 256-byte frames), TA=0x80 (106 kbit/s
# only), TB=0x90 (FWI 9: 155 ms frame waiting time, room for the phone to sign), TC=0x02
ATS = bytes((0x05, 0x78, 0x80, 0x90, 0x02))
FSD = (16, 24, 32, 40, 48, 64, 96, 128, 256)


class IsoDepPicc:
    """ISO 14443-4 card side: frames in -> frames out, `process(apdu) -> rapdu`."""

    def __init__(self, process, ats=ATS):
        self.process = process
        self.ats = ats
        self.fsd = 256
        self.rx = bytearray()
        self.tx = b""
        self.last = None
        self.done = False

    def _iblock(self, b):
        room = self.fsd - 3
        part, self.tx = self.tx[:room], self.tx[room:]
        pcb = (0x12 if self.tx else 0x02) | b
        self.last = bytes((pcb,)) + part
        return self.last

    def handle(self, frame):
        if not frame:
            return None
        pcb = frame[0]
        if pcb == 0xE0 and len(frame) >= 2:  # RATS
            self.fsd = FSD[min(frame[1] >> 4, 8)]
            return self.ats
        if pcb & 0xE2 == 0x02:  # I-block
            b = pcb & 1
            self.rx += frame[1:]
            if pcb & 0x10:  # the reader chains its command: acknowledge
                self.last = bytes((0xA2 | b,))
                return self.last
            apdu, self.rx = bytes(self.rx), bytearray()
            self.tx = bytes(self.process(apdu))
            return self._iblock(b)
        if pcb & 0xE6 == 0xA2:  # R-block
            b = pcb & 1
            if pcb & 0x10:  # R(NAK): say it again
                return self.last or bytes((0xA2 | b,))
            if self.tx:
                return self._iblock(b)
            return self.last
        if pcb == 0xC2:  # S(DESELECT)
            self.done = True
            return b"\xc2"
        return None  # unknown: stay silent, the reader times out


class NfcpyPhone:
    def __init__(self, wallet, path, uid=None):
        self.wallet = wallet
        self.path = path
        self.uid = uid or wallet.uid
        self._present = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self.sessions = 0
        self.error = None

    def start(self):
        import nfc

        self.clf = nfc.ContactlessFrontend(self.path)
        self._thread = threading.Thread(target=self._run, name="nfcpy-phone", daemon=True)
        self._thread.start()
        return self

    def present(self):
        self._present.set()

    def remove(self):
        self._present.clear()

    def stop(self):
        self._stop.set()
        self._present.clear()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self.clf.close()
        except Exception:  # noqa: BLE001 - closing a broken frontend is best effort
            pass

    def _target(self):
        import nfc

        t = nfc.clf.LocalTarget("106A")
        t.sens_res = bytearray.fromhex("0400")
        t.sdd_res = bytearray(self.uid)
        t.sel_res = bytearray.fromhex("20")
        return t

    def _run(self):
        import nfc

        while not self._stop.is_set():
            if not self._present.wait(0.1):
                continue
            try:
                target = self.clf.listen(self._target(), 0.5)
            except (nfc.clf.CommunicationError, OSError) as e:
                self.error = e
                continue
            if target is None or target.tt4_cmd is None:
                continue
            self.sessions += 1
            picc = IsoDepPicc(self.wallet.phone_card().process)
            cmd = target.tt4_cmd
            while self._present.is_set() and not self._stop.is_set():
                rsp = picc.handle(bytes(cmd))
                try:
                    cmd = self.clf.exchange(rsp, 1.0)
                except (nfc.clf.CommunicationError, OSError):
                    break  # RFOFF, timeout: the reader is gone
                if cmd is None or picc.done:
                    break
