"""Phone wallets for the simulator and tests, built on the host token tools.

A `Wallet` is a rider's phone: its own P-256 key, a pass an issuer minted for that key,
a tap counter and a clock. It answers the validator the two ways a phone does:

    w = Wallet.issue(issuer_key, wallet_id=b"W-000001", pass_id=b"P-000001", category=0)
    w.qr_text()            # what the phone shows: "BRT1:" + base45([pass, proof])
    w.card()               # an ISO-DEP card for the virtual PN532 (host.antenna.present)
    w.present(host) / w.show_qr(host)   # the same, on a device host

Over NFC the phone is an ISO 7816-4 application (host.tokens.PhoneCard: SELECT, TAP with
the validator's challenge, GET RESPONSE chaining, docs/tokens.md). `sim/nfcwallet.py` runs
the same phone as an ISO-DEP card emulation over nfcpy.
"""

import time

from host import tokens as ht
from host.tokens import PhoneCard
from sim.devhost.rf import IsoDepCard

DAY = 86400


class WalletError(Exception):
    """A wallet could not be made or used (bad arguments to the token tools)."""


class Wallet:
    def __init__(self, pass_bytes, phone_key, clock=None, label="wallet", uid=None):
        self.pass_bytes = bytes(pass_bytes)
        self.phone_key = phone_key
        self.clock = clock or (lambda: int(time.time()))
        self.label = label
        self.counter = 0
        self.uid = uid or b"\x08" + ht.public_bytes(phone_key)[1:4]  # random-UID style
        self.answers = []  # (challenge, payload) of every NFC tap, for tests

    @classmethod
    def issue(cls, issuer_key, wallet_id, pass_id, category=0, allowance=50000, iat=None,
              exp=None, operator="TSM", phone_key=None, **kw):
        """A new phone key and a pass minted for it by `issuer_key`."""
        now = int(time.time())
        iat = now - 3600 if iat is None else iat
        exp = iat + 7 * DAY if exp is None else exp
        phone_key = phone_key or ht.generate_key()
        try:
            p = ht.mint_pass(issuer_key, ht.public_bytes(phone_key), wallet_id, pass_id,
                             category, allowance, iat, exp, operator=operator)
        except ht.TokenToolError as e:
            raise WalletError(str(e)) from None
        return cls(p, phone_key, **kw)

    # --- what the phone says ---------------------------------------------------------
    def _proof(self, challenge=None, now=None):
        self.counter += 1
        t = self.clock() if now is None else now
        return ht.make_proof(self.pass_bytes, self.phone_key, t, self.counter, challenge)

    def nfc_answer(self, challenge, now=None):
        """The payload the phone returns to the tap command for this challenge."""
        payload = ht.nfc_payload(self.pass_bytes, self._proof(bytes(challenge), now))
        self.answers.append((bytes(challenge), payload))
        return payload

    def qr_text(self, now=None):
        """The QR code the phone shows now (a fresh proof each time)."""
        return ht.qr_text(self.pass_bytes, self._proof(None, now))

    def phone_card(self):
        """The phone's APDU side (SELECT / TAP / GET RESPONSE)."""
        return PhoneCard(self.nfc_answer)

    def card(self):
        """An ISO-DEP card for the virtual PN532's antenna."""
        pc = self.phone_card()
        return IsoDepCard(pc.process, uid=self.uid)

    # --- on a device host ----------------------------------------------------------------
    def present(self, host, leave_after=None):
        """Hold the phone at the validator's NFC antenna."""
        card = self.card()
        host.antenna.present(card, leave_after)
        return card

    def remove(self, host):
        host.antenna.remove()

    def show_qr(self, host, now=None):
        """Show the phone's QR code to the scanner; True if the scanner read it out."""
        return host.gm65.show(self.qr_text(now))
