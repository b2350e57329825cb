# Flash model: the ESP32 board's SPI NOR flash, for the MicroPython unix port.
#
# Runs *inside* the firmware's MicroPython process (simulator and tests that say
# `# mp-path: sim/vboard`), under os.VfsLfs2 and the journal. It behaves like a typical
# 4 MB SPI NOR part (W25Q32 / GD25Q32 class):
#   - 4 KiB erase sectors; erase sets every byte to 0xFF;
#   - programming can only clear bits (new = old AND data), in 256-byte pages: a write
#     that spans pages is several page-program operations, as a real driver issues them;
#   - every program (page) and erase is one *operation*; power can be cut during any of
#     them, leaving a partly programmed page or a partly erased sector;
#   - counters (ops, erases, pages/bytes programmed, reads), per-sector wear, and a
#     time model (busy microseconds) with configurable datasheet figures.
#
# Storage: in RAM (a bytearray, fast for power-cut sweeps) or, when `path` is given, in a
# backing FILE only (no RAM copy, so the flash does not count against the firmware's heap
# in the simulator): every program/erase is written through to the file at once (the unix
# port's files are unbuffered), so killing the process keeps the contents exactly as far
# as they got.
#
# PowerCut derives from BaseException, not Exception, so firmware code that catches
# Exception (e.g. a tap loop that turns errors into a red light) cannot swallow the cut
# by accident: it unwinds to the test harness like a real power failure stops the CPU.
#
# No allocation in readblocks/writeblocks/ioctl or below (littlefs may call them with
# the heap locked): buffers and the PowerCut instance are created in the constructor,
# loops use viper helpers and preallocated scratch.
import array
import os
import time

import micropython
from micropython import const

SECTOR = const(4096)
PAGE = const(256)

# Typical datasheet figures (W25Q32JV: tSE typ 45 ms, tPP typ 0.7 ms); reads modelled as
# 40 MHz DIO through the ESP32's SPI flash driver, ~10 MB/s plus a per-call overhead.
ERASE_US = const(45000)
PROG_US = const(700)
READ_NS_PER_BYTE = const(100)
READ_CALL_US = const(15)


class PowerCut(BaseException):
    """The power failed during a flash operation (the operation took partial effect)."""


# The viper helpers below run on the ESP32 (32-bit machine words) and on the 64-bit unix
# port, and must compute the same there: they use locals, ptr8/ptr32 indexing and
# uint/int arithmetic only. Each says why no intermediate exceeds 32 bits.

@micropython.viper
def _and_into(dst: ptr8, doff: int, src: ptr8, soff: int, n: int):
    # 32 bits: indexes are offsets inside one chip (< 2**24); values are bytes
    i = 0
    while i < n:
        dst[doff + i] = dst[doff + i] & src[soff + i]
        i += 1


@micropython.viper
def _copy(dst: ptr8, doff: int, src: ptr8, soff: int, n: int):
    # 32 bits: indexes are offsets inside one chip (< 2**24); values are bytes
    i = 0
    while i < n:
        dst[doff + i] = src[soff + i]
        i += 1


@micropython.viper
def _fill_ff(dst: ptr8, doff: int, n: int):
    # 32 bits: indexes are offsets inside one chip (< 2**24); 0xFF is a small int
    i = 0
    while i < n:
        dst[doff + i] = 0xFF
        i += 1


@micropython.viper
def _or_noise(dst: ptr8, doff: int, n: int, seed: int) -> int:
    # a partly erased sector: some bits already went to 1, others not yet (xorshift32).
    # 32 bits: x is a uint masked with m after every left shift, so it stays below 2**32
    # on the 64-bit port and wraps identically on the ESP32; m is uint(0xFFFFFFFF)
    # because that literal is not a small int on a 32-bit build; x is uint so >> is a
    # logical shift. The result is cut to 30 bits: a small int on both, no allocation.
    m = uint(0xFFFFFFFF)
    x = uint(seed) & m
    i = 0
    while i < n:
        x = (x ^ (x << 13)) & m
        x = x ^ (x >> 17)
        x = (x ^ (x << 5)) & m
        dst[doff + i] = dst[doff + i] | int(x & 0xFF)
        i += 1
    return int(x & 0x3FFFFFFF)


@micropython.viper
def _rng_next(state: ptr32) -> int:
    # xorshift32 step on the generator word state[0]; 32 bits: as _or_noise (uint x,
    # masked with uint(0xFFFFFFFF) after each left shift); the word is stored back as
    # 32 bits and the result cut to 30 bits, so nothing allocates (heap may be locked)
    m = uint(0xFFFFFFFF)
    x = uint(state[0]) & m
    x = (x ^ (x << 13)) & m
    x = x ^ (x >> 17)
    x = (x ^ (x << 5)) & m
    state[0] = x
    return int(x & 0x3FFFFFFF)


