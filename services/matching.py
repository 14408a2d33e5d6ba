"""The ME process: matches the commands UBSCore accepted, for all symbols.

A thin shell around engine/stages.me_batch: take accepted commands from the
order ring, run them, publish order and trade events to settlement and settle
messages back to UBSCore, then vouch (ME_DONE) for every seq up to the last
mark whose events are all out. At the end it leaves its book for settlement's
final files (`final_path`).
"""
from __future__ import annotations

import numpy as np

from ..engine.core import best_of, open_order_rows
from ..engine.emit import N_OEV, N_SETTLE, N_TEV, new_out
from ..engine.stages import me_batch, me_idle
from .control import ME_DONE
from .wiring import Wiring


class Matching:
    def __init__(self, wiring: Wiring, me, final_path):
        self.wiring, self.me, self.final_path = wiring, me, final_path
        self.inbox = wiring.inbox("order")
        self.out = out = new_out()
        self.boxes = [wiring.outbox("m_oev", out.oev, out.n, N_OEV),
                      wiring.outbox("m_tev", out.tev, out.n, N_TEV),
                      wiring.outbox("settle", out.settle, out.n, N_SETTLE)]
        self.marked = np.zeros(1, np.int64)
        self.vouched = 0
        self.done = False
        me_batch(me, self.out, self.inbox.buf, 0, 0, self.marked)   # compile now, not mid-run
        me_idle(me)

    def step(self) -> bool:
        if self.done:
            return False
        inbox = self.inbox
        work = False
        if inbox.empty and me_idle(self.me):
            work = inbox.refill() > 0
        if not inbox.empty or not me_idle(self.me):
            n0 = self.out.n.sum()
            head = me_batch(self.me, self.out, inbox.buf, inbox.head, inbox.tail, self.marked)
            work |= head != inbox.head or self.out.n.sum() != n0
            inbox.head = head
        flushed = all([box.flush() for box in self.boxes])
        if flushed and self.marked[0] > self.vouched:
            self.vouched = int(self.marked[0])
            self.wiring.control.put(ME_DONE, self.vouched)
            work = True
        if flushed and me_idle(self.me) and inbox.finished():
            self._finish()
        return work

    def _finish(self) -> None:
        # The open orders with each one's ref in place of its lock (UBSCore
        # knows the locks), and the top of every book.
        rows = open_order_rows(self.me, np.arange(len(self.me.ref_slot), dtype=np.int64))
        best = np.array([best_of(self.me, s) for s in range(len(self.me.syms))], np.int64)
        np.savez(self.final_path, open_orders=rows, best=best)
        for box in self.boxes:
            box.close()
        self.done = True
