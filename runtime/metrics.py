"""Metrics in shared memory: per-stage latency histograms and gauges, written by every process.

One segment per instance (`xinf-<pid>-metrics`), created by the supervisor
with the rings and the control block, kept across its restarts (figures are
"since start" of the supervisor) and unlinked when it returns. It names its
own rows and gauges, so a reader (tools/dashboard.py) needs nothing but the
segment's name:

    byte 0        HEADER (128 B): magic, version, n_rows, n_gauges, enabled, created_ns,
                  the cycle counter's rate (ns per cycle, Q24 fixed point), bucket geometry
    128           row names      n_rows   x S32   ("stage" or "stage@writer")
    ...           gauge names    n_gauges x S32
    ...           ROWS           n_rows   x HIST  (count, sum_ns, max_ns, reserved, buckets[960])
    ...           GAUGES         n_gauges x i8

The histogram is log-linear (HdrHistogram's scheme): a value below 16 ns has
a bucket of its own; above, each power of two [2^e, 2^(e+1)) is cut into 16
equal buckets, so a bucket is at most 1/16 of its lower bound wide and a
percentile read from it is within 1/32 of the true sample (the bucket's
middle). 960 buckets cover every int64.

Invariants:
- one writer per row and per gauge (a stage is one process; each gateway worker
  has rows of its own), so plain stores suffice; readers in other processes
  may see a histogram mid-update (count and buckets one record apart): a
  dashboard tolerates that, nothing decides anything from it;
- observation only: what is recorded comes from timestamps that travel in the
  records (CMD.ts, set where a command enters) and clocks read by the shells or
  by the loops after a state machine ran; no state machine reads any of it, so
  MT still equals ST;
- recording allocates nothing: one clock read per batch, then a bucket
  increment per record (`record_cmds`, `record_since`), all in numba.
"""
from __future__ import annotations

import time

import numpy as np

from ..engine import records as R
from ..engine.bits import clz64
from ..engine.jit import kernel
from ..engine.records import _dtype
from ..ipc.atomics import cycles, cycles_per_ns, now_cycles
from ..ipc.ring import attach_segment
from .metrics_layout import gauges_of, rows_of

MAGIC = 0x5849_4E46_4D45_5452     # "XINFMETR"
VERSION = 1
SUB_BITS = 4                       # 16 linear sub-buckets per power of two
SUB = 1 << SUB_BITS
N_BUCKETS = (64 - SUB_BITS) * SUB  # 960: every non-negative int64
Q = 24                             # fixed point of the cycle rate
CALIBRATE_NS = 10_000_000          # the loops' clock is paired with the wall clock again after this long: the
                                   # cycle rate, measured over 20 ms, is off by up to ~0.05% (100 ms: 50 us off)

HEADER = _dtype([
    ("magic", "i8"), ("version", "i8"), ("n_rows", "i8"), ("n_gauges", "i8"),
    ("enabled", "i8"),             # 0: nobody records (config pipeline.metrics: false)
    ("created_ns", "i8"),          # time.time_ns() at creation
    ("ns_per_cycle_q24", "i8"),    # the cycle counter's rate, measured once by the creator
    ("sub_bits", "i8"), ("n_buckets", "i8"),
    ("reserved", "i8", 7),
], 128)
NAME = np.dtype("S32")
# One histogram row; the kernels see the rows as an int64 matrix, columns below.
H_COUNT, H_SUM, H_MAX = 0, 1, 2
H_BUCKETS = 4
HIST = _dtype([("count", "i8"), ("sum_ns", "i8"), ("max_ns", "i8"), ("reserved", "i8"),
               ("buckets", "i8", N_BUCKETS)], (H_BUCKETS + N_BUCKETS) * 8)

# The clock a process's loops read: wall ns and cycle count at the last calibration, the rate, on/off.
C_WALL, C_CYCLES, C_RATE, C_ON = 0, 1, 2, 3


@kernel(inline="always")
def bucket_of(v):
    """The bucket of a value in ns (negative values count as 0)."""
    if v < 2 * SUB:
        return max(v, 0)
    e = 63 - clz64(np.uint64(v))   # the top set bit
    return (e - SUB_BITS + 1) * SUB + ((v >> (e - SUB_BITS)) & (SUB - 1))


@kernel(inline="always")
def record_one(hist, row, v):
    if v < 0:
        v = 0
    hist[row, H_COUNT] += 1
    hist[row, H_SUM] += v
    if v > hist[row, H_MAX]:
        hist[row, H_MAX] = v
    hist[row, H_BUCKETS + bucket_of(v)] += 1


