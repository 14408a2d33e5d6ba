"""A process's ends of its rings: what it reads (Inbox) and what it sends (Outbox).

An Inbox copies a batch of records out of its ring into a local buffer that
the state machine then works through at its own pace (it may stop half way:
an output low, a barrier). An Outbox publishes a buffer the state machine
filled (an `Out` stream or the forward buffer, with its count in a counter
array) and resets the count once everything went out; a full ring leaves the
rest for the next flush, so the caller can go and drain its other inputs
meanwhile (DESIGN.md section 4).
"""
from __future__ import annotations

import numpy as np

from ..ipc import wait
from ..ipc.ring import Ring, ring_consume, ring_publish


class Inbox:
    def __init__(self, ring: Ring, capacity: int):
        self.ring = ring
        self.buf = np.zeros(capacity, ring.dtype)
        self._words = ring.words_of(self.buf)
        self.head = self.tail = 0

    @property
    def empty(self) -> bool:
        return self.head == self.tail

    def refill(self) -> int:
        """When empty, take what the ring holds (up to the buffer's size)."""
        if self.head != self.tail:
            return 0
        self.head = 0
        self.tail = ring_consume(self.ring.ctrl, self.ring.slots, self._words, len(self.buf))
        return self.tail

    def finished(self) -> bool:
        """The producer closed, and every record is consumed and worked through."""
        return self.head == self.tail and self.ring.closed and self.ring.available() == 0


class Outbox:
    def __init__(self, ring: Ring, buf: np.ndarray, counts: np.ndarray, index: int, waker: wait.Waker):
        self.ring, self.buf, self.counts, self.index, self.waker = ring, buf, counts, index, waker
        self._words = ring.words_of(buf)
        self.sent = 0
        self.published = 0

    def flush(self) -> bool:
        """Publish what is pending; True when nothing is left pending."""
        n = int(self.counts[self.index])
        if self.sent < n:
            k = ring_publish(self.ring.ctrl, self.ring.slots, self._words[self.sent:n], n - self.sent)
            if k:
                self.sent += k
                self.published += k
                self.waker.published()
        if self.sent == n:
            if n:
                self.counts[self.index] = 0
                self.sent = 0
            return True
        return False

    @property
    def pending(self) -> bool:
        return self.counts[self.index] > 0

    def close(self) -> None:
        """Everything is published: tell the consumer no more will come."""
        self.ring.close_producer()
        self.waker.published()
