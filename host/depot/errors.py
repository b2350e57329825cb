"""One exception family for the depot host; `.reason` is the short code the HTTP API sends."""


class DepotError(Exception):
    """reason: malformed, bad_mac, unknown_device, too_large, bad_input, store, ..."""

    def __init__(self, reason, detail="", status=400):
        super().__init__("%s%s" % (reason, ": " + detail if detail else ""))
        self.reason = reason
        self.detail = detail
        self.status = status
