"""The journal process: makes the sequenced command log durable, then passes it on.

Like the LMAX journaller it runs beside the business logic, not before it:
UBSCore and the ME run ahead of the disk (their state is volatile and rebuilt
by replay), but nothing of a seq leaves the system before the WAL holds it.
Each step takes what the log ring holds (group commit: one write and, under
`every_batch`, one fsync for all of it), publishes "durable through seq N"
(DURABLE in the control block, a release store after the sync), then
forwards those commands to settlement: everything settlement sees is durable.
Client acknowledgements wait on DURABLE in the same way.

Without a WAL (benchmarks, parity runs) the commands are forwarded as they
come, and DURABLE follows them.

Metrics (runtime/metrics.py): "wal", each command's entry time to durable;
"wal.fsync", each group commit's append and sync (one sample per batch).
"""
from __future__ import annotations

import time

import numpy as np

from ..engine import records as R
from ..ipc.ring import ring_consume, ring_publish
from ..runtime.control import DURABLE
from ..runtime.wiring import Wiring


class Journal:
    def __init__(self, wiring: Wiring, wal=None, durable: int = 0):
        """wal: a storage/wal_dir.WalDir to append to (None: no WAL); durable:
        the WAL holds every seq up to this already (a recovered pipeline)."""
        self.wiring, self.wal = wiring, wal
        self.inp, self.out = wiring.rings["log"], wiring.rings["durable_log"]
        self.buf = np.zeros(wiring.cfg.batch, R.CMD)
        self.in_words = self.inp.words_of(self.buf)
        self.out_words = self.out.words_of(self.buf)
        self.waker = wiring.waker(self.out.name)
        self.n = self.sent = 0          # buf[:n] taken, buf[:sent] forwarded
        self.durable = durable
        wiring.control.put(DURABLE, durable)
        self.metrics = wiring.metrics
        self.row_durable, self.row_fsync = self.metrics.row("wal"), self.metrics.row("wal.fsync")
        self.done = False

    def step(self) -> bool:
        if self.sent < self.n:
            return self._forward()
        ended = self.inp.closed and self.inp.available() == 0       # before taking
        n = ring_consume(self.inp.ctrl, self.inp.slots, self.in_words, len(self.buf))
        if n:
            cmds = self.buf[:n]
            t = time.perf_counter_ns()
            self.durable = self.wal.append(cmds) if self.wal is not None else int(cmds["seq"][-1])
            self.wiring.control.put(DURABLE, self.durable)
            self.metrics.value(self.row_fsync, time.perf_counter_ns() - t)
            self.metrics.since(self.row_durable, cmds["ts"])
            self.n, self.sent = n, 0
            self._forward()
            return True
        if ended:
            if self.wal is not None:
                self.wal.close()
            self.out.close_producer()
            self.waker.post()
            self.done = True
        return False

    def _forward(self) -> bool:
        k = ring_publish(self.out.ctrl, self.out.slots, self.out_words[self.sent:self.n], self.n - self.sent)
        if k:
            self.sent += k
            self.waker.published()
        return k > 0
