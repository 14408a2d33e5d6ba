"""MT = ST: the multi-process pipeline writes exactly the ST pipeline's files.

Real processes under the supervisor, on both golden datasets, on generated
low-balance sets with cancels and rejections (where UBSCore must stall), with
every wait strategy, and with rings so small that every process spends most
of its time waiting for space (the UBSCore <-> ME cycle must not deadlock).
"""
import pathlib

import pytest

from xinfinity.config import Pipeline
from xinfinity.tools.gen_fixture import GenParams, generate
from xinfinity.app.mt import run_mt
from xinfinity.tools.parity import compare_dirs
from xinfinity.app.st import run_st

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIX = ROOT / "fixtures"


def assert_parity(input_dir, tmp_path, dust="release", pipeline=Pipeline()) -> dict:
    run_st(input_dir, tmp_path / "st", dust)
    perf = run_mt(input_dir, tmp_path / "mt", dust, pipeline)
    verdicts = compare_dirs(tmp_path / "st", tmp_path / "mt")
    assert len(verdicts) == 8, verdicts
    bad = [f"{name}: {detail}" for name, ok, detail in verdicts if not ok]
    assert not bad, "\n".join(bad)
    return perf


@pytest.fixture(scope="module")
def low_balance(tmp_path_factory):
    """Low balances, 30% cancels, IOC, market orders, moves, reduces, fees, two symbols."""
    out = tmp_path_factory.mktemp("low")
    generate(GenParams(orders=40_000, cancel_ratio=0.3, seed=11, balance="low", ioc_ratio=0.1,
                       market_ratio=0.05, move_ratio=0.03, reduce_ratio=0.03, symbols=2, fees=True), out)
    return out


@pytest.mark.parametrize("dust", ["release", "keep"])
@pytest.mark.parametrize("name", ["zxi-cancel-1294", "zxi-100k"])
def test_golden_datasets(name, dust, tmp_path):
    assert_parity(FIX / name, tmp_path, dust)


@pytest.mark.parametrize("dust", ["release", "keep"])
def test_low_balance_set_with_stalls(low_balance, dust, tmp_path):
    perf = assert_parity(low_balance, tmp_path, dust)
    assert perf["ubscore.stalls"] > 0, "the set must exercise the wait for earlier seqs"


@pytest.mark.parametrize("wait", ["spin", "yield", "block", "auto"])
def test_every_wait_strategy(wait, tmp_path):
    perf = assert_parity(FIX / "zxi-cancel-1294", tmp_path, pipeline=Pipeline(wait=wait))
    assert perf["wait"] == (wait if wait != "auto" else perf["wait"])


@pytest.mark.slow
def test_tiny_rings_do_not_deadlock(low_balance, tmp_path):
    """Rings of 8 records and batches of 4: every ring is full most of the time."""
    assert_parity(low_balance, tmp_path, pipeline=Pipeline(ring_capacity=8, batch=4, forward_every=3))


def test_perf_file_has_per_process_figures(tmp_path):
    perf = assert_parity(FIX / "zxi-cancel-1294", tmp_path)
    text = (tmp_path / "mt" / "perf.txt").read_text()
    for key in ("mt_orders_per_sec", "ubscore.stalls", "ubscore.stall_s", "matching.cpu_s",
                "settlement.work_s", "ingestion.steps"):
        assert f"{key}=" in text
    assert perf["orders"] == 1294


@pytest.mark.slow
@pytest.mark.parametrize("fsync", ["every_batch", "interval_ms", "off"])
def test_mt_with_the_wal_replays_to_the_same_files(low_balance, fsync, tmp_path):
    """Settlement journals the sequenced commands before anything of theirs
    leaves it; replaying that WAL alone rebuilds exactly ST's files."""
    from xinfinity.app.replay import replay
    run_st(low_balance, tmp_path / "st")
    run_mt(low_balance, tmp_path / "mt", wal_dir=tmp_path / "wal", fsync=fsync)
    perf = replay(tmp_path / "wal", tmp_path / "replay")
    assert perf["torn_bytes"] == 0 and perf["wal_commands"] > 40_000
    for other in ("mt", "replay"):
        bad = [f"{n}: {d}" for n, ok, d in compare_dirs(tmp_path / "st", tmp_path / other) if not ok]
        assert not bad, other + "\n" + "\n".join(bad)


def test_open_loop_paced_run_gives_st_outputs_and_each_stages_latency(low_balance, tmp_path):
    """`xinf bench latency`'s load: ingestion offers the commands at a fixed rate, stamped with their
    due times; the outputs are ST's, and every command is in the stages' latency figures."""
    from xinfinity.edge.dataset import load_dataset
    ds = load_dataset(low_balance)
    run_st(low_balance, tmp_path / "st")
    perf = run_mt(low_balance, tmp_path / "mt", pipeline=Pipeline(metrics=True), rate=200_000)
    bad = [f"{n}: {d}" for n, ok, d in compare_dirs(tmp_path / "st", tmp_path / "mt") if not ok and n != "perf.txt"]
    assert not bad, "\n".join(bad)
    commands = len(ds.deposits) + len(ds.commands)
    assert perf["mt_s"] >= len(ds.commands) / 200_000          # paced: no faster than offered
    assert perf["latency.ubscore.count"] == perf["latency.settle.count"] == commands
    assert 0 < perf["latency.ubscore.p50_us"] <= perf["latency.settle.p99_us"]

