"""Snapshots through the MT pipeline: UBSCore stops at a seq, the ME cuts its
state there too, each writes its part, the supervisor seals them; a recovery
from that snapshot equals one from the whole WAL."""
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

from xinfinity.config import Pipeline
from xinfinity.runtime.control import INGEST_LIMIT, DURABLE, SNAP_REQ
from xinfinity.app.mt import run_mt
from xinfinity.tools.parity import compare_dirs
from xinfinity.storage.recovery import recover
from xinfinity.app.st import run_st

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "fixtures" / "zxi-100k"
CUT = 50_000


def _run_with_snapshot_at_cut(tmp_path, ask):
    """Hold ingestion at CUT; once the WAL holds it, ask(sup) for a snapshot;
    release ingestion once a snapshot is sealed."""
    snaps = tmp_path / "wal" / "snapshots"
    state = {"asked": 0.0}

    def on_ready(w):
        w.control.put(INGEST_LIMIT, CUT)

    def watch(sup):
        c = sup.wiring.control
        if not state["asked"] and c.get(DURABLE) >= CUT:
            ask(sup)
            state["asked"] = time.monotonic()
        if state["asked"] and (list(snaps.glob("snap-*")) or time.monotonic() - state["asked"] > 30):
            c.put(INGEST_LIMIT, 0)          # (after 30 s without one: let the run end, the test fail)

    run_mt(DATA, tmp_path / "mt", pipeline=Pipeline(), wal_dir=tmp_path / "wal", watch=watch, on_ready=on_ready)
    return sorted(p.name for p in snaps.iterdir())


def _check_recoveries_agree(tmp_path):
    from_snapshot, _, f1 = recover(tmp_path / "wal")
    from_wal, _, f0 = recover(tmp_path / "wal", at_most=0)
    assert f1["snapshot_seq"] == CUT and f1["replayed"] == f0["replayed"] - CUT
    assert np.array_equal(from_snapshot.balances(), from_wal.balances())
    assert np.array_equal(from_snapshot.open_orders(), from_wal.open_orders())
    assert from_snapshot.counters() == from_wal.counters()


@pytest.mark.slow
def test_a_snapshot_cuts_ubscore_and_the_me_at_the_same_seq(tmp_path):
    names = _run_with_snapshot_at_cut(tmp_path, lambda sup: sup.wiring.control.put(SNAP_REQ, 1))
    assert names == [f"snap-{CUT:020d}"]
    _check_recoveries_agree(tmp_path)
    run_st(DATA, tmp_path / "st")
    assert all(ok for _, ok, _ in compare_dirs(tmp_path / "st", tmp_path / "mt"))    # the pause changed nothing


@pytest.mark.slow
def test_xinf_snapshot_asks_the_running_pipeline_and_waits_for_it(tmp_path):
    out = {}

    def ask(sup):
        out["r"] = subprocess.run([sys.executable, "-m", "xinfinity.cli", "snapshot", "--wal", str(tmp_path / "wal")],
                                  capture_output=True, text=True, timeout=120)

    # The command waits for the seal, which the supervisor does in this very
    # loop: run it in the background and let the loop go on.
    import threading

    def ask_in_background(sup):
        t = threading.Thread(target=ask, args=(sup,))
        t.start()
        out["t"] = t

    names = _run_with_snapshot_at_cut(tmp_path, ask_in_background)
    out["t"].join()
    assert out["r"].returncode == 0, out["r"].stderr
    assert f"seq={CUT}" in out["r"].stdout and names == [f"snap-{CUT:020d}"]
    _check_recoveries_agree(tmp_path)
    assert not (tmp_path / "wal" / "supervisor.pid").exists()


def test_xinf_snapshot_without_a_running_pipeline_says_so(tmp_path):
    r = subprocess.run([sys.executable, "-m", "xinfinity.cli", "snapshot", "--wal", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no MT pipeline is running on this WAL" in r.stderr


def test_xinf_snapshot_does_not_signal_a_process_that_is_not_ours(tmp_path):
    """A supervisor.pid left by a crashed supervisor may name a pid reused by
    another program: it is refused, and that program is not touched."""
    other = subprocess.Popen(["sleep", "30"])
    try:
        import psutil
        (tmp_path / "supervisor.pid").write_text(f"{other.pid} 12345.000\n")      # started at another time
        assert psutil.Process(other.pid).create_time() != 12345.0
        r = subprocess.run([sys.executable, "-m", "xinfinity.cli", "snapshot", "--wal", str(tmp_path)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and f"(pid {other.pid}) is not running" in r.stderr
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
