"""The ME process: matches the commands UBSCore accepted, for all symbols.

A thin shell around the compiled loop `services/loops.matching_loop`: take accepted
commands from the order ring, run them (engine/stages.match_commands), publish
order and trade events to settlement and settle messages to both UBSCore and
settlement,
then vouch (ME_DONE) for every seq up to the last mark whose events are all
out. At the end it leaves its book for settlement's final files.
"""
from __future__ import annotations

import numpy as np

from ..engine import records as R
from ..engine.core import best_of, named_arrays, open_order_rows
from ..engine.emit import new_out
from ..engine.stages import matching_idle
from . import loops as L
from ..runtime.control import SNAP_AT, SNAP_ME
from ..runtime.wiring import Wiring


class Matching:
    def __init__(self, wiring: Wiring, me, final_path, snapshots=None):
        """snapshots: a storage/snapshot.PartWriter to cut snapshots with (None: never)."""
        self.wiring, self.me, self.final_path = wiring, me, final_path
        self.snapshots, self.snapped = snapshots, 0
        cfg, rings = wiring.cfg, wiring.rings
        out = new_out()
        cmds = np.zeros(cfg.batch, R.CMD)
        self.loop_state = np.zeros(L.S_WORDS, np.int64)
        r = {n: rings[n] for n in ("order", "me_orders", "me_trades", "settles", "me_settles")}
        self.args = (me, out, np.zeros(1, np.int64),
                     r["order"].ctrl, r["order"].slots, cmds, r["order"].words_of(cmds),
                     r["me_orders"].ctrl, r["me_orders"].slots, r["me_orders"].words_of(out.order_events),
                     r["me_trades"].ctrl, r["me_trades"].slots, r["me_trades"].words_of(out.trade_events),
                     r["settles"].ctrl, r["settles"].slots, r["settles"].words_of(out.settles),
                     r["me_settles"].ctrl, r["me_settles"].slots, r["me_settles"].words_of(out.settles),
                     wiring.control.words, self.loop_state, cfg.forward_every)
        self.metrics = wiring.metrics
        self.args += (self.metrics.hist, self.metrics.row("match"), self.metrics.calibrate())
        self.inp = r["order"]
        self.outs = [r["me_orders"], r["me_trades"], r["settles"], r["me_settles"]]      # the loop's output numbers
        self.wakers = [wiring.waker(ring.name) for ring in self.outs]
        self.max_polls = cfg.loop_spins
        self.turns = 1 << 16         # loop turns per step (between heartbeats)
        self.done = False
        L.matching_loop(*self.args, 1, 0)             # compile now, not mid-run
        matching_idle(me)

    def step(self) -> bool:
        loop_state = self.loop_state
        work0 = loop_state[L.S_WORK]
        self.metrics.keep_calibrated()      # the loop's clock (runtime/metrics.py)
        status = L.matching_loop(*self.args, self.max_polls, self.turns)
        L.post_wakes(loop_state, self.wakers)
        quiet = (status == L.IDLE and loop_state[L.S_FLUSHED] and loop_state[L.S_IN_HEAD] == loop_state[L.S_IN_TAIL]
                 and matching_idle(self.me))
        if quiet and self.snapshots is not None:
            self._snapshot()
        if quiet and self.inp.closed and self.inp.available() == 0:
            self._finish()
        return loop_state[L.S_WORK] != work0

    def _snapshot(self) -> None:
        """UBSCore stopped at SNAP_AT: once everything up to it is run and out,
        nothing later can come until we say so; cut here (a forked child writes)."""
        c = self.wiring.control
        at = c.get(SNAP_AT)
        if at > self.snapped and self.loop_state[L.S_VOUCHED] >= at:
            self.snapshots.start(at, named_arrays("me", self.me))
            self.snapped = at
            c.put(SNAP_ME, at)

    def _finish(self) -> None:
        # The open orders with each one's ref in place of its lock (UBSCore
        # knows the locks), and the top of every book.
        rows = open_order_rows(self.me, np.arange(len(self.me.slot_of_ref), dtype=np.int64))
        best = np.array([best_of(self.me, s) for s in range(len(self.me.symbols))], np.int64)
        np.savez(self.final_path, open_orders=rows, best=best)
        L.close_outputs(self.outs, self.wakers)
        if self.snapshots is not None:
            self.snapshots.wait()
        self.done = True
