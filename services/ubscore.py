"""The UBSCore process: the sequencer, balances, locks; applies the ME's fills.

A thin shell around the compiled loop `services/loops.ubs_loop`, which runs
engine/stages.py: settle messages first (they free the ME and may end a
stall), then commands. Accepted commands go to the ME with a mark after each
batch; UBSCore's own events go to settlement on two rings, those of commands
(u_oev, u_bev) and those of settles (s_bev), each vouched for by a progress
word once published. When a command must wait for every earlier seq to settle
(engine/stages.py), commands stop while settles keep flowing; the count and
the time of these stalls are reported. Waiting for space on any ring never
stops the draining of the settle ring, so the UBSCore <-> ME cycle cannot
deadlock (DESIGN.md section 4).
"""
from __future__ import annotations

import os
import sys

import numpy as np

from ..engine import records as R
from ..engine.emit import new_out
from ..engine.ubscore import U_SEQ
from ..ipc.atomics import cycles_per_ns
from . import loops as L
from .wiring import Wiring


class UbsCore:
    def __init__(self, wiring: Wiring, u, final_path, stats):
        self.wiring, self.u, self.final_path, self.stats = wiring, u, final_path, stats
        cfg, rings = wiring.cfg, wiring.rings
        out_c = new_out(settle_cap=1)            # events of commands
        out_s = new_out(settle_cap=1)            # events of settles
        cmds = np.zeros(cfg.batch, R.CMD)
        sets = np.zeros(cfg.batch, R.SETTLE)
        fwd = np.zeros(cfg.batch + 2, R.CMD)     # room for the mark
        self.n_fwd = np.zeros(1, np.int64)
        self.st = np.zeros(L.S_WORDS, np.int64)
        r = {n: rings[n] for n in ("cmd", "settle", "order", "u_oev", "u_bev", "s_bev")}
        self.args = (u, out_c, out_s, fwd, self.n_fwd,
                     r["cmd"].ctrl, r["cmd"].slots, cmds, r["cmd"].words_of(cmds),
                     r["settle"].ctrl, r["settle"].slots, sets, r["settle"].words_of(sets),
                     r["order"].ctrl, r["order"].slots, r["order"].words_of(fwd),
                     r["u_oev"].ctrl, r["u_oev"].slots, r["u_oev"].words_of(out_c.oev),
                     r["u_bev"].ctrl, r["u_bev"].slots, r["u_bev"].words_of(out_c.bev),
                     r["s_bev"].ctrl, r["s_bev"].slots, r["s_bev"].words_of(out_s.bev),
                     wiring.control.words, self.st, int(os.environ.get('XINF_CHUNK', cfg.batch)))
        self.in_cmd, self.in_settle = r["cmd"], r["settle"]
        self.outs = [r["order"], r["u_oev"], r["u_bev"], r["s_bev"]]      # loops' output numbers
        self.wakers = [wiring.waker(ring.name) for ring in self.outs]
        self.settle_only = [r["settle"]]
        self.wait_on = None         # the inputs that can end an idle wait (None: all)
        self.max_polls = cfg.loop_spins
        self.per_ns = cycles_per_ns()
        self.order_closed = False
        self.done = False
        L.ubs_loop(*self.args, 1, 0)            # compile now, not mid-run

    def step(self) -> bool:
        st = self.st
        work0 = st[L.S_WORK]
        status = L.ubs_loop(*self.args, self.max_polls, 1 << 16)
        if st[L.S_WAKE]:
            for i, waker in enumerate(self.wakers):
                if st[L.S_WAKE] & (1 << i):
                    waker.post()
            st[L.S_WAKE] = 0
        stalled = st[L.S_STALL_SINCE] != 0
        self.wait_on = self.settle_only if stalled else None
        self.stats["stalls"] = st[L.S_STALLS]
        self.stats["stall_ns"] = int(st[L.S_STALL_CYCLES] / self.per_ns)
        if os.environ.get("XINF_DEBUG") and self.done is False and status == L.IDLE and st[L.S_STALLS]:
            pass
        if status == L.IDLE and st[L.S_FLUSHED]:
            self._maybe_end(stalled)
        return st[L.S_WORK] != work0

    def _maybe_end(self, stalled: bool) -> None:
        """No more commands -> close the ME's input; it closes the settle ring
        when it is done, and then so are we."""
        st = self.st
        if (not self.order_closed and not stalled and st[L.S_IN_HEAD] == st[L.S_IN_TAIL]
                and self.in_cmd.closed and self.in_cmd.available() == 0):
            self.outs[0].close_producer()
            self.wakers[0].post()
            self.order_closed = True
        elif (self.order_closed and st[L.S_IN2_HEAD] == st[L.S_IN2_TAIL]
                and self.in_settle.closed and self.in_settle.available() == 0):
            self._finish()

    def _finish(self) -> None:
        if os.environ.get("XINF_DEBUG"):
            st = self.st
            print(f"ubscore: stalls {st[L.S_STALLS]}, behind/stall {st[L.S_STALL_BEHIND] / max(1, st[L.S_STALLS]):.1f}, "
                  f"us/stall {st[L.S_STALL_CYCLES] / self.per_ns / 1e3 / max(1, st[L.S_STALLS]):.1f} apply {st[20]/self.per_ns/1e6:.1f} ms seq {st[21]/self.per_ns/1e6:.1f} ms flush {st[22]/self.per_ns/1e6:.1f} ms", file=sys.stderr)
        assert self.st[L.S_SETTLED] == self.u.ctr[U_SEQ], "settles missing at the end"
        np.save(self.final_path, self.u.locks["lock"])
        for ring, waker in zip(self.outs[1:], self.wakers[1:]):
            ring.close_producer()
            waker.post()
        self.done = True
