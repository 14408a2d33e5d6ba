"""Determinism under any timing: the pipeline's four services in one process,
stepped in a random (seeded) order, UBSCore and the ME one loop turn at a
time, over rings of a few records. Every schedule must give ST's files, and
none may deadlock (run_interleaved raises when no service can move)."""
import pytest

from xinfinity.config import Pipeline
from xinfinity.edge.dataset import load_dataset
from xinfinity.tools.gen_fixture import GenParams, generate
from xinfinity.app.mt import run_interleaved
from xinfinity.tools.parity import compare_dirs
from xinfinity.app.st import run_st


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    out = tmp_path_factory.mktemp("mixed")
    generate(GenParams(orders=3_000, cancel_ratio=0.25, users=40, seed=5, balance="low", ioc_ratio=0.1,
                       market_ratio=0.1, move_ratio=0.05, reduce_ratio=0.05, symbols=2, fees=True), out)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dust", ["release", "keep"])
def test_random_schedules_give_st_outputs(mixed, seed, dust, tmp_path):
    run_st(mixed, tmp_path / "st", dust)
    steps = run_interleaved(load_dataset(mixed), tmp_path / "mt", dust,
                            Pipeline(wait="spin", ring_capacity=4 << (seed % 3), batch=2 + seed, forward_every=1 + seed),
                            seed=seed)
    assert all(n > 0 for n in steps.values())
    bad = [f"{n}: {d}" for n, ok, d in compare_dirs(tmp_path / "st", tmp_path / "mt") if not ok and n != "perf.txt"]
    assert not bad, "\n".join(bad)
