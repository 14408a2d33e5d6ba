"""Ingestion: plays the gateway's part in fixture runs.

Publishes the dataset's commands (initial deposits first) into the cmd ring
in batches, then closes it. A stop request from the supervisor ends the
stream early; what was published is still processed to the end.
"""
from __future__ import annotations

import time

import numpy as np

from ..ipc.ring import ring_publish
from .control import STOP, T_START
from .wiring import Wiring


class Ingestion:
    def __init__(self, wiring: Wiring, commands: np.ndarray):
        self.wiring = wiring
        self.ring = wiring.rings["cmd"]
        self.words = self.ring.words_of(np.ascontiguousarray(commands))
        self.waker = wiring.waker("cmd")
        self.batch = wiring.cfg.batch
        self.sent = 0
        self.done = False

    def step(self) -> bool:
        if self.done:
            return False
        c = self.wiring.control
        if self.sent == 0:
            c.put(T_START, time.perf_counter_ns())
        n = len(self.words)
        if self.sent < n and not c.get(STOP):
            k = min(self.batch, n - self.sent)
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
