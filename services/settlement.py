"""The settlement process: never changes a balance; puts the events of
UBSCore and the ME back in ST order and hands them to a sink (the same writers
as the ST pipeline, or a counter in the benchmark).

Each step reads the progress words first, then takes everything the five
rings hold: every event of every seq up to the lowest progress word is then
in hand (its producer published it before vouching), and engine/settlement.py
merges those into ST order and sets the balance-after values. Events of later
seqs wait in buffers that grow if a burst outruns them (a single order that
sweeps a whole book), so settlement never blocks a producer for long.
"""
from __future__ import annotations

import time

import numpy as np

from ..engine import records as R
from ..engine.events import Events
from ..engine.settlement import ledger_apply, merge_upto, new_ledger
from ..ipc.ring import ring_consume
from .control import ME_DONE, T_END, U_CMD_DONE, U_SETTLED
from .wiring import Wiring

_ALL = np.iinfo(np.int64).max


def _words(records: np.ndarray) -> np.ndarray:
    return records.view(np.uint64).reshape(len(records), records.dtype.itemsize // 8)


class _Pending:
    """Records taken from one ring, not yet merged (front of the buffer)."""

    def __init__(self, ring, capacity: int):
        self.ring = ring
        self.buf = np.zeros(capacity, ring.dtype)
        self.n = 0

    def take(self) -> int:
        """Everything the ring holds now; the buffer grows when it must."""
        got = 0
        while True:
            if self.n == len(self.buf):
                grown = np.zeros(2 * len(self.buf), self.buf.dtype)
                grown[:self.n] = self.buf
                self.buf = grown
            k = ring_consume(self.ring.ctrl, self.ring.slots, _words(self.buf)[self.n:], len(self.buf) - self.n)
            self.n += k
            got += k
            if self.n < len(self.buf):
                return got


    def finished(self) -> bool:
        return self.ring.closed and self.ring.available() == 0


class Settlement:
    def __init__(self, wiring: Wiring, max_users: int, n_assets: int, sink):
        self.wiring, self.sink = wiring, sink
        cap = wiring.cfg.ring_capacity
        r = wiring.rings
        self.u_oev, self.m_oev = _Pending(r["u_oev"], cap), _Pending(r["m_oev"], cap)
        self.u_bev, self.s_bev = _Pending(r["u_bev"], cap), _Pending(r["s_bev"], cap)
        self.tev = _Pending(r["m_tev"], cap)
        self.ledger = new_ledger(max_users, n_assets)
        self.oev_out = np.zeros(0, R.ORDER_EVENT)
        self.bev_out = np.zeros(0, R.BALANCE_EVENT)
        self.done = False
        self._merge(self.u_oev, self.m_oev, 0, "oev_out")      # compile now, not mid-run
        ledger_apply(self.ledger, self._merge(self.u_bev, self.s_bev, 0, "bev_out"), 0)

    def step(self) -> bool:
        if self.done:
            return False
        c = self.wiring.control
        upto = min(c.get(U_CMD_DONE), c.get(ME_DONE), c.get(U_SETTLED))
        streams = (self.u_oev, self.m_oev, self.u_bev, self.s_bev, self.tev)
        ended = all(p.finished() for p in streams)      # before taking: nothing can come after
        got = sum(p.take() for p in streams)
        if ended:
            upto = _ALL
        oev = self._merge(self.u_oev, self.m_oev, upto, "oev_out")
        bev = self._merge(self.u_bev, self.s_bev, upto, "bev_out")
        ledger_apply(self.ledger, bev, len(bev))
        tev = self.tev.buf[:self.tev.n]
        work = got > 0 or len(oev) > 0 or len(bev) > 0
        if work:
            self.sink(Events(oev, tev, bev))
            self.tev.n = 0
        if ended:
            c.put(T_END, time.perf_counter_ns())
            self.done = True
        return work

    def _merge(self, a: _Pending, b: _Pending, upto: int, out_attr: str) -> np.ndarray:
        """The records of a and b up to seq `upto`, in ST order (a first on a tie)."""
        dst = getattr(self, out_attr)
        if len(dst) < a.n + b.n:
            dst = np.zeros(max(a.n + b.n, 2 * len(dst)), a.buf.dtype)
            setattr(self, out_attr, dst)
        k, a.n, b.n = merge_upto(_words(a.buf), a.n, _words(b.buf), b.n, upto, _words(dst))
        return dst[:k]

    def balances(self, asset_ids: np.ndarray) -> np.ndarray:
        """The final balances, from the ledger's own table (ST's exactly)."""
        from ..engine.core import balance_rows
        led = self.ledger
        return balance_rows(led.bal, led.user_ids[:int(led.ctr[0])], asset_ids)
