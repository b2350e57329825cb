"""The virtual PN532's RF side through nfcpy: the PN532 is an nfcpy reader.

`NfcpyAntenna(path)` replaces `rf.Antenna` in the device host. InListPassiveTarget
becomes `clf.sense(RemoteTarget("106A"))` + `nfc.tag.activate()` (nfcpy sends RATS and
reads the ATS), InDataExchange becomes `Type4Tag.transceive()` — nfcpy's ISO-DEP stack
(I-blocks, chaining, R(ACK)/R(NAK), WTX). The path is any nfcpy device path:

    udp:127.0.0.1:54321   the phone is sim/nfcwallet.py's card emulation (or any nfcpy
                          program listening there)
    usb:054c:06c3         a Sony RC-S380 (nfcpy's best-supported reader) and a real phone
    usb:04cc:2533         a PN533-based reader; tty:USB0:pn532 a PN532 on a serial adapter

nfcpy's udp driver waits 1 s for a SENS_RES; on loopback an answer comes in well under a
millisecond, so polling an empty field is capped at `sense_wait` (30 ms by default) —
about what a real PN532 poll with a few passive-activation retries costs.
"""

import threading

from .rf import CardGone


class NfcpyCard:
    """A Type 4A tag (the phone) activated by nfcpy, looking like an rf card to the PN532."""

    def __init__(self, target, tag, ats):
        sr = bytes(target.sens_res)
        self.sens_res = sr[::-1]  # nfcpy keeps air order (LSB first), the PN532 reports MSB first
        self.sel_res = target.sel_res[0]
        self.uid = bytes(target.sdd_res)
        self.ats = bytes(ats)
        self.tag = tag
        self.apdus = []


class NfcpyAntenna:
    def __init__(self, path, sense_wait=0.03):
        import nfc  # imported here: the direct antenna does not need nfcpy

        self._nfc = nfc
        self.path = path
        self.clf = nfc.ContactlessFrontend(path)
        self.sense_wait = sense_wait
        self._cap_udp_wait()
        self._lock = threading.Lock()
        self.card = None
        self.listeners = []  # the PN532 registers here; nfcpy has no "card arrived" push
        self.activations = 0

    def _cap_udp_wait(self):
        dev = self.clf.device
        if type(dev).__module__ != "nfc.clf.udp":
            return
        orig = dev._recv_data
        cap = self.sense_wait

        def recv(timeout, *brty):
            return orig(min(timeout, cap) if timeout is not None else cap, *brty)

        self._orig_recv = orig
        self._fast_recv = recv

    def _sensing(self, on):
        dev = self.clf.device
        if hasattr(self, "_fast_recv"):
            dev._recv_data = self._fast_recv if on else self._orig_recv

    def present(self, card, leave_after=None):
        raise CardGone("with nfcpy the phone presents itself (sim/nfcwallet.py)")

    def remove(self):
        self.release()

    def activate(self):
        """Sense a Type A target and activate ISO-DEP on it; an NfcpyCard or None."""
        nfc = self._nfc
        with self._lock:
            self.release()
            self._sensing(True)
            try:
                target = self.clf.sense(nfc.clf.RemoteTarget("106A"), iterations=1)
            except (nfc.clf.CommunicationError, OSError, ValueError):
                target = None
            finally:
                self._sensing(False)
            if target is None or target.sel_res is None or not target.sel_res[0] & 0x20:
                return None
            ats = []
            orig = self.clf.exchange

            def capture(data, timeout):  # keep the ATS nfcpy reads during activation
                rsp = orig(data, timeout)
                if data[:1] == b"\xe0":
                    ats.append(bytes(rsp))
                return rsp

            self.clf.exchange = capture
            try:
                tag = nfc.tag.activate(self.clf, target)
            except (nfc.clf.CommunicationError, nfc.tag.TagCommandError, OSError):
                tag = None
            finally:
                del self.clf.exchange
            if tag is None or not ats:
                return None
            self.activations += 1
            self.card = NfcpyCard(target, tag, ats[0])
            return self.card

    def exchange(self, card, apdu):
        nfc = self._nfc
        if card is None or card is not self.card:
            raise CardGone()
        try:
            rsp = card.tag.transceive(bytes(apdu))
        except (nfc.tag.TagCommandError, nfc.clf.CommunicationError, OSError, TypeError):
            self.card = None
            raise CardGone() from None
        if rsp is None:
            self.card = None
            raise CardGone()
        card.apdus.append((bytes(apdu), bytes(rsp)))
        return bytes(rsp)

    def release(self):
        """Field off for the current phone (RFOFF on udp)."""
        if self.card is not None:
            self.card = None
            try:
                self.clf.device.mute()
            except OSError:
                pass

    def close(self):
        self.release()
        self.clf.close()
