"""The UBSCore process: the sequencer, balances, locks; applies the ME's fills.

A thin shell around the compiled loop `services/loops.ubscore_loop`, which runs
engine/stages.py: settle messages first (they free the ME and may end a
stall), then commands. Accepted commands go to the ME, with a mark after each
chunk; every sequenced command goes to the log ring (the journal makes it
durable, settlement replays it). When a command must wait for every
earlier seq to settle (engine/stages.py), commands stop while settles keep
flowing; the count and time of these stalls, and how many seqs were still
unsettled when each began, are reported. Waiting for space on any ring never
stops the draining of the settle ring, so the UBSCore <-> ME cycle cannot
deadlock (DESIGN.md section 4). A snapshot request stops sequencing at the
current seq until its cut is taken (storage/snapshot.py). Commands come from
every source's ring (runtime/topology.py), taken in turn.
"""
from __future__ import annotations

import numpy as np

from ..engine import records as R
from ..engine.core import named_arrays
from ..engine.emit import new_out
from ..engine.ubscore import UBS_LAST_SEQ
from ..ipc.atomics import cycles_per_ns
from . import loops as L
from ..runtime.control import SNAP_AT, SNAP_ME, SNAP_REQ
from ..runtime.topology import command_ring
from ..runtime.wiring import Wiring


def _padded(arrays: list) -> tuple:
    """MAX_SOURCES arrays: the sources' and copies of the first (never read:
    the loop takes from the first S_SOURCES), so the tuple's type, and the
    compiled loop, are the same for any number of sources."""
    return tuple(arrays + [arrays[0]] * (L.MAX_SOURCES - len(arrays)))


class UbsCore:
    def __init__(self, wiring: Wiring, u, stats, settled: int = 0, snapshots=None):
        """settled: every seq up to this is in u already (a recovered state).
        snapshots: a storage/snapshot.PartWriter to cut snapshots with (None: never)."""
        self.wiring, self.ubs, self.stats = wiring, u, stats
        cfg, rings = wiring.cfg, wiring.rings
        out_c = new_out(settles=1)            # events of commands (for its checks only)
        out_s = new_out(settles=1)            # events of settles (dropped)
        cmds = np.zeros(cfg.batch, R.CMD)
        sets = np.zeros(cfg.batch, R.SETTLE)
        to_me = np.zeros(cfg.batch + 2, R.CMD)   # room for the mark
        log = np.zeros(cfg.batch + 2, R.CMD)
        self.loop_state = np.zeros(L.S_WORDS, np.int64)
        self.loop_state[L.S_SETTLED] = self.loop_state[L.S_MARKED] = settled
        sources = [rings[command_ring(s)] for s in wiring.topology.sources]
        self.loop_state[L.S_SOURCES] = len(sources)
        r = {n: rings[n] for n in ("settles", "order", "log")}
        self.args = (u, out_c, out_s, to_me, np.zeros(1, np.int64), log, np.zeros(1, np.int64),
                     _padded([s.ctrl for s in sources]), _padded([s.slots for s in sources]), cmds,
                     sources[0].words_of(cmds),
                     r["settles"].ctrl, r["settles"].slots, sets, r["settles"].words_of(sets),
                     r["order"].ctrl, r["order"].slots, r["order"].words_of(to_me),
                     r["log"].ctrl, r["log"].slots, r["log"].words_of(log),
                     self.loop_state, cfg.forward_every)
        self.metrics = wiring.metrics
        self.args += (self.metrics.hist, self.metrics.row("ubscore"), self.metrics.calibrate())
        self.sources, self.in_settle = sources, r["settles"]
        self.outs = [r["order"], r["log"]]      # the loop's output numbers
        self.wakers = [wiring.waker(ring.name) for ring in self.outs]
        self.settle_only = [r["settles"]]
        self.wait_on = None         # the inputs that can end an idle wait (None: all)
        self.max_polls = cfg.loop_spins
        self.turns = 1 << 16         # loop turns per step (between heartbeats)
        self.per_ns = cycles_per_ns()
        self.order_closed = False
        self.snapshots, self.snap_at, self.snapped = snapshots, 0, settled
        self.done = False
        L.ubscore_loop(*self.args, 1, 0)            # compile now, not mid-run

    def step(self) -> bool:
        if self.snapshots is not None:
            self._snapshot()
        loop_state = self.loop_state
        work0 = loop_state[L.S_WORK]
        self.metrics.keep_calibrated()      # the loop's clock (runtime/metrics.py)
        status = L.ubscore_loop(*self.args, self.max_polls, self.turns)
        L.post_wakes(loop_state, self.wakers)
        stalled = loop_state[L.S_STALL_SINCE] != 0
        self.wait_on = self.settle_only if stalled else None
        self.stats["stalls"] = loop_state[L.S_STALLS]
        self.stats["stall_ns"] = int(loop_state[L.S_STALL_CYCLES] / self.per_ns)
        self.stats["stall_behind"] = loop_state[L.S_STALL_BEHIND]
        if status == L.IDLE and loop_state[L.S_FLUSHED]:
            self._maybe_end(stalled)
        return loop_state[L.S_WORK] != work0

    def _snapshot(self) -> None:
        """On request, stop sequencing at the current seq; once every settle of
        it is applied and the ME has cut its state there too, write ours (from
        a forked child) and go on."""
        c, loop_state = self.wiring.control, self.loop_state
        if not self.snap_at and c.get(SNAP_REQ):
            c.put(SNAP_REQ, 0)
            seq = int(self.ubs.counters[UBS_LAST_SEQ])
            if seq > self.snapped and not self.order_closed:
                self.snap_at = loop_state[L.S_STOP_AT] = seq
                c.put(SNAP_AT, seq)
        if self.snap_at and loop_state[L.S_SETTLED] >= self.snap_at and c.get(SNAP_ME) == self.snap_at:
            self.snapshots.start(self.snap_at, named_arrays("u", self.ubs))
            self.snapped, self.snap_at = self.snap_at, 0
            loop_state[L.S_STOP_AT] = 0

    def _maybe_end(self, stalled: bool) -> None:
        """No more commands from any source -> close the ME's input and the log; the ME closes
        the settle ring when it is done, and then so are we."""
        loop_state = self.loop_state
        if (not self.order_closed and not stalled and not self.snap_at and loop_state[L.S_IN_HEAD] == loop_state[L.S_IN_TAIL]
                and all(s.closed and s.available() == 0 for s in self.sources)):
            L.close_outputs(self.outs, self.wakers)
            self.order_closed = True
        elif (self.order_closed and loop_state[L.S_IN2_HEAD] == loop_state[L.S_IN2_TAIL]
                and self.in_settle.closed and self.in_settle.available() == 0):
            if self.loop_state[L.S_SETTLED] != self.ubs.counters[UBS_LAST_SEQ]:
                raise RuntimeError(f"settles missing at the end: settled up to seq {self.loop_state[L.S_SETTLED]}, "
                                   f"sequenced {self.ubs.counters[UBS_LAST_SEQ]}")
            if self.snapshots is not None:
                self.snapshots.wait()
            self.done = True
