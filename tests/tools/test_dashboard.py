"""`xinf dashboard` (tools/dashboard.py): frames built from a private metrics segment show, per stage,
the percentiles of the samples recorded between two frames (numpy's, within a bucket) beside those since
start; throughput from the gauges' differences; each process's health and pinning. Then on a dataset
run (`xinf pipeline mt --out DIR`): the run leaves OUT/metrics.json while it goes on, and a frame read
through it shows its stages."""
from __future__ import annotations

import argparse
import json
import pathlib
import re
import time

import numpy as np
import psutil
import pytest

from xinfinity.app.mt import METRICS_HANDLE, run_mt
from xinfinity.config import Pipeline
from xinfinity.ipc import shm
from xinfinity.runtime.control import DONE, INGEST_LIMIT, ME_DONE, RUNNING
from xinfinity.runtime.metrics import Metrics
from xinfinity.runtime.topology import serving
from xinfinity.tools import dashboard

ROOT = pathlib.Path(__file__).resolve().parents[2]
T0 = 10**18                     # entry times: values are recorded as T0 - ts
QS = {"p50_ns": 0.5, "p99_ns": 0.99, "p999_ns": 0.999}


def _record(m: Metrics, row: str, values: np.ndarray) -> None:
    m.since(m.rows[row], T0 - values.astype(np.int64), T0)


def _near(got: int, want: float) -> bool:
    return abs(got - want) <= want / 32 + 1


def _frame(m, prev=None, t=0.0, probe=lambda pid: None, cores=(0, 1)):
    return dashboard.snapshot(m, prev, t=t, probe=probe, cores=list(cores))


