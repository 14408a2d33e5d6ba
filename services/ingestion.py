"""Ingestion: plays the gateway's part in fixture runs.

Publishes the dataset's commands (initial deposits first) into its command
ring in batches, then closes it. A stop request from the supervisor ends the
stream early; what was published is still processed to the end. After a
crash it starts after the last of its commands the WAL holds (`start`), so
each is sequenced exactly once.

Each batch is stamped with its entry time (CMD.ts, time.time_ns() once per
batch) as it is published, as a gateway stamps each request: the latency
metrics of every later stage start there (runtime/metrics.py). Observation
only: no state machine and no output file reads it.

Paced (`rate`, commands per second; `xinf bench latency`), it is an open-loop
load: command i is due i/rate after the go and is published once due (with
every other due one, up to a batch); its entry time is when it was due, not
when it went out, so a pipeline that falls behind shows it in every later
stage's latency (no coordinated omission).
"""
from __future__ import annotations

import ctypes
import time

import numpy as np

from ..engine import records as R
from ..ipc.ring import ring_publish
from ..runtime.control import INGEST_LIMIT, STOP, T_START
from ..runtime.topology import command_ring
from ..runtime.wiring import Wiring


_TS_WORD = R.CMD.fields["ts"][1] // 8
_PR_SET_TIMERSLACK = 29


def fine_sleeps() -> None:
    """Timer slack 1 ns (Linux's default is 50 us): a paced source's short sleeps end on time."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Ingestion:
    def __init__(self, wiring: Wiring, commands: np.ndarray, start: int = 0, name: str = "ingestion",
                 hold: bool = False, rate: int = 0):
        """start: commands[:start] are in the WAL already; hold: when the
        commands run out, keep the ring open until the supervisor's stop (a
        live source gone quiet: service mode); rate: commands per second
        (0: as fast as UBSCore takes them)."""
        self.wiring, self.hold = wiring, hold
        self.ring = wiring.rings[command_ring(name)]
        self.commands = np.ascontiguousarray(commands)
        self.stamp = wiring.metrics.on           # the entry time serves the metrics only
        self.rate = int(rate)
        self.due_ns = None                       # paced: each command's due time after the go
        if self.rate:
            self.due_ns = (np.arange(len(commands), dtype=np.int64) * 1_000_000_000) // self.rate
            fine_sleeps()
        self.t0 = 0                              # paced: time.time_ns() at the go, less the skipped commands' due time
        self.buf = np.zeros(min(wiring.cfg.batch, max(1, len(commands))), self.commands.dtype)
        self.buf_words = self.ring.words_of(self.buf)
        self.words = self.ring.words_of(self.commands)
        self.waker = wiring.waker(self.ring.name)
        self.batch = wiring.cfg.batch
        self.sent = start
        self.started = False
        self.done = False

    def step(self) -> bool:
        if self.done:
            return False
        c = self.wiring.control
        n = len(self.words)
        if not self.started:
            if not c.get(T_START):          # the pipeline starts with the first source to start
                c.put(T_START, time.perf_counter_ns())
            self.started = True
            if self.rate:
                self.t0 = time.time_ns() - int(self.due_ns[min(self.sent, n - 1)] if n else 0)
        limit = c.get(INGEST_LIMIT)
        if limit and self.sent >= limit:
            time.sleep(0.0002)
            return False
        if self.sent < n and not c.get(STOP):
            k = min(self.batch, n - self.sent, limit - self.sent if limit else n, len(self.buf))
            if self.rate and not (k := self._due(k)):
                return False
            if self.rate or self.stamp:
                # Copied as words (a structured copy goes field by field: ~100 ns a record), ts is word 1.
                self.buf_words[:k] = self.words[self.sent:self.sent + k]
                ts = self.buf_words[:k, _TS_WORD]
                if self.rate:       # each its due time
                    np.add(self.due_ns[self.sent:self.sent + k], self.t0, out=ts, casting="unsafe")
                else:
                    ts[:] = time.time_ns()
                k = ring_publish(self.ring.ctrl, self.ring.slots, self.buf_words[:k], k)
            else:
                k = ring_publish(self.ring.ctrl, self.ring.slots, self.words[self.sent:self.sent + k], k)
            if k:
                self.sent += k
                self.waker.published()
                return True
            time.sleep(0.0002)      # ring full: UBSCore is behind; give it the core
            return False
        if self.hold and not c.get(STOP):
            time.sleep(0.001)
            return False
        self.ring.close_producer()
        self.waker.published()
        self.done = True
        return True

    def _due(self, k: int) -> int:
        """Paced: how many of the next k commands are due, after sleeping until the next one is
        (at most 1 ms, so that a stop is seen)."""
        late = time.time_ns() - self.t0
        wait = int(self.due_ns[self.sent]) - late
        if wait > 0:
            time.sleep(min(wait, 1_000_000) / 1e9)
            late = time.time_ns() - self.t0
        return int(np.searchsorted(self.due_ns[self.sent:self.sent + k], late, side="right"))
