"""`xinf replay --wal DIR --out DIR`: the state and every output file, rebuilt
from a WAL directory alone (services/journal.py).

The WAL's commands go through the same core, in the same batches, as the ST
pipeline's, so the files equal those of the run that wrote the WAL (up to the
last intact record: a torn tail is cut off and reported). perf.txt adds
replay_s (reading and checking the WAL and running it through the core,
files excluded) and replay_commands_per_sec.
"""
from __future__ import annotations

import pathlib
import time

import numpy as np

from xinfinity.services.journal import open_journal

from . import outputs
from .dataset import Dataset
from .st import run_st


def add_arguments(p) -> None:
    p.add_argument("--wal", required=True, help="WAL directory (written by --wal)")
    p.add_argument("--out", required=True, help="output directory")


def replay(wal_dir, out_dir) -> dict:
    t0 = time.perf_counter()
    j = open_journal(wal_dir)
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


def recover(wal_dir, sink=None, at_most: int | None = None, prefault: bool = True, core=None):
    """The core's state from the newest good snapshot (cut at or before seq
    at_most, if given) and the WAL after it, the replayed commands' events
    going to sink: (core, journaled, figures). What a restarted pipeline does
    before it takes traffic. recovery_s: opening and checking the WAL, loading
    the snapshot, replaying the rest (allocating the core's arrays is not
    counted). prefault: as engine.core.Core's; core: a fresh one allocated
    beforehand for it (the restarting supervisor keeps one ready)."""
    from xinfinity.engine import records as R
    from xinfinity.engine.core import Core
    from xinfinity.services.journal import SNAPSHOTS
    from xinfinity.services.snapshot import load_snapshot
    t0 = time.perf_counter()
    j = open_journal(wal_dir)
    t_opened = time.perf_counter()
    if core is None:
        core = Core(j.assets, j.symbols, R.DUST_CODES[j.dust], j.capacity, prefault)   # allocation: not recovery
    t_built = time.perf_counter()
    loaded = load_snapshot(pathlib.Path(wal_dir) / SNAPSHOTS, at_most)
    if loaded.arrays is not None:
        core.restore(loaded.arrays)
    sink = sink or (lambda ev: None)
    replayed = 0
    for part in (j.deposits, j.commands):       # the WAL's own arrays: the core may write into them
        tail = part[np.searchsorted(part["seq"], loaded.seq, side="right"):]
        for i in range(0, len(tail), 65536):
            core.run(tail[i:i + 65536], sink)
        replayed += len(tail)
    t_end = time.perf_counter()
    n = len(j.deposits) + len(j.commands)
    return core, j, {"snapshot_seq": loaded.seq, "snapshots_rejected": len(loaded.rejected),
                     "wal_commands": n, "replayed": replayed, "torn_bytes": j.torn_bytes,
                     "recovery_s": round((t_opened - t0) + (t_end - t_built), 3), "rejected": loaded.rejected}


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
