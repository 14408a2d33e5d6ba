"""The metrics segment (runtime/metrics.py): its histogram's percentiles are numpy's within a
bucket, every process records into rows of its own, and a dashboard reads them all."""
from __future__ import annotations

import multiprocessing as mp
import os
import time

import numpy as np
import pytest
from numba import njit

from xinfinity.engine import records as R
from xinfinity.ipc import shm
from xinfinity.runtime.metrics import (H_BUCKETS, H_COUNT, H_MAX, HIST, NAME, SUB, Metrics, bucket_bounds,
                                       record_cmds, record_since, record_value, summary)
from xinfinity.runtime.metrics_layout import gauges_of, rows_of
from xinfinity.runtime.topology import MAX_SOURCES, pipeline, serving
from xinfinity.tools import dashboard


def _one_row() -> np.ndarray:
    return np.zeros((1, HIST.itemsize // 8), np.int64)


def test_every_value_falls_in_a_bucket_at_most_a_sixteenth_of_it_wide():
    h = _one_row()
    for v in [0, 1, 15, 16, 31, 32, 33, 47, 48, 1000, 123_456_789, 2**40 + 5, 2**62, 2**63 - 1]:
        h[:] = 0
        record_value(h, 0, v)
        b = int(np.flatnonzero(h[0, H_BUCKETS:])[0])
        lo, width = bucket_bounds(b)
        assert lo <= v < lo + width and (v < 2 * SUB or width * SUB <= lo), (v, b, lo, width)
    h[:] = 0
    record_value(h, 0, -5)          # a clock step backwards counts as 0, never a bad index
    assert h[0, H_BUCKETS] == 1 and h[0, H_MAX] == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_percentiles_equal_numpys_within_the_bucket_error(seed):
    rng = np.random.default_rng(seed)
    print("seed", seed)
    x = np.concatenate([rng.lognormal(10, 2, 50_000), rng.integers(0, 64, 5_000)]).astype(np.int64)
    h = _one_row()
    now = 10**15
    record_since(h, 0, now - x, now)
    s = summary(h[0])
    assert s["count"] == len(x) and s["max_ns"] == x.max() and s["mean_ns"] == int(x.sum()) // len(x)
    for q, key in ((0.5, "p50_ns"), (0.99, "p99_ns"), (0.999, "p999_ns")):
        ref = int(np.percentile(x, q * 100, method="inverted_cdf"))
        assert abs(s[key] - ref) <= max(1, ref / 32 + 1), (key, s[key], ref)


def test_entry_times_of_zero_are_not_recorded():
    h = _one_row()
    record_since(h, 0, np.array([0, 0, 5], np.int64), 10)
    assert h[0, H_COUNT] == 1 and h[0, H_MAX] == 5


def test_the_loops_clock_reads_the_wall_clock_from_the_cycle_counter():
    m = Metrics.create(shm.part_name(shm.instance_name(), "metrics-clock"), pipeline(), enabled=True)
    try:
        cmds = np.zeros(3, R.CMD)
        _record_cmds(m.hist, m.row("ubscore"), m.calibrate(), cmds[:0])       # compiled before the clock runs
        clock = m.calibrate()
        time.sleep(0.02)
        cmds["ts"] = time.time_ns() - np.array([1_000_000, 2_000_000, 0])    # 1 ms, 2 ms, and now
        cmds["ts"][2] = 0                                                   # no entry time
        _record_cmds(m.hist, m.row("ubscore"), clock, cmds)
        s = summary(m.hist[m.row("ubscore")])
        assert s["count"] == 2 and 1_000_000 <= s["max_ns"] < 2_000_000 + 5_000_000, s
    finally:
        m.close()


@njit
def _record_cmds(hist, row, clock, cmds):
    record_cmds(hist, row, clock, cmds, 0, len(cmds))


def _writer(name: str, stage: str, writer: str, n: int) -> None:
    m = Metrics.attach(name)
    row = m.row(stage, writer)
    ts = np.full(n, 1_000, np.int64)
    for _ in range(10):
        m.since(row, ts, 1_000 + 500)           # n records of 500 ns
    if stage == "settle":
        m.add("trades", 5)          # a gauge has one writer too
    m.close()
    os._exit(0)


def test_processes_record_into_their_own_rows_and_a_reader_adds_them_up():
    top = serving(2)
    m = Metrics.create(shm.part_name(shm.instance_name(), "metrics-procs"), top, enabled=True)
    name = m.name
    try:
        ctx = mp.get_context("fork")
        jobs = [("gateway.ack", "gateway0", 100), ("gateway.ack", "gateway1", 200), ("ubscore", "", 300),
                ("match", "", 400), ("wal", "", 500), ("settle", "", 600), ("store", "", 700)]
        procs = [ctx.Process(target=_writer, args=(m.name, *j)) for j in jobs]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
            assert p.exitcode == 0
        reader = Metrics.attach(m.name)
        try:
            stages = reader.stages()
            assert int(stages["gateway.ack"][H_COUNT]) == 3000
            for stage, _, n in jobs[2:]:
                s = summary(stages[stage])
                assert s["count"] == 10 * n and abs(s["p50_ns"] - 500) <= 16, (stage, s)
            assert reader.gauge("trades") == 5
            frame = dashboard.snapshot(reader)
            assert frame["stages"]["ubscore"]["count"] == 3000
        finally:
            reader.close()
    finally:
        m.close()
    assert not (shm.SHM_DIR / name).exists()        # unlinked by its creator


def test_switched_off_nothing_is_recorded():
    m = Metrics.private(pipeline(), enabled=False)
    m.since(m.row("settle"), np.array([1, 2], np.int64), 10)
    m.value(m.row("wal.fsync"), 7)
    clock = m.calibrate()
    _record_cmds(m.hist, m.row("ubscore"), clock, np.ones(4, R.CMD))
    assert not m.hist.any()


def test_each_gateway_worker_has_rows_and_websocket_gauges_of_its_own():
    rows, gauges = rows_of(serving(2)), gauges_of(serving(2))
    for w in ("gateway0", "gateway1"):
        assert {f"{stage}@{w}" for stage in ("gateway.request", "gateway.precheck", "gateway.ring", "gateway.ack",
                                             "push")} <= set(rows)
        assert {f"{g}@{w}" for g in ("ws.connections", "ws.subscriptions", "ws.drops", "ws.sent")} <= set(gauges)
    assert len(set(rows)) == len(rows) and len(set(gauges)) == len(gauges)
    most = serving(MAX_SOURCES)
    assert all(len(n.encode()) <= NAME.itemsize for n in rows_of(most) + gauges_of(most))    # each fits its slot
    dataset = rows_of(pipeline()) + gauges_of(pipeline())                    # no gateway: none of them
    assert not any(n.startswith(("gateway.", "push", "ws.")) for n in dataset)
