"""The UBSCore process: the sequencer, balances, locks; applies the ME's fills.

A thin shell around engine/stages: settle messages first (they free the ME
and may release a waiting command), then commands. Accepted commands go to
the ME with a mark after each batch; UBSCore's own events go to settlement on
two rings, those of commands (u_oev, u_bev) and those of settles (s_bev), each
vouched for by a progress word once published. When a command must wait for
every earlier seq to settle (engine/stages.py), commands stop while settles
keep flowing; the count and the time of these stalls are reported.
Waiting for space on any ring never stops the draining of the settle ring, so
the UBSCore <-> ME cycle cannot deadlock (DESIGN.md section 4).
"""
from __future__ import annotations

import time

import numpy as np

from ..engine import records as R
from ..engine.emit import N_BEV, N_OEV, new_out
from ..engine.stages import SEQ_BARRIER, append_mark, ubs_apply, ubs_sequence
from ..engine.ubscore import U_SEQ
from .control import U_CMD_DONE, U_SETTLED
from .wiring import Wiring


class UbsCore:
    def __init__(self, wiring: Wiring, u, final_path, stats):
        self.wiring, self.u, self.final_path, self.stats = wiring, u, final_path, stats
        self.cmds = wiring.inbox("cmd")
        self.settles = wiring.inbox("settle")
        self.out_c = new_out(settle_cap=1)        # events of commands
        self.out_s = new_out(settle_cap=1)        # events of settles
        self.fwd = np.zeros(wiring.cfg.batch + 2, R.CMD)
        self.n_fwd = np.zeros(1, np.int64)
        self.to_me = wiring.outbox("order", self.fwd, self.n_fwd, 0)
        self.cmd_boxes = [self.to_me,
                          wiring.outbox("u_oev", self.out_c.oev, self.out_c.n, N_OEV),
                          wiring.outbox("u_bev", self.out_c.bev, self.out_c.n, N_BEV)]
        self.settle_box = wiring.outbox("s_bev", self.out_s.bev, self.out_s.n, N_BEV)
        self.settled = np.zeros(1, np.int64)
        self.marked = 0             # last seq sent to the ME in a mark
        self.vouched_cmd = 0
        self.vouched_settled = 0
        self.stall_since = 0        # perf_counter_ns when the waiting command started waiting
        self._settle_only = [wiring.rings["settle"]]
        self.wait_on = None         # the inputs that can end an idle wait (None: all)
        self.order_closed = False
        self.done = False
        # Compile now, not mid-run.
        ubs_apply(u, self.out_s, self.settles.buf, 0, 0, self.settled)
        ubs_sequence(u, self.out_c, self.cmds.buf, 0, 0, self.fwd, self.n_fwd, 0)
        append_mark(self.fwd, self.n_fwd, 0)
        self.n_fwd[0] = 0

    def step(self) -> bool:
        if self.done:
            return False
        u, control = self.u, self.wiring.control
        work = False
        # Settles: apply what came, publish, vouch.
        s = self.settles
        if s.empty:
            s.refill()
        if not s.empty:
            head = ubs_apply(u, self.out_s, s.buf, s.head, s.tail, self.settled)
            work |= head != s.head
            s.head = head
        if self.settle_box.flush() and self.settled[0] > self.vouched_settled:
            self.vouched_settled = int(self.settled[0])
            control.put(U_SETTLED, self.vouched_settled)
            work = True
        # Commands, unless one waits for every earlier seq to settle.
        seq = int(u.ctr[U_SEQ])
        if self.stall_since and self.settled[0] >= seq:
            self.stats["stall_ns"] += time.perf_counter_ns() - self.stall_since
            self.stall_since = 0
        # While a command waits, only a settle can end the wait.
        self.wait_on = self._settle_only if self.stall_since else None
        if not self.stall_since:
            c = self.cmds
            if c.empty:
                c.refill()
            if not c.empty:
                head, status = ubs_sequence(u, self.out_c, c.buf, c.head, c.tail,
                                            self.fwd, self.n_fwd, self.settled[0])
                work |= head != c.head
                c.head = head
                seq = int(u.ctr[U_SEQ])
                if seq > self.marked:
                    append_mark(self.fwd, self.n_fwd, seq)
                    self.marked = seq
                if status == SEQ_BARRIER:
                    self.stall_since = time.perf_counter_ns()
                    self.stats["stalls"] += 1
                    self.wait_on = self._settle_only
        flushed = all([box.flush() for box in self.cmd_boxes])
        if flushed and seq > self.vouched_cmd:
            self.vouched_cmd = seq
            control.put(U_CMD_DONE, seq)
            work = True
        # The end: no more commands -> close the ME's input; it closes the
        # settle ring when it is done, and then so are we.
        if not self.order_closed and flushed and self.cmds.finished():
            self.to_me.close()
            self.order_closed = True
            work = True
        if self.order_closed and self.settles.finished() and self.settle_box.flush():
            self._finish()
        return work

    def _finish(self) -> None:
        assert self.settled[0] == self.u.ctr[U_SEQ], "settles missing at the end"
        np.save(self.final_path, self.u.locks["lock"])
        for box in self.cmd_boxes[1:] + [self.settle_box]:
            box.close()
        self.done = True
