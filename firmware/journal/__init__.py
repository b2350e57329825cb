# The tap journal (DESIGN §5; format and design figures in docs/journal.md).
#
# CONTRACT (the validator app appends taps, the sync client reads and acks):
#
#   j = Journal(part, nearly_full_pct=10)
#       part: the raw `journal` partition, esp32.Partition.find(esp32.Partition.TYPE_DATA,
#       label="journal")[0] (readblocks/writeblocks with offset/ioctl). No I/O here.
#   st = j.mount()
#       Recovers after any power cut (or formats a blank partition); returns status().
#       Call once at boot before anything else; raises BadPartition on a wrong geometry.
#   seq = j.append(payload: bytes, t: int) -> int
#       payload 1..240 bytes (a CBOR tap record), t = Unix seconds (u32). Durable when it
#       returns. seq strictly increases across reboots, acks and ring wraps, never repeats.
#       Raises JournalFull (nothing written, no unsent tap dropped: the app refuses the tap
#       with JOURNAL_FULL and shows "go to depot"), BadRecord, or JournalError (flash fault).
#   batch = j.unsent(limit=50, max_bytes=4096) -> [(seq, t, payload bytes), ...]
#       The oldest unacknowledged records, oldest first, a new list each call (it
#       allocates; meant for the depot, not the tap path). [] when all are acked.
#   j.ack(upto_seq)
#       Every record <= upto_seq is acknowledged; persisted when it returns; only then is
#       their space reused. Idempotent (an old/equal seq is a no-op); a seq beyond the last
#       append raises BadAck. Works when the journal is full.
#   for seq, t, payload in j.since(first): ...
#       Every record with seq >= first still on flash, oldest first: all unacked ones, and
#       acked ones until their sector is reused (status().first_seq is the oldest seq that
#       is always there). For rebuilding RAM state at boot (the app's write-ahead log); a
#       generator that allocates per record; no appends while iterating.
#   st = j.status()
#       .count .unsent .last_seq .acked_seq .first_seq
#       .oldest_unsent_t (None if nothing unsent)
#       .free (bytes) .free_records (60-byte taps) .capacity .full .nearly_full
#       (+ from mount: .formatted .torn .lost)
#   j.maintain() -> bool
#       Bounded idle work for the app's loop between taps: at most one sector erase
#       (~45 ms) so appends never wait for one. Without it an append that opens a sector
#       pays the erase itself (correct, just slower: see docs/journal.md).
#
# Errors: everything raised is a JournalError (NotMounted before mount()). A power cut in
# the simulator is flashdev.PowerCut, a BaseException the journal never catches.
from .errors import BadAck, BadPartition, BadRecord, JournalError, JournalFull, NotMounted
from .format import MAX_PAYLOAD
from .log import Journal, JournalStatus

__all__ = ["Journal", "JournalStatus", "JournalError", "JournalFull", "BadRecord", "BadAck",
           "BadPartition", "NotMounted", "MAX_PAYLOAD"]
