"""Golden parity: the ST pipeline reproduces the Rust engine's outputs.

What is compared (shared/golden/README.md): the ledger byte for byte, summary
values, the order book except its status column, and balances (avail and
frozen under `keep`; avail+frozen under `release`, where frozen must equal the
locks of the open orders instead).
"""
import pathlib

import numpy as np

import pytest

from tests.invariants import Flows, check_invariants
from xinfinity.engine import records as R
from xinfinity.engine.core import Core
from xinfinity.edge.dataset import load_dataset
from xinfinity.tools.compare import compare_outputs
from xinfinity.app.st import run_st

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATASETS = ["zxi-cancel-1294", "zxi-100k"]


@pytest.mark.parametrize("dust", ["keep", "release"])
@pytest.mark.parametrize("name", DATASETS)
def test_st_pipeline_reproduces_golden_outputs(name, dust, tmp_path):
    perf = run_st(ROOT / "fixtures" / name, tmp_path, dust)
    verdicts = compare_outputs(tmp_path, ROOT / "baseline" / name, dust)
    assert len(verdicts) == 4
    failed = [f"{f}: {msg}" for f, ok, msg in verdicts if not ok]
    assert not failed, "\n".join(failed)
    for key in ("orders", "trades", "load_s", "core_s", "core_orders_per_sec", "total_s"):
        assert key in perf
    assert (tmp_path / "perf.txt").read_text().startswith("orders=")


@pytest.mark.parametrize("dust", [R.DUST_KEEP, R.DUST_RELEASE])
@pytest.mark.parametrize("name", DATASETS)
def test_golden_run_keeps_invariants(name, dust):
    """Conservation, frozen == open locks under release (>= under keep), book not crossed."""
    ds = load_dataset(ROOT / "fixtures" / name)
    core = Core(ds.assets, ds.symbols, dust)
    flows = Flows()
    flows.observe(core.apply(ds.deposits))
    core.run(ds.commands.copy(), flows.observe)
    check_invariants(core, ds.symbols, dust, flows)


def test_keep_policy_leaves_the_rust_engines_dust_frozen():
    """The Rust engine's rounding left 24,129 quote units frozen beyond what the
    open orders need (cost(P, remaining)) in the 100k run (TRADING_RULES section
    5); `keep` reproduces exactly that, while under `release` frozen is exactly
    the open orders' locks (whose rounding dust is freed when they leave)."""
    ds = load_dataset(ROOT / "fixtures" / "zxi-100k")
    beyond_need, beyond_locks = {}, {}
    for dust in (R.DUST_KEEP, R.DUST_RELEASE):
        core = Core(ds.assets, ds.symbols, dust)
        core.apply(ds.deposits)
        core.run(ds.commands.copy(), lambda ev: None)
        balances = core.balances()
        quote_frozen = int(balances[balances["asset"] == 2]["frozen"].sum())
        buys = core.open_orders()
        buys = buys[buys["side"] == R.SIDE_BUY]
        need = sum(int(p) * (int(q) - int(f)) // 10**8
                   for p, q, f in zip(buys["price"], buys["qty"], buys["filled"]))
        beyond_need[dust] = quote_frozen - need
        beyond_locks[dust] = quote_frozen - int(buys["lock"].sum())
    assert beyond_need[R.DUST_KEEP] == 24129
    assert beyond_locks[R.DUST_RELEASE] == 0
    assert beyond_need[R.DUST_RELEASE] < beyond_need[R.DUST_KEEP]


@pytest.mark.slow
@pytest.mark.parametrize("dust", ["keep", "release"])
def test_run_time_invariant_check_passes_on_a_generated_set_with_every_command_kind(dust, tmp_path):
    """The debug flag checks TRADING_RULES section 7 after every batch; small
    batches so it runs often (gen-200k-mix: fees, 2 symbols, IOC, market, move, reduce)."""
    import argparse
    from xinfinity.tools import gen_fixture
    data = tmp_path / "data"
    parser = argparse.ArgumentParser()
    gen_fixture.add_arguments(parser)
    gen_fixture.main(parser.parse_args(
        f"--orders 20000 --cancel-ratio 0.15 --users 50 --seed 11 --out {data} --ioc-ratio 0.1 "
        "--market-ratio 0.05 --move-ratio 0.05 --reduce-ratio 0.05 --symbols 2 --balance low "
        "--fees --quiet".split()))
    run_st(data, tmp_path / "out", dust, batch=997, check_invariants=True)


def test_invariant_check_detects_a_broken_lock():
    ds = load_dataset(ROOT / "fixtures" / "zxi-cancel-1294")
    core = Core(ds.assets, ds.symbols, R.DUST_RELEASE)
    core.apply(ds.deposits)
    core.apply(ds.commands.copy())
    core.check_invariants()
    live = np.flatnonzero(core.ubs.locks["in_use"] == 1)
    core.ubs.locks["lock"][live[0]] += 1
    with pytest.raises(AssertionError, match="frozen != open locks"):
        core.check_invariants()
