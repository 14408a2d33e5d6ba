"""The settlement process: never changes a balance; puts the events of
UBSCore and the ME back in ST order and hands them to a sink (the same writers
as the ST pipeline, or a counter in the benchmark).

Each step reads the progress words first, then (services/loops.settle_step)
takes everything the five rings hold: every event of every seq up to the
lowest progress word is then in hand (its producer published it before
vouching), and engine/settlement.py merges those into ST order and sets the
balance-after values. Events of later seqs wait in buffers that grow if a
burst outruns them (one order that sweeps a whole book), so settlement never
holds a producer up for long.
"""
from __future__ import annotations

import time

import numpy as np

from ..engine.events import Events
from ..engine.settlement import new_ledger
from . import loops as L
from .control import ME_DONE, T_END, U_CMD_DONE, U_SETTLED
from .wiring import Wiring

_ALL = np.iinfo(np.int64).max
_STREAMS = ("u_oev", "m_oev", "u_bev", "s_bev", "m_tev")     # in loops.P_* order


def _words(records: np.ndarray) -> np.ndarray:
    return records.view(np.uint64).reshape(len(records), records.dtype.itemsize // 8)


class Settlement:
    def __init__(self, wiring: Wiring, max_users: int, n_assets: int, sink):
        self.wiring, self.sink = wiring, sink
        self.rings = [wiring.rings[n] for n in _STREAMS]
        cap = wiring.cfg.ring_capacity
        self.bufs = [np.zeros(cap, r.dtype) for r in self.rings]
        self.pos = np.zeros(2 * len(_STREAMS), np.int64)
        self.res = np.zeros(2, np.int64)
        self.ledger = new_ledger(max_users, n_assets)
        self._sized()
        self.done = False
        self._run(0)                                   # compile now, not mid-run

    def _sized(self) -> None:
        """Output buffers that hold every pending record, and the kernel's views."""
        b = self.bufs
        self.oev = np.zeros(len(b[L.P_U_OEV]) + len(b[L.P_M_OEV]), b[L.P_U_OEV].dtype)
        self.bev = np.zeros(len(b[L.P_U_BEV]) + len(b[L.P_S_BEV]), b[L.P_U_BEV].dtype)
        self.args = (tuple(r.ctrl for r in self.rings), tuple(r.slots for r in self.rings),
                     tuple(_words(x) for x in b), self.pos)

    def _run(self, upto: int) -> None:
        while True:
            p = L.settle_step(*self.args, upto, self.oev, _words(self.oev), self.bev, _words(self.bev),
                              self.ledger, self.res)
            if p < 0:
                return
            grown = np.zeros(2 * len(self.bufs[p]), self.bufs[p].dtype)
            grown[:len(self.bufs[p])] = self.bufs[p]
            self.bufs[p] = grown
            self._sized()

    def step(self) -> bool:
        if self.done:
            return False
        c = self.wiring.control
        upto = min(c.get(U_CMD_DONE), c.get(ME_DONE), c.get(U_SETTLED))
        ended = all(r.closed and r.available() == 0 for r in self.rings)   # before taking
        pos = self.pos
        before = int(pos[1::2].sum())
        self._run(_ALL if ended else upto)
        t = L.P_TEV
        tev = self.bufs[t][pos[2 * t]:pos[2 * t + 1]]
        n_oev, n_bev = int(self.res[0]), int(self.res[1])
        work = n_oev > 0 or n_bev > 0 or len(tev) > 0 or int(pos[1::2].sum()) != before
        if n_oev or n_bev or len(tev):
            self.sink(Events(self.oev[:n_oev], tev, self.bev[:n_bev]))
            pos[2 * t] = pos[2 * t + 1]
        if ended:
            c.put(T_END, time.perf_counter_ns())
            self.done = True
        return work

    def balances(self, asset_ids: np.ndarray) -> np.ndarray:
        """The final balances, from the ledger's own table (ST's exactly)."""
        from ..engine.core import balance_rows
        led = self.ledger
        return balance_rows(led.bal, led.user_ids[:int(led.ctr[0])], asset_ids)
