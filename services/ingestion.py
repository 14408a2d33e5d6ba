"""Ingestion: plays the gateway's part in fixture runs.

Publishes the dataset's commands (initial deposits first) into the cmd ring
in batches, then closes it. A stop request from the supervisor ends the
stream early; what was published is still processed to the end. After a
crash it starts after the last command the WAL holds (`start`): every
command gets seq = its index + 1, so each is sequenced exactly once.
"""
from __future__ import annotations

import time

import numpy as np

from ..ipc.ring import ring_publish
from ..runtime.control import INGEST_LIMIT, STOP, T_START
from ..runtime.wiring import Wiring


class Ingestion:
    def __init__(self, wiring: Wiring, commands: np.ndarray, start: int = 0):
        self.wiring = wiring
        self.ring = wiring.rings["cmd"]
        self.words = self.ring.words_of(np.ascontiguousarray(commands))
        self.waker = wiring.waker("cmd")
        self.batch = wiring.cfg.batch
        self.sent = start
        self.started = False
        self.done = False

    def step(self) -> bool:
        if self.done:
            return False
        c = self.wiring.control
        if not self.started:
            c.put(T_START, time.perf_counter_ns())
            self.started = True
        n = len(self.words)
        limit = c.get(INGEST_LIMIT)
        if limit and self.sent >= limit:
            time.sleep(0.0002)
            return False
        if self.sent < n and not c.get(STOP):
            k = min(self.batch, n - self.sent, limit - self.sent if limit else n)
            k = ring_publish(self.ring.ctrl, self.ring.slots, self.words[self.sent:self.sent + k], k)
            if k:
                self.sent += k
                self.waker.published()
                return True
            time.sleep(0.0002)      # ring full: UBSCore is behind; give it the core
            return False
        self.ring.close_producer()
        self.waker.published()
        self.done = True
        return True