def _counts(frame: str) -> dict[str, int]:
    """Each stage line's name and its count since start (what tests/integration/test_serve_metrics.py parses)."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+(\d+)\s", frame, re.M)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_last_interval_shows_numpys_percentiles_of_what_was_recorded_between_two_frames(seed):
    rng = np.random.default_rng(seed)
    m = Metrics.private(serving(2), enabled=True)
    before = rng.lognormal(10, 1.0, 5000).astype(np.int64) + 1
    _record(m, "gateway.ack@gateway0", before[:3000])
    _record(m, "gateway.ack@gateway1", before[3000:])
    f1 = _frame(m, t=5.0)
    after = rng.lognormal(12, 0.5, 4000).astype(np.int64) + 1          # slower: the since-start max moves
    after[17] = before.max() + 12_345
    _record(m, "gateway.ack@gateway1", after[:1000])
    _record(m, "gateway.ack@gateway0", after[1000:])
    f2 = _frame(m, f1, t=5.5)
    ack = f2["stages"]["gateway.ack"]
    last = ack["last"]
    assert last["count"] == 4000 and ack["count"] == 9000
    assert last["rate"] == pytest.approx(8000)                          # 4000 samples in 0.5 s
    for key, q in QS.items():
        assert _near(last[key], np.percentile(after, 100 * q, method="inverted_cdf")), (key, last)
        assert _near(ack[key], np.percentile(np.concatenate([before, after]), 100 * q, method="inverted_cdf"))
    assert last["max_ns"] == after.max() and last["max_exact"]          # the max grew: the interval's, exactly
    assert "last" not in f1["stages"]["gateway.ack"]                    # a first frame has no interval
    assert f2["stages"]["ubscore"]["last"]["count"] == 0

    # An interval whose samples stay below the max since start: its max is bounded by their top bucket.
    small = rng.integers(1000, 5000, 2000)
    _record(m, "gateway.ack@gateway0", small)
    f3 = _frame(m, f2, t=6.0)
    last = f3["stages"]["gateway.ack"]["last"]
    assert last["count"] == 2000 and not last["max_exact"]
    assert small.max() <= last["max_ns"] <= small.max() * (1 + 1 / 16)
    for key, q in QS.items():
        assert _near(last[key], np.percentile(small, 100 * q, method="inverted_cdf")), (key, last)
    out = dashboard.text(f3, "head:")
    assert re.search(r"^gateway\.ack\s+11000\s+2000(\s+\S+ [nu]s){3}\s+\S+ [nu]s\*\s", out, re.M), out
    assert "* max over the interval bounded by its top bucket" in out
    _record(m, "gateway.ack@gateway0", np.array([0, 3, 7]))             # small values: a bucket each, exact
    last = _frame(m, f3, t=6.5)["stages"]["gateway.ack"]["last"]
    assert (last["count"], last["max_ns"], last["max_exact"]) == (3, 7, True)


def test_throughput_is_the_difference_of_the_gauges_over_the_interval():
    m = Metrics.private(serving(2), enabled=True)
    m.set("commands", 1000)
    m.set("trades", 10)
    f1 = _frame(m, t=100.0)
    assert f1["rates"] == {} and "throughput" not in dashboard.text(f1, "head:")
    m.set("commands", 3000)
    m.set("trades", 60)
    f2 = _frame(m, f1, t=100.5)
    assert f2["rates"] == {"commands": pytest.approx(4000), "trades": pytest.approx(100)}
    out = dashboard.text(f2, "head:")
    assert "throughput over the last 0.50 s: commands/s=4000.0 trades/s=100.0" in out, out
    assert "counters: commands=3000 trades=60 " in out
    m.set("commands", 3000)
    f3 = _frame(m, f2, t=101.5)
    history = dashboard.remember(dashboard.remember({}, f2), f3)
    assert list(history["commands/s"]) == [pytest.approx(4000), 0] and list(history["trades/s"]) == [100, 0]
    assert dashboard.spark(history["commands/s"]) == "█▁"


def test_a_sparkline_scales_the_last_values_to_their_maximum():
    assert dashboard.spark(range(8)) == "▁▂▃▄▅▆▇█"
    assert dashboard.spark([0, 0, 0]) == "▁▁▁" and dashboard.spark([]) == ""
    assert dashboard.spark(range(100), width=60) == dashboard.spark(range(40, 100))
    assert len(dashboard.spark(range(100))) == dashboard.HISTORY


def test_process_health_follows_the_heartbeat_and_pinning_the_affinity():
    m = Metrics.private(serving(2), enabled=True)
    procs = {"ubscore": (101, RUNNING), "matching": (102, RUNNING), "journal": (103, RUNNING),
             "settlement": (104, DONE), "audit": (105, RUNNING), "gateway0": (106, RUNNING), "gateway1": (0, 0)}
    for p, (pid, state) in procs.items():
        m.set(f"proc.{p}.pid", pid)
        m.set(f"proc.{p}.state", state)
        m.set(f"proc.{p}.heartbeat", 5)
    seen = {101: (0, [0]), 102: (1, [1, 3]), 104: (2, [0, 1, 2, 3]), 105: (3, [0, 1, 2, 3]), 106: (2, None)}
    probe = seen.get                                            # 103 is gone: a dead pid
    f1 = _frame(m, t=1.0, probe=probe, cores=range(4))
    assert {p: v["health"] for p, v in f1["processes"].items()}["ubscore"] == "-"     # nothing to compare with
    m.set("proc.matching.heartbeat", 9)
    m.set("proc.audit.heartbeat", 6)
    m.set("proc.gateway0.heartbeat", 6)
    f2 = _frame(m, f1, t=1.5, probe=probe, cores=range(4))
    got = {p: (v["health"], v["pinning"], v["core"]) for p, v in f2["processes"].items()}
    assert got == {"ubscore": ("stalled", "pinned 0", 0),           # running, its heartbeat stood still
                   "matching": ("ok", "cores 1,3", 1),
                   "journal": ("ended", "?", -1),                   # its pid is gone
                   "settlement": ("ended", "any", 2),               # done
                   "audit": ("ok", "any", 3),
                   "gateway0": ("ok", "?", 2),                      # affinity unknown (not ours to read)
                   "gateway1": ("-", "?", -1)}                      # not started: no pid yet
    out = dashboard.text(f2, "head:")
    assert "\n  ubscore pid 101 core 0 running hb 5 stalled pinned 0\n" in out, out
    assert "\n  matching pid 102 core 1 running hb 9 ok cores 1,3\n" in out
    assert "\n  journal pid 103 core -1 running hb 5 ended ?\n" in out
    assert "\n  settlement pid 104 core 2 done hb 5 ended any\n" in out
    assert re.search(r"ubscore pid \d+ core -?\d+ running", out)     # what test_serve_metrics.py looks for
    assert dashboard.pinning([2], [0, 1]) == "pinned 2" and dashboard.pinning([0, 1], [0, 1]) == "any"


def test_the_text_frame_keeps_the_count_since_start_second_and_labels_its_columns():
    m = Metrics.private(serving(2), enabled=True)
    _record(m, "ubscore", np.full(7, 1000))
    f1 = _frame(m, t=0.0)
    out1 = dashboard.text(f1, "head:")
    assert re.search(r"^ubscore\s+7\s+-\s+-\s+-\s+-\s+-\s+1000 ns\s+1000 ns", out1, re.M), out1
    _record(m, "ubscore", np.full(3, 2000))
    m.set("proc.ubscore.heartbeat", 1)
    out = dashboard.text(_frame(m, f1, t=0.25), "head:")
    lines = out.splitlines()
    assert lines[0] == f"head: up {lines[0].split()[2]} s, metrics on, last interval 0.25 s"
    assert "- last 0.25 s -" in lines[1] and "- since start -" in lines[1]
    assert lines[2].split() == ["stage", "count", "n", "p50", "p99", "p99.9", "max", "p50", "p99", "p99.9", "max",
                                "measures"]
    # p50 since start: the 5th of 10, 1000, read as its bucket's middle (1007)
    assert re.search(r"^ubscore\s+10\s+3\s+2000 ns\s+2000 ns\s+2000 ns\s+2000 ns\s+1007 ns\s+2000 ns", out, re.M), out
    counts = _counts(out)
    assert counts["ubscore"] == 10 and counts["match"] == 0 and counts["gateway.ack"] == 0
    assert set(counts) == {"gateway.request", "gateway.precheck", "gateway.ring", "gateway.ack", "ubscore", "match",
                           "wal", "wal.fsync", "settle", "store", "store.write", "push"}   # nothing else parses as one


def test_once_prints_a_frame_whose_last_interval_spans_the_two_snapshots(tmp_path, capsys, monkeypatch):
    m = Metrics.create(shm.part_name(shm.instance_name(), "metrics-dash"), serving(2), enabled=True)
    try:
        (tmp_path / "serve.json").write_text(json.dumps({"pid": psutil.Process().pid, "metrics": m.name,
                                                         "started": psutil.Process().create_time()}))
        m.set("commands", 100)
        _record(m, "match", np.full(5, 300))
        sleep = time.sleep

        def meanwhile(s):                               # between the two snapshots: 50 commands, 4 samples
            m.set("commands", 150)
            _record(m, "match", np.full(4, 40_000))
            sleep(s)
        monkeypatch.setattr(time, "sleep", meanwhile)
        assert dashboard.main(argparse.Namespace(data_dir=str(tmp_path), once=True, interval=0.4)) == 0
    finally:
        m.close()
    out = capsys.readouterr().out
    assert re.search(r"^xinf serve on .* metrics on, last interval 0\.4\d s$", out, re.M), out
    # last: the 4 samples of 40 us (a bucket's middle; the max exact), since start: p50 is one of the 5 of 300 ns
    assert re.search(r"^match\s+9\s+4(\s+39\.9 us){3}\s+40\.0 us\s+295 ns\s+39\.9 us\s", out, re.M), out
    rate = float(re.search(r"commands/s=([\d.]+)", out).group(1))
    assert 50 < rate <= 125, out                                    # 50 commands in just over 0.4 s


CUT = 50_000        # a dataset run is held here while a frame is taken


def _held_at_cut(frame, through) -> dict:
    """run_mt's on_ready and watch: ingestion stops at seq CUT; once through(sup) says the stages the
    test reads have it all, frame() runs and ingestion goes on (after 60 s without: it goes on anyway,
    and the test finds no frame). However fast or slow the machine, the frame sees a run in progress
    with CUT commands through it."""
    state = {"t0": 0.0, "done": False}

    def on_ready(w):
        w.control.put(INGEST_LIMIT, CUT)
        state["t0"] = time.monotonic()

    def watch(sup):
        c = sup.wiring.control
        if state["done"]:
            return
        if through(sup):
            frame()
        elif time.monotonic() - state["t0"] < 60:
            return
        state["done"] = True
        c.put(INGEST_LIMIT, 0)
    return {"on_ready": on_ready, "watch": watch}


@pytest.mark.slow
def test_a_dataset_run_is_found_through_its_out_dir_and_shows_its_stages(tmp_path, capsys):
    out = tmp_path / "out"
    frames = []

    def frame():
        assert dashboard.main(argparse.Namespace(data_dir=str(out), once=True, interval=0.1)) == 0
        frames.append(capsys.readouterr().out)

    def settled(sup):                   # settlement counts what it replayed (runtime/metrics.py)
        return sup.metrics.gauge("commands") >= CUT

    run_mt(ROOT / "fixtures" / "zxi-100k", out, pipeline=Pipeline(wait="block"), **_held_at_cut(frame, settled))
    assert frames, "the run ended before a frame was taken"
    counts = _counts(frames[0])
    assert all(counts.get(s, 0) > 0 for s in ("ubscore", "match", "settle")), frames[0]
    assert "wal" not in counts            # no WAL, no journal: no such stage
    assert not (out / METRICS_HANDLE).exists()
    assert dashboard.main(argparse.Namespace(data_dir=str(out), once=True, interval=0.1)) == 1
    assert "no running instance" in capsys.readouterr().err


@pytest.mark.slow
def test_metrics_switched_off_leave_every_count_at_zero(tmp_path, capsys):
    out = tmp_path / "out"
    frames = []

    def frame():
        dashboard.main(argparse.Namespace(data_dir=str(out), once=True, interval=0.1))
        frames.append("".join(capsys.readouterr()))

    def worked(sup):                    # metrics off: nothing counted; the ME's mark and settlement's steps
        c = sup.wiring.control
        return c.get(ME_DONE) >= CUT and c.proc("settlement")["steps"] > 0

    run_mt(ROOT / "fixtures" / "zxi-100k", out, pipeline=Pipeline(wait="block", metrics=False),
           **_held_at_cut(frame, worked))
    assert frames and "metrics off" in frames[0]
    assert all(int(m.group(1)) == 0 for m in re.finditer(r"^\S+\s+(\d+)\s", frames[0], re.M)), frames[0]


def test_ring_fill_is_records_waiting_of_the_capacity_the_supervisor_wrote():
    m = Metrics.private(serving(1), enabled=True)
    m.set("ring.order", 16_384)
    m.set("capacity.order", 65_536)
    rings = _frame(m)["rings"]
    assert rings["order"] == "16,384/65,536 (25.0%)"
    assert rings["log"] == "0"          # no capacity written: the count alone
