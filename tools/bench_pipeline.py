"""`xinf bench pipeline`: ST against MT on the same commands, in one run.

The dataset is read once, before anything is timed. ST: the single-process
core over every command, each flushed chunk of events handed to a sink that
counts but writes nothing. MT: the multi-process pipeline, from the first
command published to the last event merged in ST order by settlement, whose
sink also writes nothing. Each is run --repeat times, alternating, and the
best of each is reported (this machine is noisy; both see the same noise).
Ends with st_orders_per_sec, mt_orders_per_sec, mt_over_st.
"""
from __future__ import annotations

import time

from xinfinity.engine import records as R
from xinfinity.engine.core import Core

from xinfinity.edge.dataset import load_dataset
from xinfinity.app.mt import add_pipeline_arguments, pipeline_config, run_mt
from xinfinity.app.st import Sink


def st_seconds(ds, dust: str, batch: int = 65536) -> float:
    core = Core(ds.assets, ds.symbols, R.DUST_CODES[dust])
    sink = Sink(None)
    core.run(ds.deposits, sink)
    cmds = ds.commands
    t0 = time.perf_counter()
    for i in range(0, len(cmds), batch):
        core.run(cmds[i:i + batch], sink)
    return time.perf_counter() - t0


def add_arguments(p) -> None:
    p.add_argument("--input", required=True, help="dataset directory")
    p.add_argument("--dust", choices=sorted(R.DUST_CODES), default="release")
    add_pipeline_arguments(p)
    p.add_argument("--repeat", type=int, default=3)


def main(args) -> int:
    pipeline = pipeline_config(args)
    ds = load_dataset(args.input)
    n = len(ds.commands)
    st_best = mt_best = float("inf")
    for r in range(args.repeat):
        st = st_seconds(ds, args.dust)
        mt = run_mt(None, None, args.dust, pipeline, ds=ds)
        print(f"run {r + 1}: st {n / st:,.0f} orders/s, mt {mt['mt_orders_per_sec']:,} orders/s "
              f"(wait {mt['wait']}, stalls {mt['ubscore.stalls']} taking {mt['ubscore.stall_s']} s; "
              f"work s: ubscore {mt['ubscore.work_s']}, matching {mt['matching.work_s']}, "
              f"settlement {mt['settlement.work_s']})", flush=True)
        st_best = min(st_best, st)
        mt_best = min(mt_best, mt["mt_s"])
    print(f"orders={n}")
    print(f"st_orders_per_sec={int(n / st_best)}")
    print(f"mt_orders_per_sec={int(n / mt_best)}")
    print(f"mt_over_st={st_best / mt_best:.3f}")
    return 0
