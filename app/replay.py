"""`xinf replay --wal DIR --out DIR`: the state and every output file, rebuilt
from a WAL directory alone (storage/wal_dir.py).

The WAL's commands go through the same core, in the same batches, as the ST
pipeline's, so the files equal those of the run that wrote the WAL (up to the
last intact record: a torn tail is cut off and reported). perf.txt adds
replay_s (reading and checking the WAL and running it through the core,
files excluded) and replay_commands_per_sec.
"""
from __future__ import annotations

import pathlib
import time


from xinfinity.storage.wal_dir import open_wal_dir

from xinfinity.edge import outputs
from xinfinity.storage.recovery import recover
from xinfinity.edge.dataset import Dataset
from xinfinity.app.st import run_st
from xinfinity.runtime import progress


def add_arguments(p) -> None:
    p.add_argument("--wal", required=True, help="WAL directory (written by --wal)")
    p.add_argument("--out", required=True, help="output directory")


@progress.reported
def replay(wal_dir, out_dir) -> dict:
    t0 = time.perf_counter()
    progress.current().stage("reading the WAL", compiles="wal")
    j = open_wal_dir(wal_dir)
    t_open = time.perf_counter() - t0
    ds = Dataset(path=pathlib.Path(wal_dir), assets=j.assets, symbols=j.symbols, deposits=j.deposits,
                 commands=j.commands, rows=len(j.commands))
    perf = run_st(None, out_dir, j.dust, ds=ds, capacity=j.capacity)
    n = len(j.deposits) + len(j.commands)
    replay_s = t_open + perf["core_s"]
    perf.update({"wal_commands": n, "torn_bytes": j.torn_bytes, "wal_open_s": round(t_open, 3),
                 "replay_s": round(replay_s, 3),
                 "replay_commands_per_sec": int(n / replay_s) if replay_s > 0 else 0})
    outputs.write_summary(pathlib.Path(out_dir) / "perf.txt", perf)
    return perf


def main(args) -> int:
    perf = replay(args.wal, args.out)
    if perf["torn_bytes"]:
        print(f"xinf: the WAL's last {perf['torn_bytes']} bytes were a torn record; cut off")
    for k, v in perf.items():
        print(f"{k}={v}")
    return 0


def add_recover_arguments(p) -> None:
    p.add_argument("--wal", required=True, help="WAL directory")


def recover_main(args) -> int:
    core, _, figures = recover(args.wal)
    for why in figures.pop("rejected"):
        print(f"xinf: snapshot not used: {why}")
    c = core.counters()
    figures.update({"next_seq": c["next_seq"], "next_trade_id": c["next_trade_id"],
                    "balances": len(core.balances()), "open_orders": len(core.open_orders())})
    for k, v in figures.items():
        print(f"{k}={v}")
    return 0