@micropython.viper
def _rng_seed(state: ptr32, seed: int):
    # the generator word from a seed (Knuth's multiplicative hash). 32 bits: the product
    # of two uints is taken mod 2**32 (it wraps on the ESP32; on the 64-bit port
    # seed < 2**31 times the constant < 2**32 stays below 2**63, then the mask); the
    # constants are uint(...) because 2654435761 and 0xFFFFFFFF are not small ints on a
    # 32-bit build; 0 would stick, so it becomes 1
    m = uint(0xFFFFFFFF)
    x = (uint(seed) * uint(2654435761) + uint(12345)) & m
    if x == uint(0):
        x = uint(1)
    state[0] = x


class Flash:
    """The flash chip. `size` bytes (a multiple of 4 KiB), in RAM or in the file `path`."""

    def __init__(self, size, path=None, erase_us=ERASE_US, prog_us=PROG_US,
                 read_ns_per_byte=READ_NS_PER_BYTE, read_call_us=READ_CALL_US):
        if size <= 0 or size % SECTOR:
            raise ValueError("flash size must be a positive multiple of 4096")
        self.size = size
        self.erase_us = erase_us
        self.prog_us = prog_us
        self.read_ns_per_byte = read_ns_per_byte
        self.read_call_us = read_call_us
        self.path = path
        self._file = None
        self.mem = None
        # one page: programs never span pages, and file-mode erases go a page at a time
        # (a sector-sized buffer would cost 4 KB of the firmware's heap in the simulator)
        self._scratch = bytearray(PAGE)
        if path is None:
            self.mem = bytearray(size)
            _fill_ff(self.mem, 0, size)  # a new chip reads erased
        else:
            self._open_file(path)
        # erase count per sector (this session), for the RAM chips of tests and benches; a
        # file-backed chip (the simulator's, the soak's) keeps none: 2 KB of the firmware's
        # heap for a 2 MiB chip
        self.wear = array.array("I", bytes(4 * (size // SECTOR))) if path is None else None
        self._cut = PowerCut("power cut")  # preallocated: raised with the heap locked too
        self._rng = array.array("I", (1,))  # the cut generator's word (viper, no big ints)
        # the chip blocks the CPU while it erases/programs, as on the board (esp_partition
        # calls wait for the flash): the simulator's file-backed chip sleeps the modelled
        # time; RAM chips (tests, power-cut sweeps) and BRT_SIM_TIME=fast only count it
        self.blocking = path is not None and os.getenv("BRT_SIM_TIME") != "fast"
        self.reset_counters()
        self.power_on()

    def _open_file(self, path):
        try:
            f = open(path, "r+b")
        except OSError:
            f = open(path, "w+b")
        f.seek(0, 2)
        have = f.tell()
        if have > self.size:
            f.close()
            raise ValueError("flash file %s is larger than the chip (%d > %d)"
                             % (path, have, self.size))
        _fill_ff(self._scratch, 0, PAGE)
        while have < self.size:  # extend with erased bytes
            f.write(self._scratch, 0, PAGE - have % PAGE)
            have = f.tell()
        self._file = f

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- counters and power --------------------------------------------------------
    def reset_counters(self):
        self.ops = 0          # program (page) + erase operations
        self.erases = 0
        self.prog_ops = 0
        self.prog_bytes = 0
        self.read_ops = 0
        self.read_bytes = 0
        self.time_us = 0      # modelled busy time of the chip
        self.stale_ops = 0    # calls on partitions made before the last power_on (ignored)

    def power_on(self):
        """Power (back) on: the chip works again, no cut armed, op index restarts at 0.

        Partitions made before this power-on are stale (they belong to the CPU that lost
        power): they do nothing any more (reads leave the buffer as it is, writes and
        erases have no effect), so a leftover object of the old "boot" — e.g. a LittleFS
        file closed later by the garbage collector — cannot touch the flash."""
        self.boot = getattr(self, "boot", 0) + 1
        self.dead = False
        self.op_index = 0
        self._cut_at = -1
        self._rng[0] = 1

    def arm_cut(self, op_index, seed=1):
        """Cut the power during operation number `op_index` (0-based, since power_on).

        `seed` chooses how far the interrupted operation got (reproducibly)."""
        self._cut_at = op_index
        _rng_seed(self._rng, seed & 0x3FFFFFFF)

    def arm_random_cut(self, seed, lo, hi):
        """Cut at a seeded random operation in [lo, hi); returns the chosen index."""
        self.arm_cut(0, seed)
        n = lo + self._rand() % max(1, hi - lo)
        self._cut_at = n
        return n

    def _rand(self):
        return _rng_next(self._rng)  # 30 bits, a small int: no allocation

    def _raise_cut(self):
        # a fresh exception when the heap allows (a reused instance would keep growing
        # its traceback); the preallocated one when the heap is locked
        try:
            e = PowerCut("power cut")
        except MemoryError:
            e = self._cut
        raise e

    def _begin_op(self):
        # returns True when this operation is the one the power fails in
        if self.dead:
            self._raise_cut()
        cut = self.op_index == self._cut_at
        self.op_index += 1
        self.ops += 1
        return cut

    # -- the chip's operations (absolute addresses) -------------------------------
    def read(self, addr, buf, n=-1):
        """Read n (default len(buf)) bytes at `addr` into buf[0:n]."""
        if self.dead:
            self._raise_cut()
        if n < 0:
            n = len(buf)
        if addr < 0 or addr + n > self.size:
            raise OSError(22)
        self.read_ops += 1
        self.read_bytes += n
        self.time_us += self.read_call_us + (n * self.read_ns_per_byte) // 1000
        if self._file is None:
            _copy(buf, 0, self.mem, addr, n)
        else:
            self._file.seek(addr)
            self._file.readinto(buf, n)

    def program(self, addr, buf, start=0, n=-1):
        """Program buf[start:start+n] at `addr`: one page-program per 256-byte page."""
        if n < 0:
            n = len(buf) - start
        if addr < 0 or addr + n > self.size:
            raise OSError(22)
        while n > 0:
            k = PAGE - addr % PAGE
            if k > n:
                k = n
            self._program_page(addr, buf, start, k)
            addr += k
            start += k
            n -= k

    def _program_page(self, addr, buf, start, n):
        cut = self._begin_op()
        self.prog_ops += 1
        self.prog_bytes += n
        self.time_us += self.prog_us
        if self.blocking:
            time.sleep_us(self.prog_us)  # tPP: the page program blocks the CPU
        if not cut:
            self._and(addr, buf, start, n)
            return
        # power fails part-way: bytes before k are programmed, byte k only in some bits
        k = self._rand() % (n + 1)
        if k:
            self._and(addr, buf, start, k)
        if k < n:
            s = self._scratch
            s[0] = buf[start + k] | (self._rand() & 0xFF)
            self._and(addr + k, s, 0, 1)
        self.dead = True
        self._raise_cut()

    def _and(self, addr, buf, start, n):
        if self._file is None:
            _and_into(self.mem, addr, buf, start, n)
            return
        f = self._file
        s = self._scratch
        f.seek(addr)
        f.readinto(s, n)
        _and_into(s, 0, buf, start, n)
        f.seek(addr)
        f.write(s, 0, n)

    def erase(self, sector):
        """Erase 4 KiB sector number `sector` (absolute) to 0xFF."""
        if sector < 0 or sector >= self.size // SECTOR:
            raise OSError(22)
        cut = self._begin_op()
        self.erases += 1
        if self.wear is not None:
            self.wear[sector] += 1
        self.time_us += self.erase_us
        if self.blocking:
            time.sleep_us(self.erase_us)  # tSE: a sector erase blocks the CPU ~45 ms
        addr = sector * SECTOR
        if not cut:
            self._erase_range(addr, SECTOR, 0)
            return
        # power fails part-way: either a prefix is erased, or every byte has some bits set
        if self._rand() & 1:
            self._erase_range(addr, self._rand() % SECTOR, 0)
        else:
            self._erase_range(addr, SECTOR, self._rand() | 1)
        self.dead = True
        self._raise_cut()

    def _erase_range(self, addr, n, noise):
        s = self._scratch
        if self._file is None:
            if noise:
                _or_noise(self.mem, addr, n, noise)
            else:
                _fill_ff(self.mem, addr, n)
            return
        f = self._file
        done = 0
        while done < n:
            k = n - done if n - done < PAGE else PAGE
            if noise:
                f.seek(addr + done)
                f.readinto(s, k)
                noise = _or_noise(s, 0, k, noise) | 1
            else:
                _fill_ff(s, 0, k)
            f.seek(addr + done)
            f.write(s, 0, k)
            done += k

    # -- whole-chip helpers for tests (RAM mode) ---------------------------------
    def snapshot(self):
        return bytes(self.mem)

    def restore(self, snap):
        _copy(self.mem, 0, snap, 0, self.size)


# ESP-IDF errors as the ESP32 port raises them: check_esp_err() turns esp_err_t `code`
# into OSError(-code, name) (ports/esp32/mphalport.c)
ESP_ERR_INVALID_ARG = const(0x102)
ESP_ERR_INVALID_SIZE = const(0x104)
_EINVAL = const(22)


def _esp_err(code):
    return OSError(-code, "ESP_ERR_INVALID_ARG" if code == ESP_ERR_INVALID_ARG
                   else "ESP_ERR_INVALID_SIZE")


class Partition:
    """A partition of the chip as a MicroPython block device with the ESP32 port's
    semantics (ports/esp32/esp32_partition.c over ESP-IDF's esp_partition_*):

    - readblocks(block, buf, offset=0);
    - writeblocks(block, buf) erases exactly len(buf) bytes first
      (esp_partition_erase_range(offset, len)), so a length that is not a multiple of
      4 KiB raises OSError(-ESP_ERR_INVALID_SIZE); writeblocks(block, buf, offset) only
      programs (erasing was done explicitly before);
    - ioctl(4) block count, ioctl(5) block size, ioctl(6, block) erases one block and
      returns -EINVAL unless the block size is 4096; 1/2/3 (init, deinit, sync) return
      0, anything else None;
    - beyond the partition: OSError(-ESP_ERR_INVALID_ARG) for a start past the end,
      OSError(-ESP_ERR_INVALID_SIZE) for a range running over it.
    Serves os.VfsLfs2 and the journal."""

    def __init__(self, flash, offset, size, label="", block_size=SECTOR, subtype=0x40):
        if offset % SECTOR or size % SECTOR or block_size % SECTOR:
            raise ValueError("partition must be 4 KiB aligned")
        if offset < 0 or offset + size > flash.size:
            raise ValueError("partition outside the chip")
        self.flash = flash
        self.offset = offset
        self.size = size
        self.label = label
        self.block_size = block_size
        self.subtype = subtype
        self._boot = flash.boot

    def info(self):
        # (type, subtype, addr, size, label, encrypted) like esp32.Partition.info()
        return (1, self.subtype, self.offset, self.size, self.label, False)

    def _addr(self, block, offset, n):
        if self._boot != self.flash.boot:
            self.flash.stale_ops += 1  # visible to a test that forgot to remake partitions
            return -1  # stale: see Flash.power_on
        a = block * self.block_size + offset
        if block < 0 or offset < 0 or a > self.size:
            raise _esp_err(ESP_ERR_INVALID_ARG)
        if a + n > self.size:
            raise _esp_err(ESP_ERR_INVALID_SIZE)
        return self.offset + a

    def readblocks(self, block, buf, offset=0):
        a = self._addr(block, offset, len(buf))
        if a >= 0:
            self.flash.read(a, buf)

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            a = self._addr(block, 0, len(buf))
            if a < 0:
                return
            if len(buf) % SECTOR:  # esp_partition_erase_range: whole sectors only
                raise _esp_err(ESP_ERR_INVALID_SIZE)
            s = a // SECTOR
            end = (a + len(buf)) // SECTOR
            while s < end:
                self.flash.erase(s)
                s += 1
            self.flash.program(a, buf)
        else:
            a = self._addr(block, offset, len(buf))
            if a >= 0:
                self.flash.program(a, buf)

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self.size // self.block_size
        if op == 5:  # block size
            return self.block_size
        if op == 6:  # erase one block
            if self.block_size != SECTOR:
                return -_EINVAL
            a = self._addr(arg, 0, SECTOR)
            if a < 0:
                return 0
            self.flash.erase(a // SECTOR)
            return 0
        if op in (1, 2, 3):  # init, deinit, sync: nothing to do
            return 0
        return None


# The simulator's layout of the 2 MiB the stock 4 MB layout leaves for data (see
# docs/journal.md): LittleFS for /data files, the rest a raw partition for the journal.
VFS_SIZE = const(512 * 1024)
JOURNAL_SIZE = const(1536 * 1024)
DATA_SIZE = const(2048 * 1024)


def partitions(flash, vfs_size=-1):
    """{'vfs': Partition, 'journal': Partition} over the chip: vfs first, journal after.

    vfs_size defaults to 512 KiB on a 2 MiB chip, else a quarter of the chip."""
    if vfs_size < 0:
        vfs_size = VFS_SIZE if flash.size == DATA_SIZE else (flash.size // 4) // SECTOR * SECTOR
    return {
        "vfs": Partition(flash, 0, vfs_size, "vfs", subtype=0x81),
        "journal": Partition(flash, vfs_size, flash.size - vfs_size, "journal", subtype=0x40),
    }
