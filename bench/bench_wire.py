"""Bytes on the wire and modelled wire time per NFC tap and per QR scan, for a real token.

NFC: a phone wallet (sim/wallet.py, a token minted by host/tokens) is tapped on the
virtual board; the real PN532 driver (firmware/drivers) runs under MicroPython and every
byte it writes and reads on the PN532's UART is counted by the device host (frames, ACKs,
InListPassiveTarget, SELECT, TAP, GET RESPONSE, InRelease). Wire time is modelled as
bytes x 10 bits / 115200 baud (8N1; the PN532 protocol is strictly request/answer, so
the directions add up). The RF leg (ISO-DEP at 106 kbit/s) is estimated from the APDU
sizes: each byte 9 bits (8 + parity) = 84.96 us, plus PCB and CRC (3 bytes) per block;
neither figure includes the phone's own processing time (HCE dispatch, signing the proof),
which on real phones is typically tens of milliseconds.

QR: the same wallet's QR text plus the CR tail, at 9600 baud (the GM65 as shipped) and
115200, bytes x 10 / baud; checked against what the virtual scanner put on its UART.
"""

import json
import time

from host import tokens as ht
from sim.devhost import DevHost, run_firmware
from sim.devhost.host import UART_QR
from sim.wallet import Wallet

ISSUER = ht.key_from_int(0xB175)
RF_BYTE_US = 9 / 106e3 * 1e6  # 8 data bits + parity at 106 kbit/s


def _nfc_tap():
    host = DevHost()
    host.start()
    try:
        w = Wallet.issue(ISSUER, b"W-0000000001", b"P-0000000001", category=0,
                         iat=int(time.time()) - 3600)
        card = w.present(host)
        r = run_firmware(host, ["bench/wire_mp.py"], timeout=120)
        if r.returncode != 0:
            raise RuntimeError("wire_mp failed: %s%s" % (r.stdout, r.stderr))
        got = json.loads(r.stdout.strip().splitlines()[-1])
        apdus = list(card.apdus)
        return w, got, apdus
    finally:
        host.stop()


def _qr(w):
    host = DevHost()
    host.start()
    try:
        text = w.qr_text()
        host.gm65.zones[0] = 0xD7  # sensing mode with CR tail, as the driver configures it
        host.gm65.zones[0x60] = 0x80
        host.uarts[UART_QR].init(9600)
        host.gm65.show(text)
        on_wire = sum(len(c) for c in host.uarts[UART_QR].rx_log)
        return text, on_wire
    finally:
        host.stop()


def run():
    w, got, apdus = _nfc_tap()
    uart_bytes = got["tx"] + got["rx"]
    rf_bytes = sum(len(c) + 3 + len(r) + 3 for c, r in apdus)
    rows = [
        {"name": "NFC tap: token size", "value": got["token"], "unit": "B",
         "note": "CBOR [pass, proof] with challenge, minted by host/tokens"},
        {"name": "NFC tap: APDU exchanges", "value": len(apdus), "unit": "",
         "note": "SELECT, TAP, GET RESPONSE (250-byte chunks)"},
        {"name": "NFC tap: UART bytes host->PN532", "value": got["tx"], "unit": "B",
         "note": "counted on the virtual PN532's UART, real driver under MicroPython"},
        {"name": "NFC tap: UART bytes PN532->host", "value": got["rx"], "unit": "B",
         "note": "frames + ACKs, InListPassiveTarget..InRelease"},
        {"name": "NFC tap: UART wire time @115200", "value": uart_bytes * 10 / 115200 * 1e3,
         "unit": "ms", "note": "modelled: %d bytes x 10 bit / 115200" % uart_bytes},
        {"name": "NFC tap: UART wire time @460800 (board)",
         "value": uart_bytes * 10 / 460800 * 1e3, "unit": "ms",
         "note": "modelled: %d bytes x 10 bit / 460800, the rate board.py switches the "
                 "PN532 to (SetSerialBaudRate)" % uart_bytes},
        {"name": "NFC tap: RF time @106k (estimate)", "value": rf_bytes * RF_BYTE_US / 1e3,
         "unit": "ms", "note": "modelled: %d bytes incl. PCB+CRC, 9 bit/byte; no phone time"
         % rf_bytes},
        {"name": "NFC tap: on the virtual board", "value": got["us"] / 1e3, "unit": "ms",
         "note": "measured wall time on loopback incl. modelled UART delays; not an ESP32 figure"},
        {"name": "drivers: heap kept by board.build()", "value": got["kept"], "unit": "B",
         "note": "gc.mem_alloc after collect (import of board + 7 driver modules, then "
                 "build); mostly code objects (the same from .mpy); x86-64 port: 8-byte "
                 "pointers, so less on the 32-bit ESP32 (not measured there)"},
        {"name": "NFC tap: heap allocated (all)", "value": got["alloc"], "unit": "B",
         "note": "gc disabled during the tap; includes the virtual board's link (%d round "
                 "trips)" % got["calls"]},
        {"name": "NFC tap: heap allocated by the drivers (estimate)",
         "value": max(0, got["alloc"] - got["calls"] * got["per_call"]), "unit": "B",
         "note": "all minus %d link calls x %.0f B (a vboard any() call; reads/writes "
                 "allocate more, so this over-counts the drivers and the APDU helper)"
                 % (got["calls"], got["per_call"])},
    ]
    text, on_wire = _qr(w)
    n = len(text) + 1
    if on_wire != n:
        raise RuntimeError("scanner put %d bytes on the wire, expected %d" % (on_wire, n))
    rows += [
        {"name": "QR scan: bytes (text + CR)", "value": n, "unit": "B",
         "note": "QR version %d at M" % ht.qr_version(text)},
        {"name": "QR scan: wire time @9600", "value": n * 10 / 9600 * 1e3, "unit": "ms",
         "note": "modelled: bytes x 10 / 9600 (GM65 as shipped)"},
        {"name": "QR scan: wire time @115200", "value": n * 10 / 115200 * 1e3, "unit": "ms",
         "note": "modelled: bytes x 10 / 115200 (the rate the driver switches the GM65 to)"},
        {"name": "QR wire time ratio 9600/115200", "value": 115200 / 9600, "unit": "x",
         "note": "same bytes"},
    ]
    for r in rows:
        r["group"] = "wire"
    return rows