@kernel(inline="always")
def now_ns(clock):
    """time.time_ns() now, from the cycle counter and the last calibration (no system call)."""
    d = cycles() - clock[C_CYCLES]
    return clock[C_WALL] + (d >> Q) * clock[C_RATE] + (((d & ((1 << Q) - 1)) * clock[C_RATE]) >> Q)


@kernel(inline="always")
def record_cmds(hist, row, clock, cmds, start, stop):
    """For the loops: each of cmds[start:stop] with an entry time, its age now (one clock read)."""
    if clock[C_ON] != 0 and stop > start:
        t = now_ns(clock)
        for i in range(start, stop):
            ts = cmds[i]["ts"]
            if ts > 0:
                record_one(hist, row, t - ts)


@kernel()
def record_since(hist, row, ts, t):
    """Each entry time of ts (0: none) as its age at t."""
    for i in range(len(ts)):
        if ts[i] > 0:
            record_one(hist, row, t - ts[i])


@kernel()
def record_value(hist, row, v):
    record_one(hist, row, v)


def bucket_bounds(b: int) -> tuple[int, int]:
    """(lowest value, width) of bucket b."""
    k, sub = divmod(b, SUB)
    if k == 0:
        return b, 1
    return (SUB + sub) << (k - 1), 1 << (k - 1)


