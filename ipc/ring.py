"""Single-producer single-consumer ring of fixed-size records in shared memory.

Segment layout (bytes), each cursor alone on its 64-byte cache line so the
producer and the consumer never write the same line:

    0    producer cursor: sequence of the next record the producer writes
    8    the consumer cursor as the producer last read it (producer-private)
    64   consumer cursor: sequence of the next record the consumer reads
    72   the producer cursor as the consumer last read it (consumer-private)
    128  consumer waiting: 1 while the consumer may block on the semaphore
    192  closed: 1 once the producer will publish nothing more
    256  capacity records of `dtype` (capacity a power of two)

Cursors only grow; record `s` lives in slot `s & (capacity - 1)`. The ring
holds `producer - consumer` records. The producer never overwrites: a full
ring is back-pressure, `publish` returns how many records fitted (maybe 0)
and the caller decides what to do meanwhile (DESIGN.md section 4: keep
draining its other inputs). Publication is batch: claim free slots, write
the records (in place, or copied by ring_publish), then one release store of
the producer cursor (commit); consumption is one acquire load (peek), read
(in place, or copied out by ring_consume), one release store of the consumer
cursor (release). ipc/atomics.py says why the ordering matters. Each side
keeps the other's cursor as last read, on its own cache line, and reads the
other's line again only when that cached value says the ring is full (or
empty): in steady state no cursor line crosses cores on the critical path
(the Disruptor's cached gating sequence).

Records are copied as uint64 words, so any record dtype whose size is a
multiple of 8 travels unchanged.
"""
from __future__ import annotations

import numpy as np
from multiprocessing import resource_tracker, shared_memory

from ..engine import records as R
from ..engine.jit import kernel
from .atomics import load_acquire, store_release

HEADER_BYTES = 256
PRODUCER = 0        # int64 index of each control word (byte offset / 8)
SEEN_CONSUMER = 1   # producer's cached copy of the consumer cursor
CONSUMER = 8
SEEN_PRODUCER = 9   # consumer's cached copy of the producer cursor
WAITING = 16
CLOSED = 24


@kernel(inline="always")
def ring_claim(ctrl, slots, n):
    """Producer, zero-copy: (first, k): slots first, first+1, ..., first+k-1
    (k <= n, each at `s & (capacity - 1)`) are free to write in place; then
    ring_commit(ctrl, first + k) publishes them."""
    head = ctrl[PRODUCER]                       # only this process writes it
    free = len(slots) - (head - ctrl[SEEN_CONSUMER])
    if free < n:
        ctrl[SEEN_CONSUMER] = load_acquire(ctrl, CONSUMER)
        free = len(slots) - (head - ctrl[SEEN_CONSUMER])
    return head, min(n, free)


@kernel(inline="always")
def ring_commit(ctrl, end):
    store_release(ctrl, PRODUCER, end)


@kernel(inline="always")
def ring_peek(ctrl, slots, max_n):
    """Consumer, zero-copy: (first, k): records first .. first+k-1 (k <= max_n)
    may be read in place; then ring_release(ctrl, first + k) frees them."""
    tail = ctrl[CONSUMER]                       # only this process writes it
    if ctrl[SEEN_PRODUCER] - tail < max_n:
        ctrl[SEEN_PRODUCER] = load_acquire(ctrl, PRODUCER)
    return tail, min(ctrl[SEEN_PRODUCER] - tail, max_n)


@kernel(inline="always")
def ring_release(ctrl, end):
    store_release(ctrl, CONSUMER, end)


@kernel()
def ring_publish(ctrl, slots, src, n):
    """Copy up to n records (rows of uint64 words) in; returns how many fitted."""
    head, k = ring_claim(ctrl, slots, n)
    mask = len(slots) - 1
    width = slots.shape[1]
    for i in range(k):
        row = (head + i) & mask
        for w in range(width):
            slots[row, w] = src[i, w]
    if k > 0:
        ring_commit(ctrl, head + k)
    return k


@kernel()
def ring_consume(ctrl, slots, dst, max_n):
    """Copy up to max_n records out into dst; returns how many."""
    tail, k = ring_peek(ctrl, slots, max_n)
    mask = len(slots) - 1
    width = slots.shape[1]
    for i in range(k):
        row = (tail + i) & mask
        for w in range(width):
            dst[i, w] = slots[row, w]
    if k > 0:
        ring_release(ctrl, tail + k)
    return k


@kernel()
def ring_wait(ctrl, slots):
    """Consumer, busy-spin: wait until a record is published; returns its
    sequence (read it in place, then ring_release)."""
    tail = ctrl[CONSUMER]
    while ctrl[SEEN_PRODUCER] == tail:
        ctrl[SEEN_PRODUCER] = load_acquire(ctrl, PRODUCER)
    return tail


@kernel()
def ring_take_all(ctrl, slots, words, pos, p):
    """Consume everything the ring holds into words[pos[2p+1]:] (pending rows
    are words[pos[2p]:pos[2p+1]]), moving pending rows to the front when the
    end is reached. Returns False if the buffer is full of pending rows and
    the ring still holds more (the caller grows the buffer and calls again)."""
    head = pos[2 * p]
    n = pos[2 * p + 1]
    cap = len(words)
    width = words.shape[1]
    if head == n:
        head = 0
        n = 0
    while True:
        if n == cap:
            if head == 0:
                pos[2 * p] = head
                pos[2 * p + 1] = n
                return False
            for r in range(n - head):
                for w in range(width):
                    words[r, w] = words[head + r, w]
            n -= head
            head = 0
        k = ring_consume(ctrl, slots, words[n:], cap - n)
        n += k
        if n < cap:
            pos[2 * p] = head
            pos[2 * p + 1] = n
            return True


