"""The RF side of the virtual PN532: an antenna where a phone (card) can be presented and
removed, and the ISO 14443-A / ISO-DEP activation the PN532 performs on it.

A card offered to the antenna implements:
    sens_res (2 bytes), sel_res (int), uid (4/7/10 bytes), ats (bytes, with TL first)
    exchange(apdu: bytes) -> bytes     # ISO-DEP; raises CardGone if it left
This module has a direct card (an APDU handler in this process); sim/devhost/nfcpy_rf.py
has the antenna that goes through nfcpy's ISO-DEP stack (udp transport or a USB reader).
"""

import threading


class CardGone(Exception):
    """The card left the field (or stopped answering) during an exchange."""


class IsoDepCard:
    """A phone in host-card emulation, answering APDUs with `handler(apdu) -> rapdu`."""

    def __init__(self, handler, uid=b"\x08\x12\x34\x56", sens_res=b"\x00\x04", sel_res=0x20,
                 ats=b"\x05\x78\x80\x70\x02"):
        # random UID (first byte 0x08), as phones use for HCE; SEL_RES bit 6 (0x20) = ISO-DEP
        self.handler = handler
        self.uid = bytes(uid)
        self.sens_res = bytes(sens_res)
        self.sel_res = sel_res
        self.ats = bytes(ats)
        self.apdus = []  # (command, response), for tests and the UI

    def exchange(self, apdu):
        rsp = bytes(self.handler(bytes(apdu)))
        self.apdus.append((bytes(apdu), rsp))
        return rsp


class Antenna:
    """Where cards are presented. `activate()` returns the card in the field (the PN532's
    anticollision + RATS), or None; exchange() raises CardGone once it was removed.
    `leave_after` removes the card after that many exchanges (a rider pulling the phone
    away mid-exchange)."""

    def __init__(self):
        self._card = None
        self._lock = threading.Lock()
        self.leave_after = None
        self.listeners = []  # called with no args when a card is presented
        self.activations = 0

    @property
    def card(self):
        return self._card

    def present(self, card, leave_after=None):
        with self._lock:
            self._card = card
            self.leave_after = leave_after
        for cb in list(self.listeners):
            cb()

    def remove(self):
        with self._lock:
            self._card = None

    def activate(self):
        with self._lock:
            if self._card is not None:
                self.activations += 1
            return self._card

    def exchange(self, card, apdu):
        with self._lock:
            if self._card is not card or card is None:
                raise CardGone()
            if self.leave_after is not None:
                if self.leave_after <= 0:
                    self._card = None
                    raise CardGone()
                self.leave_after -= 1
        try:
            return card.exchange(apdu)
        except CardGone:
            self.remove()
            raise
