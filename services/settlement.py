"""The settlement process: replays the durable command log and the ME's
outputs through a replica of UBSCore (engine/replica.py), so every event
comes out in ST order with ST's balance-after values, and hands them to a
sink (edge/sink.py's writers, or a counter in the benchmark).

Each step reads ME_DONE first, then takes everything the four rings hold:
the ME's outputs of every seq up to ME_DONE are then in hand (it published
them before vouching). With a WAL its commands come from the journal
(services/journal.py), which forwards only what the WAL holds, so nothing of
a seq is replayed or written before it is durable; without one, straight
from UBSCore's log ring. Records of later seqs wait in buffers that
grow if a burst outruns them (one order that sweeps a whole book), so
settlement never holds a producer up for long. At the end the replica's
balances and locks are the final state; the ME leaves its book in a file.

Metrics (runtime/metrics.py): "settle", each command's entry time to
replayed (its events handed to the sink); the counters of what the replica
emits (commands, trades, rejects by reason: ST's figures, whatever the timing).
"""
from __future__ import annotations

import time

import numpy as np

from ..engine import records as R
from ..engine.core import flush_events
from ..engine.emit import new_out
from ..engine.replica import REPLAY_DIVERGED, REPLAY_DONE, RS_DIVERGED, replay
from . import loops as L
from ..runtime.control import ME_DONE, T_END
from ..runtime.topology import settlement_log
from ..runtime.wiring import Wiring

_ALL = np.iinfo(np.int64).max
_ME_STREAMS = ("me_settles", "me_orders", "me_trades")     # after the log, in engine/replica.P_* order


class DivergenceError(RuntimeError):
    pass


class Settlement:
    def __init__(self, wiring: Wiring, replica, sink):
        """replica: a fresh UBSCore state, or a recovered one (whose refs UBSCore shares)."""
        self.wiring, self.ubs, self.sink = wiring, replica, sink
        self.streams = (settlement_log(wiring.topology), *_ME_STREAMS)
        self.rings = [wiring.rings[n] for n in self.streams]
        cap = wiring.cfg.ring_capacity
        self.bufs = [np.zeros(cap, r.dtype) for r in self.rings]
        self.pos = np.zeros(2 * len(self.streams), np.int64)
        self.replay_state = np.zeros(4, np.int64)
        self.refmap = np.full(len(replica.locks), -1, np.int32)    # UBSCore's ref -> the replica's
        held = np.flatnonzero(replica.locks["in_use"] == 1)
        self.refmap[held] = held            # recovered orders: UBSCore's copy has the same refs
        self.out = new_out()
        self.metrics = wiring.metrics
        self.row_settle = self.metrics.row("settle")
        m = self.metrics
        self.counting = m.on
        self.g_commands, self.g_trades = m.gauge_index["commands"], m.gauge_index["trades"]
        # The gauge of each reason code 1..: rejects.<code> (runtime/metrics.gauges_of names them all).
        self.g_rejects = np.array([m.gauge_index[f"rejects.{c}"] for c in range(1, max(R.REASON_TEXT) + 1)], np.int64)
        self._views()
        self.done = False
        self._run(0)                                   # compile now, not mid-run

    def _views(self) -> None:
        b = self.bufs
        self.take_args = (tuple(r.ctrl for r in self.rings), tuple(r.slots for r in self.rings),
                          tuple(R.words(x) for x in b), self.pos)
        self.args = (self.ubs, self.out, self.refmap, b[0], b[1], b[2], b[3], self.pos)

    def _take(self) -> None:
        """Everything the rings hold, into the buffers (grown when they must)."""
        while True:
            p = L.settle_take(*self.take_args)
            if p < 0:
                return
            grown = np.zeros(2 * len(self.bufs[p]), self.bufs[p].dtype)
            grown[:len(self.bufs[p])] = self.bufs[p]
            self.bufs[p] = grown
            self._views()

    def _run(self, upto: int) -> bool:
        """Replay up to `upto`, flushing the output as it fills; True if any event came."""
        got = False
        while True:
            code = replay(*self.args, upto, self.replay_state)
            if code == REPLAY_DIVERGED:
                raise DivergenceError(f"the replica's decision on seq {self.replay_state[RS_DIVERGED]} differs "
                                      "from UBSCore's: MT is not ST")
            got |= flush_events(self.out, self._counted)
            if code == REPLAY_DONE:
                return got

    def _counted(self, ev) -> None:
        """Count the events (trades, rejects by reason), then hand them to the sink."""
        if self.counting:
            g = self.metrics.gauges
            g[self.g_trades] += len(ev.trades)
            o = ev.orders
            if len(o):
                rejected = o["reason"][o["status"] == R.ST_REJECTED]
                if len(rejected):
                    n = len(self.g_rejects)
                    g[self.g_rejects] += np.bincount(rejected, minlength=n + 1)[1:n + 1]
        self.sink(ev)

    def step(self) -> bool:
        if self.done:
            return False
        c = self.wiring.control
        upto = c.get(ME_DONE)
        ended = all(r.closed and r.available() == 0 for r in self.rings)   # before taking
        before = int(self.pos[1::2].sum())
        self._take()
        head = int(self.pos[0])
        got = self._run(_ALL if ended else upto)
        if self.pos[0] != head:
            cmds = self.bufs[0][head:self.pos[0]]
            if self.counting:
                self.metrics.since(self.row_settle, cmds["ts"])
                self.metrics.gauges[self.g_commands] += len(cmds)
            self.replayed(cmds)
        work = got or int(self.pos[1::2].sum()) != before
        if ended:
            left = [n for i, n in enumerate(self.streams) if self.pos[2 * i] != self.pos[2 * i + 1]]
            if left:
                raise RuntimeError(f"settlement: records left unreplayed at the end in {left}")
            c.put(T_END, time.perf_counter_ns())
            self.ended()
            self.done = True
        return work

    def replayed(self, cmds: np.ndarray) -> None:
        """The commands this step replayed, every event of theirs handed to the sink."""

    def ended(self) -> None:
        """Every input is closed and replayed."""

    def lock_of_ubs_ref(self) -> np.ndarray:
        """The replica's lock of each order, by UBSCore's ref (for the book the ME leaves)."""
        return self.ubs.locks["lock"][self.refmap]
