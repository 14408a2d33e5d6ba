"""Crash and recovery with real processes: SIGKILL any process mid-run, the
supervisor restarts the pipeline through recovery, and the files equal a
clean ST run's, with nothing lost and nothing written twice (tools/drill.py)."""
import os
import pathlib
import signal

import numpy as np
import pytest

from xinfinity.config import Pipeline
from xinfinity.runtime.control import INGEST_LIMIT, RUNNING
from xinfinity.runtime.topology import DATASET
from xinfinity.runtime.supervisor import PipelineError
from xinfinity.tools import drill as D
from xinfinity.edge import outputs as O
from xinfinity.app.mt import run_mt

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMALL = ROOT / "fixtures" / "zxi-cancel-1294"


def _assert_clean(r, kills):
    bad = [v for v in r["verdicts"] if not v[1]]
    assert bad == [] and len(r["verdicts"]) == 8
    assert (r["passed"], r["lost"], r["duplicated"]) == (kills, 0, 0)
    assert 0 < r["recovery_p50_ms"] <= r["recovery_p99_ms"]


@pytest.mark.slow
@pytest.mark.parametrize("target", ["ubscore", "me", "settlement", "ingestion"])
def test_killing_each_process_loses_nothing_and_duplicates_nothing(tmp_path, target):
    r = D.drill(SMALL, tmp_path / "out", kills=3, seed=11, target=target)
    _assert_clean(r, 3)


@pytest.mark.slow
def test_drill_with_random_targets_on_the_golden_100k_set(tmp_path):
    r = D.drill(ROOT / "fixtures" / "zxi-100k", tmp_path / "out", kills=5, seed=3, target="any")
    _assert_clean(r, 5)
    assert (tmp_path / "out" / "t2_ledger.csv").exists()       # the recovered run's files are left


@pytest.mark.slow
def test_the_drill_catches_outputs_written_twice(tmp_path, monkeypatch):
    """A recovery that does not cut the files back and skips nothing (planted
    here) rewrites what was there: the drill must report it and fail."""
    monkeypatch.setattr(O, "cut_events", lambda path, dtype, through=None: -1)
    r = D.drill(SMALL, tmp_path / "out", kills=2, seed=5, target="settlement")
    assert r["duplicated"] > 0 and r["passed"] < 2
    assert any(not ok for _, ok, _ in r["verdicts"])


def test_kill_plan_is_seeded_spread_and_never_reaches_the_end():
    a = D.plan(1494, 20, seed=7, target="any", batch=8192)
    b = D.plan(1494, 20, seed=7, target="any", batch=8192)
    assert all(np.array_equal(x, y) for x, y in zip(a[:2], b[:2])) and a[2] == b[2]
    points, lookahead, targets = a
    assert np.all(np.diff(points) > 0) and points[0] >= 1 and points[-1] <= 1492
    assert np.all(lookahead < (1494 - 2) // 20) and set(targets) <= set(DATASET.names)
    with pytest.raises(ValueError, match="do not fit"):
        D.plan(10, 9, seed=0, target="any", batch=8192)


@pytest.mark.slow
def test_restarts_are_bounded_and_then_the_failure_is_raised(tmp_path):
    """A process that dies every time it runs is restarted `restarts` times,
    then the pipeline fails naming it."""
    def hold_ingestion(w):          # so that the run cannot end before the kill
        w.control.put(INGEST_LIMIT, 100)

    def kill_ubscore(sup):
        c = sup.wiring.control
        if all(c.proc(n)["state"] == RUNNING for n in DATASET.names) and sup.procs["ubscore"].is_alive():
            os.kill(sup.procs["ubscore"].pid, signal.SIGKILL)

    recovered = []
    with pytest.raises(PipelineError, match=r"^ubscore \(pid \d+\) was killed by signal SIGKILL"):
        run_mt(SMALL, tmp_path / "out", pipeline=Pipeline(), wal_dir=tmp_path / "wal",
               watch=kill_ubscore, on_ready=hold_ingestion, on_recovered=recovered.append, restarts=2)
    assert len(recovered) == 2
