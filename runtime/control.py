"""The control block: one shared-memory segment the supervisor and every
process of an MT pipeline read and write.

- ME_DONE, written by the ME (a release store, after the outputs it vouches
  for are published): settlement replays up to that seq;
- DURABLE, written by the journal: the WAL holds every seq up to it (as the
  fsync policy says); nothing of a later seq leaves the system;
- the stop request of the supervisor;
- one PROC_STATS line per process of the topology (runtime/topology.py): heartbeat (its loop count), state and
  counters the supervisor reports in perf.txt and watches for liveness.
"""
from __future__ import annotations

import numpy as np

from ..engine.jit import kernel
from ..engine.records import _dtype
from ..ipc.atomics import load_acquire, store_release
from ..ipc.ring import attach_segment

# int64 word index of each shared word; one 64-byte line each (the snapshot
# words, rarely written, share one).
SNAP_REQ = 0         # supervisor: 1 = cut a snapshot at the next seq UBSCore reaches
SNAP_AT = 2          # UBSCore: the seq being cut (it sequences nothing past it until done)
SNAP_ME = 4          # ME: the last seq whose state it has cut
ME_DONE = 16         # ME: its outputs (events, settles) of every seq <= this are published
STOP = 24            # supervisor: 1 = finish what was sent and stop
T_START = 32         # ingestion: perf_counter_ns of its first publish
T_END = 40           # settlement: perf_counter_ns when the last event was merged
DURABLE = 48         # journal: the last seq the WAL holds (durable as its policy says)
INGEST_LIMIT = 56    # supervisor: ingestion publishes no seq beyond this (0: no limit); crash drills
_PROCS_AT = 64       # byte line 8: the PROC_STATS lines

# Process states.
STARTING, READY, RUNNING, DONE, FAILED = 0, 1, 2, 3, 4
STATE_NAMES = {STARTING: "starting", READY: "ready", RUNNING: "running", DONE: "done", FAILED: "failed"}

PROC_STATS = _dtype([
    ("heartbeat", "i8"), ("state", "i8"), ("pid", "i8"),
    ("work_ns", "i8"),          # wall time in steps that did work
    ("steps", "i8"),            # steps that did work
    ("sleeps", "i8"),           # times it slept on its semaphore
    ("stalls", "i8"),           # UBSCore: commands that waited for every earlier seq to settle
    ("stall_ns", "i8"),         # UBSCore: time those waits took
    ("stall_behind", "i8"),     # UBSCore: sum over stalls of the seqs not yet settled at their start
    ("cpu_ns", "i8"),           # CPU time of the run (spinning included)
    ("reserved", "i8", 6),
], 128)



@kernel()
def put(words, i, v):
    store_release(words, i, v)


@kernel()
def get(words, i):
    return load_acquire(words, i)


class Control:
    """A view of the control block; `proc(name)` is that process's stats line."""

    def __init__(self, shm, owner: bool, processes: tuple[str, ...]):
        self.shm, self.owner, self.processes = shm, owner, processes
        self.words = np.ndarray(_PROCS_AT, np.int64, buffer=shm.buf)
        self.procs = np.ndarray(len(processes), PROC_STATS, buffer=shm.buf, offset=_PROCS_AT * 8)

    @classmethod
    def create(cls, name: str, processes: tuple[str, ...]) -> "Control":
        from multiprocessing import shared_memory
        size = _PROCS_AT * 8 + len(processes) * PROC_STATS.itemsize
        c = cls(shared_memory.SharedMemory(name=name, create=True, size=size), True, processes)
        c.words[:] = 0
        c.procs[:] = np.zeros(1, PROC_STATS)
        return c

    @classmethod
    def attach(cls, name: str, processes: tuple[str, ...]) -> "Control":
        return cls(attach_segment(name), False, processes)

    def proc(self, name: str):
        return self.procs[self.processes.index(name)]

    def put(self, i: int, v: int) -> None:
        put(self.words, i, v)

    def get(self, i: int) -> int:
        return int(get(self.words, i))

    def close(self) -> None:
        self.words = self.procs = None
        self.shm.close()
        if self.owner:
            self.shm.unlink()
