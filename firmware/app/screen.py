# The idle screen and the status line: what the validator shows when nobody is tapping,
# and what it reports on its console once a second (docs/validator.md 'Console lines').
import gc

from app import messages


def draw_idle(display, v):
    """'tap or scan' with bus and route, or the first fault and the next ones; False if
    the display failed."""
    if v.faults:
        head, idl, en = messages.fault_lines(v.faults[0])
        rows = [head, idl, en, ""]
    else:
        rows = ["SILAKAN TAP", "ATAU SCAN QR", "tap or scan", ""]
    cfg = v.config
    if cfg is not None:
        rows.append("%s %s" % (cfg.bus, cfg.route))
    for f in v.faults[1:3]:
        rows.append(messages.fault_lines(f)[1])
    try:
        from drivers import layout
        layout.lines(display, rows)
        display.show()
    except OSError:
        return False
    return True


def status(loop, t, clock_ok):
    """The @@STATUS object: faults, clock, journal, heap, depot."""
    v = loop.v
    gc.collect()
    st = {"ready": True, "faults": v.faults, "taps": loop.taps,
          "heap": {"used": gc.mem_alloc(), "free": gc.mem_free()},
          "clock": t, "clock_ok": clock_ok}
    if v.config is not None:
        st["device"] = v.config.device_id
        st["bus"] = v.config.bus
        st["route"] = v.config.route
    j = v.journal
    if j is not None:
        try:
            s = j.status()
            st["journal"] = {"count": s.count, "unsent": s.unsent, "last_seq": s.last_seq,
                             "free_records": s.free_records, "full": s.full}
        except Exception:  # noqa: BLE001 - a journal fault must not stop the status line
            st["journal"] = None
    if loop.depot is not None:
        st["sync"] = loop.depot.state
    return st
