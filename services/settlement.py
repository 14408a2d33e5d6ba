"""The settlement process: replays the sequenced command log and the ME's
outputs through a replica of UBSCore (engine/settlement.py), so every event
comes out in ST order with ST's balance-after values, and hands them to a
sink (the ST pipeline's writers, or a counter in the benchmark).

Each step reads ME_DONE first, then takes everything the four rings hold:
the ME's outputs of every seq up to ME_DONE are then in hand (it published
them before vouching). With a journal, the sequenced commands taken are
appended to the order WAL first (group commit: everything since the last
step in one write and one sync), and nothing of a seq is replayed or written
before the WAL holds its command: the core runs ahead of the disk, what
leaves the system waits for it (the LMAX journaller's place). Records of later seqs wait in buffers that grow if a
burst outruns them (one order that sweeps a whole book), so settlement never
holds a producer up for long. At the end the replica's balances and locks
are the final state; the ME leaves its book in a file.
"""
from __future__ import annotations

import time

import numpy as np

from ..engine import records as R
from ..engine.core import flush_events
from ..engine.emit import new_out
from ..engine.replica import REPLAY_DIVERGED, REPLAY_DONE, RS_DIVERGED, replay
from . import loops as L
from ..runtime.control import JOURNALED, ME_DONE, T_END
from ..runtime.wiring import Wiring

_ALL = np.iinfo(np.int64).max
_STREAMS = ("log", "m_set", "m_oev", "m_tev")     # in engine/replica.P_* order


class DivergenceError(RuntimeError):
    pass


class Settlement:
    def __init__(self, wiring: Wiring, replica, sink, journal=None, journaled: int = 0):
        """journaled: the WAL holds every seq up to this, and the replica has
        run them (a recovered state, whose refs UBSCore shares)."""
        self.wiring, self.ubs, self.sink, self.journal = wiring, replica, sink, journal
        self.journaled = journaled  # last seq the WAL holds (durable as its policy says)
        wiring.control.put(JOURNALED, journaled)
        self.rings = [wiring.rings[n] for n in _STREAMS]
        cap = wiring.cfg.ring_capacity
        self.bufs = [np.zeros(cap, r.dtype) for r in self.rings]
        self.pos = np.zeros(2 * len(_STREAMS), np.int64)
        self.replay_state = np.zeros(4, np.int64)
        self.refmap = np.full(len(replica.locks), -1, np.int32)    # UBSCore's ref -> the replica's
        held = np.flatnonzero(replica.locks["in_use"] == 1)
        self.refmap[held] = held            # recovered orders: UBSCore's copy has the same refs
        self.out = new_out()
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

    def _journal(self) -> None:
        """Append the sequenced commands not yet in the WAL (group commit: all
        that came since the last step, one write and one sync)."""
        log = self.bufs[0][self.pos[0]:self.pos[1]]
        new = log[np.searchsorted(log["seq"], self.journaled, side="right"):]
        if len(new):
            self.journaled = self.journal.append(new)
            self.wiring.control.put(JOURNALED, self.journaled)

    def _run(self, upto: int) -> bool:
        """Replay up to `upto`, flushing the output as it fills; True if any event came."""
        got = False
        while True:
            code = replay(*self.args, upto, self.replay_state)
            if code == REPLAY_DIVERGED:
                raise DivergenceError(f"the replica's decision on seq {self.replay_state[RS_DIVERGED]} differs "
                                      "from UBSCore's: MT is not ST")
            got |= flush_events(self.out, self.sink)
            if code == REPLAY_DONE:
                return got

    def step(self) -> bool:
        if self.done:
            return False
        c = self.wiring.control
        upto = c.get(ME_DONE)
        ended = all(r.closed and r.available() == 0 for r in self.rings)   # before taking
        before = int(self.pos[1::2].sum())
        self._take()
        held = _ALL
        if self.journal is not None:
            self._journal()
            held = self.journaled       # nothing leaves settlement before the WAL holds its command
        got = self._run(held if ended else min(upto, held))
        work = got or int(self.pos[1::2].sum()) != before
        if ended:
            left = [n for i, n in enumerate(_STREAMS) if self.pos[2 * i] != self.pos[2 * i + 1]]
            if left:
                raise RuntimeError(f"settlement: records left unreplayed at the end in {left}")
            if self.journal is not None:
                self.journal.close()
            c.put(T_END, time.perf_counter_ns())
            self.done = True
        return work

    def lock_of_ubs_ref(self) -> np.ndarray:
        """The replica's lock of each order, by UBSCore's ref (for the book the ME leaves)."""
        return self.ubs.locks["lock"][self.refmap]