def percentile(buckets: np.ndarray, count: int, q: float, max_ns: int) -> int:
    """The q-quantile (0 < q <= 1, nearest rank) of a histogram: its bucket's middle, at most max_ns."""
    if count <= 0:
        return 0
    rank = max(1, int(np.ceil(q * count)))
    b = int(np.searchsorted(np.cumsum(buckets), rank))
    lo, width = bucket_bounds(min(b, N_BUCKETS - 1))
    return min(lo + (width - 1) // 2, max_ns)


class Metrics:
    """A view of a metrics segment (or of private arrays: a run that records nowhere)."""

    def __init__(self, buf, rows: tuple[str, ...] | None = None, gauges: tuple[str, ...] | None = None,
                 shm=None, owner: bool = False):
        self.shm, self.owner, self.name = shm, owner, shm.name if shm is not None else ""
        self.header = np.ndarray(1, HEADER, buffer=buf)[0]
        if rows is None:
            if int(self.header["magic"]) != MAGIC or int(self.header["version"]) != VERSION:
                raise ValueError(f"{self.name}: not a metrics segment of this version")
            n_rows, n_gauges = int(self.header["n_rows"]), int(self.header["n_gauges"])
        else:
            n_rows, n_gauges = len(rows), len(gauges)
        off = HEADER.itemsize
        self.row_names = np.ndarray(n_rows, NAME, buffer=buf, offset=off)
        off += n_rows * NAME.itemsize
        self.gauge_names = np.ndarray(n_gauges, NAME, buffer=buf, offset=off)
        off += n_gauges * NAME.itemsize
        off = (off + 63) // 64 * 64
        self.hist = np.ndarray((n_rows, HIST.itemsize // 8), np.int64, buffer=buf, offset=off)
        off += n_rows * HIST.itemsize
        self.gauges = np.ndarray(n_gauges, np.int64, buffer=buf, offset=off)
        if rows is not None:
            self.row_names[:] = rows
            self.gauge_names[:] = gauges
        self.rows = {n.decode(): i for i, n in enumerate(self.row_names.tolist())}
        self.gauge_index = {n.decode(): i for i, n in enumerate(self.gauge_names.tolist())}
        self.clock = np.zeros(4, np.int64)          # this process's own (calibrate)
        self.calibrated = 0                         # time.monotonic_ns() of the last calibrate

    @staticmethod
    def size(n_rows: int, n_gauges: int) -> int:
        off = (HEADER.itemsize + (n_rows + n_gauges) * NAME.itemsize + 63) // 64 * 64
        return off + n_rows * HIST.itemsize + n_gauges * 8

    @classmethod
    def _init(cls, buf, rows, gauges, enabled: bool, shm=None, owner=False, rate: float | None = None) -> "Metrics":
        m = cls(buf, rows, gauges, shm, owner)
        m.hist[:] = 0
        m.gauges[:] = 0
        h = m.header
        h["magic"], h["version"], h["n_rows"], h["n_gauges"] = MAGIC, VERSION, len(rows), len(gauges)
        h["enabled"], h["created_ns"] = int(enabled), time.time_ns()
        h["ns_per_cycle_q24"] = int(round((1.0 / (rate or cycles_per_ns(0.02))) * (1 << Q))) if enabled else 0
        h["sub_bits"], h["n_buckets"] = SUB_BITS, N_BUCKETS
        return m

    @classmethod
    def create(cls, name: str, topology, enabled: bool = True) -> "Metrics":
        from multiprocessing import shared_memory
        rows, gauges = rows_of(topology), gauges_of(topology)
        shm = shared_memory.SharedMemory(name=name, create=True, size=cls.size(len(rows), len(gauges)))
        try:
            return cls._init(shm.buf, rows, gauges, enabled, shm, True)
        except BaseException:
            shm.close()
            shm.unlink()
            raise

    @classmethod
    def private(cls, topology, enabled: bool = False) -> "Metrics":
        """Arrays of this process only (a warm-up, an in-process run): the same kernels, no reader."""
        rows, gauges = rows_of(topology), gauges_of(topology)
        return cls._init(bytearray(cls.size(len(rows), len(gauges))), rows, gauges, enabled, rate=1.0)

    @classmethod
    def attach(cls, name: str) -> "Metrics":
        shm = attach_segment(name)
        return cls(shm.buf, shm=shm)

    @property
    def on(self) -> bool:
        return bool(self.header["enabled"])

    def row(self, stage: str, writer: str = "") -> int:
        """The row a writer records a stage in (-1: the pipeline has no such stage: record nothing)."""
        return self.rows.get(f"{stage}@{writer}" if writer and f"{stage}@{writer}" in self.rows else stage, -1)

    def calibrate(self) -> np.ndarray:
        """Pair the wall clock with the cycle counter now; the clock."""
        self.calibrated = time.monotonic_ns()
        c = self.clock
        c[C_RATE], c[C_ON] = int(self.header["ns_per_cycle_q24"]), int(self.header["enabled"])
        c[C_CYCLES], c[C_WALL] = now_cycles(), time.time_ns()
        return c

    def keep_calibrated(self) -> None:
        """Calibrate again once CALIBRATE_NS has passed (the compiled loops' shells, each step)."""
        if time.monotonic_ns() - self.calibrated > CALIBRATE_NS:
            self.calibrate()

    # -- recording from Python shells (each call: one kernel call for a whole batch) --

    def since(self, row: int, ts: np.ndarray, t: int | None = None) -> None:
        """The age of each entry time of a batch (a CMD array's "ts", 0: none) now."""
        if row >= 0 and self.on and len(ts):
            record_since(self.hist, row, ts, time.time_ns() if t is None else t)

    def value(self, row: int, v: int) -> None:
        if row >= 0 and self.on:
            record_value(self.hist, row, v)

    def add(self, gauge: str, v: int) -> None:
        i = self.gauge_index.get(gauge)
        if i is not None:
            self.gauges[i] += v

    def set(self, gauge: str, v: int) -> None:
        i = self.gauge_index.get(gauge)
        if i is not None:
            self.gauges[i] = v

    def gauge(self, name: str) -> int:
        i = self.gauge_index.get(name)
        return int(self.gauges[i]) if i is not None else 0

    # -- reading --

    def stages(self) -> dict[str, np.ndarray]:
        """Each stage's histogram row, its writers' rows added up (a copy)."""
        out: dict[str, np.ndarray] = {}
        for name, i in self.rows.items():
            stage = name.split("@")[0]
            h = self.hist[i].copy()
            if stage in out:
                mx = max(out[stage][H_MAX], h[H_MAX])
                out[stage] += h
                out[stage][H_MAX] = mx
            else:
                out[stage] = h
        return out

    def close(self) -> None:
        self.header = self.row_names = self.gauge_names = self.hist = self.gauges = None
        if self.shm is not None:
            self.shm.close()
            if self.owner:
                self.shm.unlink()


def summary(h: np.ndarray) -> dict:
    """count, mean and p50/p99/p99.9/max (ns) of one histogram row."""
    count = int(h[H_COUNT])
    b = h[H_BUCKETS:]
    mx = int(h[H_MAX])
    return {"count": count, "mean_ns": int(h[H_SUM]) // count if count else 0,
            "p50_ns": percentile(b, count, 0.5, mx), "p99_ns": percentile(b, count, 0.99, mx),
            "p999_ns": percentile(b, count, 0.999, mx), "max_ns": mx}


def warm() -> None:
    """Load the recording kernels here (before the fork: no process pays the cache load)."""
    scratch = np.zeros((1, HIST.itemsize // 8), np.int64)
    record_since(scratch, 0, np.zeros(1, np.int64), 0)
    record_since(scratch, 0, np.zeros(2, R.CMD)["ts"], 0)
    record_value(scratch, 0, 0)
    now_cycles()