@kernel()
def ring_close(ctrl):
    """Producer: nothing more will be published (ordered after the last publish)."""
    store_release(ctrl, CLOSED, 1)


@kernel()
def ring_is_closed(ctrl):
    return load_acquire(ctrl, CLOSED) != 0


@kernel()
def ring_available(ctrl):
    """Records published and not yet consumed (as seen now)."""
    return load_acquire(ctrl, PRODUCER) - load_acquire(ctrl, CONSUMER)


def attach_segment(name: str) -> shared_memory.SharedMemory:
    """Open an existing segment without registering it with the resource tracker.

    Python < 3.13 registers every attach, so the tracker would unlink the
    segment when the attaching process's tracker shuts down; and unregistering
    afterwards breaks the creator's own bookkeeping when both share a tracker
    (forked children do). Only the creator owns a segment's lifetime."""
    register = resource_tracker.register
    resource_tracker.register = lambda *a, **k: None
    try:
        return shared_memory.SharedMemory(name=name)
    finally:
        resource_tracker.register = register


def segment_bytes(dtype: np.dtype, capacity: int) -> int:
    return HEADER_BYTES + capacity * np.dtype(dtype).itemsize


class Ring:
    """One end (or both) of a ring in a named shared-memory segment."""

    def __init__(self, shm: shared_memory.SharedMemory, dtype: np.dtype, capacity: int, owner: bool):
        dtype = np.dtype(dtype)
        if capacity <= 0 or capacity & (capacity - 1):
            raise ValueError(f"ring capacity must be a power of two, not {capacity}")
        if dtype.itemsize % 8:
            raise ValueError(f"ring record size must be a multiple of 8 bytes, not {dtype.itemsize}")
        if shm.size < segment_bytes(dtype, capacity):
            raise ValueError(f"segment {shm.name} is {shm.size} bytes, ring needs {segment_bytes(dtype, capacity)}")
        self.shm, self.dtype, self.capacity, self.owner = shm, dtype, capacity, owner
        self.name = shm.name
        self.ctrl = np.ndarray(HEADER_BYTES // 8, np.int64, buffer=shm.buf)
        words = dtype.itemsize // 8
        self.slots = np.ndarray((capacity, words), np.uint64, buffer=shm.buf, offset=HEADER_BYTES)

    @classmethod
    def create(cls, name: str, dtype, capacity: int) -> "Ring":
        """Create the segment (the supervisor does this); cursors start at 0."""
        shm = shared_memory.SharedMemory(name=name, create=True, size=segment_bytes(dtype, capacity))
        ring = cls(shm, dtype, capacity, owner=True)
        ring.ctrl[:] = 0
        return ring

    @classmethod
    def attach(cls, name: str, dtype, capacity: int) -> "Ring":
        """Open an existing segment (a producer or consumer process does this)."""
        return cls(attach_segment(name), dtype, capacity, owner=False)

    def words_of(self, records: np.ndarray) -> np.ndarray:
        """The records as rows of uint64 words, sharing their memory."""
        if records.dtype != self.dtype:
            raise TypeError(f"ring {self.name} carries {self.dtype}, not {records.dtype}")
        if not records.flags.c_contiguous:
            raise ValueError(f"ring {self.name}: records must be a contiguous array")
        return R.words(records)

    def publish(self, records: np.ndarray) -> int:
        """Publish as many of records as fit; returns that number."""
        return ring_publish(self.ctrl, self.slots, self.words_of(records), len(records))

    def consume(self, out: np.ndarray) -> int:
        """Fill out (records of the ring's dtype) with up to len(out) records."""
        return ring_consume(self.ctrl, self.slots, self.words_of(out), len(out))

    # Zero-copy: write or read records where they lie in the ring.
    def records(self) -> np.ndarray:
        """The slots as records of the ring's dtype (slot s of sequence q is q & (capacity-1))."""
        return self.slots.view(self.dtype).reshape(self.capacity)

    def claim(self, n: int) -> tuple[int, int]:
        """(first, k): sequences first..first+k-1 (k <= n) may be written in place."""
        first, k = ring_claim(self.ctrl, self.slots, n)
        return int(first), int(k)

    def commit(self, end: int) -> None:
        """Publish every claimed record up to sequence `end` (exclusive)."""
        ring_commit(self.ctrl, end)

    def peek(self, max_n: int) -> tuple[int, int]:
        """(first, k): records first..first+k-1 (k <= max_n) may be read in place."""
        first, k = ring_peek(self.ctrl, self.slots, max_n)
        return int(first), int(k)

    def release(self, end: int) -> None:
        """Free every record up to sequence `end` (exclusive) for the producer."""
        ring_release(self.ctrl, end)

    def available(self) -> int:
        return int(ring_available(self.ctrl))

    @property
    def closed(self) -> bool:
        """The producer has closed; records may still be waiting to be consumed."""
        return bool(ring_is_closed(self.ctrl))

    def close_producer(self) -> None:
        """Say no more records will come (after the last publish)."""
        ring_close(self.ctrl)

    def close(self) -> None:
        """Drop this process's mapping; the creator also unlinks the segment."""
        self.ctrl = self.slots = None
        self.shm.close()
        if self.owner:
            self.shm.unlink()
