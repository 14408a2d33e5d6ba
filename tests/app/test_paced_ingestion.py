"""Paced ingestion (`xinf bench latency`'s open-loop load): command i is due i/rate after the go, goes
out no earlier, and carries its due time as its entry time, so lateness shows in every later stage."""
from __future__ import annotations

import time

import numpy as np

from xinfinity.config import Pipeline
from xinfinity.engine import records as R
from xinfinity.ipc.ring import ring_consume
from xinfinity.runtime.topology import command_ring, pipeline
from xinfinity.runtime.wiring import Wiring
from xinfinity.services.ingestion import Ingestion


def test_each_command_goes_out_no_earlier_than_due_stamped_with_its_due_time():
    w = Wiring.create(Pipeline(ring_capacity=1024, batch=64), topology=pipeline())
    try:
        cmds = np.zeros(40, R.CMD)
        cmds["seq"] = np.arange(1, 41)                  # to tell them apart
        rate = 2_000                                    # one every 500 us: 20 ms in all
        src = Ingestion(w, cmds, rate=rate)
        ring = w.rings[command_ring("ingestion")]
        got = np.zeros(64, R.CMD)
        words = ring.words_of(got)
        seen, taken_at = [], []
        before = time.time_ns()
        while not src.done:
            src.step()
            n = ring_consume(ring.ctrl, ring.slots, words, len(got))
            now = time.time_ns()
            seen.append(got[:n].copy())
            taken_at += [now] * n
        seen = np.concatenate(seen)
        assert list(seen["seq"]) == list(range(1, 41))
        ts = seen["ts"].astype(np.int64)
        assert before <= ts[0]
        assert (np.diff(ts) == 1_000_000_000 // rate).all()     # exactly i/rate after the first
        assert (np.array(taken_at) >= ts).all()                 # none went out before it was due
    finally:
        w.close()


def test_unpaced_without_metrics_every_command_goes_out_at_once_unstamped():
    w = Wiring.create(Pipeline(ring_capacity=1024, batch=64, metrics=False), topology=pipeline())
    try:
        src = Ingestion(w, np.zeros(100, R.CMD))
        while not src.done:
            src.step()
        ring = w.rings[command_ring("ingestion")]
        got = np.zeros(128, R.CMD)
        assert ring_consume(ring.ctrl, ring.slots, ring.words_of(got), len(got)) == 100
        assert (got["ts"] == 0).all()
    finally:
        w.close()
