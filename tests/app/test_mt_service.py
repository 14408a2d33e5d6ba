"""Service mode: several command sources, a clean stop on SIGTERM that drains
every ring, and restart through recovery with several sources.

With several sources the order UBSCore takes their commands in is timing's,
so the reference is not an ST run of the dataset but the WAL itself: the
files must equal a replay of the WAL, and the WAL must hold each source's
commands as a prefix of that source's part (nothing lost, nothing twice).
"""
from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from xinfinity.app.mt import deal, run_mt
from xinfinity.app.replay import replay
from xinfinity.config import Pipeline
from xinfinity.edge.dataset import load_dataset
from xinfinity.engine.wal import RECORD_BYTES
from xinfinity.runtime.control import DURABLE, INGEST_LIMIT, RUNNING
from xinfinity.storage.wal_dir import open_wal_dir

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMALL = ROOT / "fixtures" / "zxi-cancel-1294"
COMPARED = ("t2_ledger.csv", "t2_balances_final.csv", "t2_orderbook.csv",
            "events_order.bin", "events_trade.bin", "events_balance.bin")


def _wal_commands(wal: pathlib.Path) -> np.ndarray:
    j = open_wal_dir(wal)
    return np.concatenate([j.deposits, j.commands])


def _assert_prefixes(ds, wal_cmds: np.ndarray, sources: int, complete: bool) -> None:
    """Each source's commands in the WAL are a prefix of its part (all of it if complete)."""
    assert np.array_equal(wal_cmds["seq"], np.arange(1, len(wal_cmds) + 1)), "the WAL's seqs have a gap"
    for k, part in enumerate(deal(ds, sources)):
        mine = wal_cmds[wal_cmds["user_id"] % sources == k]
        assert len(mine) <= len(part)
        if complete:
            assert len(mine) == len(part), f"source {k}: {len(mine)} of {len(part)} commands in the WAL"
        for f in ("kind", "user_id", "order_id", "price", "qty", "amount"):
            assert np.array_equal(mine[f], part[f][:len(mine)]), f"source {k}: {f} differs"


def _assert_equals_replay(out: pathlib.Path, wal: pathlib.Path, tmp: pathlib.Path) -> None:
    replay(wal, tmp / "replay")
    for name in COMPARED:
        assert (out / name).read_bytes() == (tmp / "replay" / name).read_bytes(), f"{name} differs from the replay"


def _serve(tmp: pathlib.Path, dataset: pathlib.Path, sources: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "xinfinity.cli", "pipeline", "mt", "--input", str(dataset),
                             "--out", str(tmp / "out"), "--wal", str(tmp / "wal"), "--sources", str(sources),
                             "--until-stopped"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_wal(path: pathlib.Path, at_least_records: int, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the service ended by itself:\n{proc.stdout.read()}"
        if path.exists() and path.stat().st_size >= at_least_records * RECORD_BYTES:
            return
        time.sleep(0.05)
    raise AssertionError(f"the WAL did not reach {at_least_records} records in {timeout_s} s")


def _serve_until_sigterm(tmp: pathlib.Path, dataset: pathlib.Path, sources: int, complete: bool) -> None:
    """Serve the dataset from `sources` sources; SIGTERM once the WAL holds
    all of it (complete) or its first record; the service must stop cleanly,
    its WAL hold a prefix of each source and its files equal the WAL's replay."""
    ds = load_dataset(dataset)
    wait_for = len(ds.deposits) + len(ds.commands) if complete else 1
    proc = _serve(tmp, dataset, sources)
    try:
        _wait_for_wal(tmp / "wal" / "wal.log", wait_for, proc, 900)
        if complete:
            time.sleep(0.5)
            assert proc.poll() is None, "the sources ran out and the service stopped without being asked"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    _assert_prefixes(ds, _wal_commands(tmp / "wal"), sources, complete=complete)
    _assert_equals_replay(tmp / "out", tmp / "wal", tmp)


@pytest.mark.slow
def test_a_service_with_two_sources_waits_for_sigterm_then_drains_and_stops(tmp_path):
    _serve_until_sigterm(tmp_path, SMALL, 2, complete=True)


@pytest.mark.slow
def test_sigterm_mid_stream_loses_nothing_that_was_sequenced(tmp_path):
    _serve_until_sigterm(tmp_path, ROOT / "fixtures" / "zxi-100k", 3, complete=False)


@pytest.mark.slow
def test_a_crash_with_two_sources_restarts_each_where_the_wal_left_it(tmp_path):
    ds = load_dataset(SMALL)
    held = 200          # each source stops there until the kill, so the kill lands mid-stream
    killed = []

    def hold_sources(wiring):
        wiring.control.put(INGEST_LIMIT, 0 if killed else held)

    def kill_once(sup):
        c = sup.wiring.control
        if killed or any(c.proc(n)["state"] != RUNNING for n in sup.topology.names):
            return
        if c.get(DURABLE) >= held:
            os.kill(sup.procs["ubscore"].pid, signal.SIGKILL)
            killed.append(c.get(DURABLE))

    perf = run_mt(None, tmp_path / "out", pipeline=Pipeline(), ds=ds, wal_dir=tmp_path / "wal",
                  watch=kill_once, on_ready=hold_sources, restarts=1, sources=2)
    assert killed and perf["restarts"] == 1
    _assert_prefixes(ds, _wal_commands(tmp_path / "wal"), 2, complete=True)
    _assert_equals_replay(tmp_path / "out", tmp_path / "wal", tmp_path)
