# The journal's exception family. Callers catch JournalError (the app maps JournalFull to
# reason JOURNAL_FULL and every other JournalError to JOURNAL_ERROR); nothing else escapes
# the journal except the flash driver's own OSError on a real hardware fault.


class JournalError(Exception):
    """Base of every journal error."""


class JournalFull(JournalError):
    """No room for the record without overwriting unsent taps: nothing was written.

    The taps already in the journal are all intact; space comes back only when the depot
    acknowledges them (ack())."""


class BadRecord(JournalError):
    """append() was given a payload or time the format cannot hold (nothing written)."""


class BadAck(JournalError):
    """ack() was given a sequence number that was never issued (nothing persisted)."""


class BadPartition(JournalError):
    """The partition's geometry cannot hold a journal (block size, too few sectors)."""


class NotMounted(JournalError):
    """An operation before mount()."""
