"""`xinf bench engine`: the numba core against the plain-Python reference.

Both run the same commands, already in memory (no CSV in the timing), in one
process and one run, so the ratio is measured under the same machine load.
The reference is slow, so both are timed on the same prefix of the dataset
(--ref-limit commands); the numba core is also timed on the whole dataset.
The benchmark refuses to print figures unless both produced identical events
and final state on the prefix.

Ends with: numba_orders_per_sec=…, ref_orders_per_sec=…, ratio=…
"""
from __future__ import annotations

import time

import numpy as np

from xinfinity.engine import records as R
from xinfinity.engine.core import Core
from xinfinity.engine.reference import Reference

from xinfinity.edge.dataset import load_dataset
from xinfinity.runtime import progress



def add_arguments(p) -> None:
    p.add_argument("--input", required=True, help="dataset directory")
    p.add_argument("--dust", choices=sorted(R.DUST_CODES), default="release")
    p.add_argument("--ref-limit", type=int, default=200_000,
                   help="commands both implementations run for the ratio (default 200000)")
    p.add_argument("--repeat", type=int, default=3, help="numba runs; the best is reported")


def _fresh_core(ds, dust):
    core = Core(ds.assets, ds.symbols, dust)
    core.apply(ds.deposits)
    return core


def _time_numba(ds, cmds, dust, repeat) -> float:
    """Best of `repeat` runs on fresh state, events discarded as they flush."""
    best = float("inf")
    prog = progress.current()
    prog.stage(f"the numba core on {len(cmds):,} commands", total=repeat, unit="runs")
    for r in range(repeat):
        prog.update(r)
        core = _fresh_core(ds, dust)
        batch = cmds.copy()
        t0 = time.perf_counter()
        core.run(batch, lambda ev: None)
        best = min(best, time.perf_counter() - t0)
    return best


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return len(a) == len(b) and a.tobytes() == b.tobytes()


@progress.reported
def main(args) -> int:
    prog = progress.current()
    prog.stage("loading the dataset", compiles="load")
    ds = load_dataset(args.input)
    dust = R.DUST_CODES[args.dust]
    n_prefix = min(args.ref_limit, len(ds.commands))
    prefix = ds.commands[:n_prefix]
    print(f"dataset {args.input}: {len(ds.commands)} commands; ratio measured on the first {n_prefix}")

    # Warm-up: load numba's cached code before anything is timed.
    prog.stage("warming up", compiles="st")
    warm = Core(ds.assets, ds.symbols, dust)
    warm.apply(ds.deposits)
    warm.apply(prefix[:1000].copy())

    full_s = _time_numba(ds, ds.commands, dust, args.repeat)
    numba_s = _time_numba(ds, prefix, dust, args.repeat)
    core = _fresh_core(ds, dust)           # once more, keeping the events to check
    numba_ev = core.apply(prefix.copy())

    prog.stage(f"the reference on {n_prefix:,} commands (pure Python: slow)")
    ref = Reference(ds.assets, ds.symbols, dust)
    ref.apply(ds.deposits.copy())
    t0 = time.perf_counter()
    ref_ev = ref.apply(prefix.copy())
    ref_s = time.perf_counter() - t0

    for name in ("orders", "trades", "balances"):
        if not _same(getattr(numba_ev, name), getattr(ref_ev, name)):
            print(f"FAIL: {name} events differ between numba and the reference; no figures reported")
            return 1
    if not (_same(core.balances(), ref.balances()) and _same(core.open_orders(), ref.open_orders())):
        print("FAIL: final state differs between numba and the reference; no figures reported")
        return 1
    print(f"identical events and state on the prefix: {len(numba_ev.orders)} order, "
          f"{len(numba_ev.trades)} trade, {len(numba_ev.balances)} balance events")

    numba_rate = n_prefix / numba_s
    ref_rate = n_prefix / ref_s
    print(f"numba_full_orders_per_sec={len(ds.commands) / full_s:.0f}")
    print(f"numba_orders_per_sec={numba_rate:.0f}")
    print(f"ref_orders_per_sec={ref_rate:.0f}")
    print(f"ratio={numba_rate / ref_rate:.1f}")
    return 0
