"""`xinf pipeline st`: a dataset through the single-process core, outputs to files.

Reads the dataset (edge/dataset.py), deposits the initial balances, runs every
command through `engine.core.Core` in batches, and writes into --out:

- the golden-format files: t2_ledger.csv, t2_balances_final.csv,
  t2_orderbook.csv, summary.txt (see docs/ENGINE.md "Outputs");
- our event files: events_order.bin, events_trade.bin, events_balance.bin and
  events_format.txt describing them (edge/outputs.py);
- perf.txt: orders, trades, load_s, core_s (time inside the core, event
  writing and snapshots excluded; WAL appends included), core_orders_per_sec,
  write_s, total_s, and snapshot_s with --snapshot-every.
"""
from __future__ import annotations

import pathlib
import time

import numpy as np

from xinfinity.config import CONFIG_DIR, Capacity, FsyncPolicy, load_yaml
from xinfinity.engine import records as R
from xinfinity.engine.core import Core
from xinfinity.edge import outputs
from xinfinity.edge.dataset import load_dataset
from xinfinity.edge.sink import Sink, write_finals
from xinfinity.storage.wal import POLICIES
from xinfinity.runtime import progress

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _sequenced(core: Core, cmds: np.ndarray) -> np.ndarray:
    """A copy of cmds with the seqs the core is about to give them (every
    command gets the next seq), for the WAL to hold before the core acts."""
    seqd = cmds.copy()
    first = core.counters()["next_seq"]
    seqd["seq"] = np.arange(first, first + len(seqd))
    return seqd


@progress.reported
def run_st(input_dir, out_dir, dust: str = "release", batch: int = 65536,
           check_invariants: bool = False, wal_dir=None, fsync: FsyncPolicy = "every_batch", ds=None,
           capacity: Capacity = Capacity(), snapshot_every: int = 0, fsync_interval_ms: int = 5) -> dict:
    """Run the ST pipeline; returns the perf figures (also written to perf.txt).
    check_invariants: assert TRADING_RULES section 7 after every batch (debug;
    its time is excluded from core_s). wal_dir: persist every batch of
    commands to the order WAL there (fsync policy `fsync`, and under
    interval_ms at most `fsync_interval_ms` between syncs) before running it.
    ds: an already loaded dataset (replay passes the WAL's). snapshot_every:
    with a WAL, snapshot the state after a batch once that many commands ran
    since the last one (in wal_dir/snapshots)."""
    t_start = time.perf_counter()
    prog = progress.current()
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if ds is None:
        prog.stage("loading the dataset", compiles="load")
        ds = load_dataset(input_dir)
    prog.stage("", total=len(ds.commands), unit="commands", per_s=True, compiles="st")
    core = Core(ds.assets, ds.symbols, R.DUST_CODES[dust], capacity)
    journal = None
    if wal_dir is not None:
        from xinfinity.storage.wal_dir import SNAPSHOTS, WalDir
        journal = WalDir(wal_dir, ds.path, dust, len(ds.deposits), fsync, fsync_interval_ms, capacity=capacity)
    last_snapshot = [0]
    snapshot_s = [0.0]
    initial = {}
    t_loaded = time.perf_counter()

    def run(cmds):
        if journal is not None:
            cmds = _sequenced(core, cmds)
            journal.append(cmds)
        core.run(cmds, sink)
        seq = core.counters()["next_seq"] - 1
        if journal is not None and snapshot_every and seq - last_snapshot[0] >= snapshot_every:
            from xinfinity.storage.snapshot import write_snapshot
            t_snap = time.perf_counter()
            if not initial:                 # what a snapshot is written as changes from
                initial.update(Core(ds.assets, ds.symbols, R.DUST_CODES[dust], capacity, prefault=False).state_arrays())
            write_snapshot(journal.dir / SNAPSHOTS, seq, core.state_arrays(), initial)
            last_snapshot[0] = seq
            snapshot_s[0] += time.perf_counter() - t_snap

    sink = Sink(out_dir)
    run(ds.deposits)
    t0 = time.perf_counter()
    sink_before = sink.seconds
    cmds = ds.commands
    check_s = 0.0
    for i in range(0, len(cmds), batch):
        run(cmds[i:i + batch])
        prog.update(min(i + batch, len(cmds)))
        if check_invariants:
            t_check = time.perf_counter()
            core.check_invariants()
            check_s += time.perf_counter() - t_check
    core_s = time.perf_counter() - t0 - (sink.seconds - sink_before) - check_s - snapshot_s[0]

    if journal is not None:
        journal.close()
    t_write = time.perf_counter()
    prog.stage("writing the output files")
    write_finals(out_dir, sink, core.balances(), core.open_orders(), core.best, ds)
    write_s = time.perf_counter() - t_write + sink.seconds
    perf = {"orders": len(cmds), "trades": sink.trades,
            "load_s": round(t_loaded - t_start, 3), "core_s": round(core_s, 3),
            "core_orders_per_sec": int(len(cmds) / core_s) if core_s > 0 else 0,
            "write_s": round(write_s, 3), "total_s": round(time.perf_counter() - t_start, 3)}
    if snapshot_every:
        perf["snapshot_s"] = round(snapshot_s[0], 3)
    outputs.write_summary(out_dir / "perf.txt", perf)
    return perf


def add_config_argument(p) -> None:
    p.add_argument("--config", default=str(CONFIG_DIR / "dev.yaml"),
                   help="YAML config: `capacity` sizes the core; `pipeline` sets the WAL's fsync, "
                        "and for MT rings, waits and cores")


def add_arguments(p) -> None:
    p.add_argument("--input", required=True, help="dataset directory")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--dust", choices=sorted(R.DUST_CODES), default="release")
    add_config_argument(p)
    p.add_argument("--check-invariants", action="store_true",
                   help="debug: assert conservation, locks and an uncrossed book after every batch")
    p.add_argument("--wal", default=None, help="write the order WAL (and what replaying it needs) into this directory")
    p.add_argument("--fsync", choices=POLICIES, default=None,
                   help="WAL fsync policy (with --wal; default: the config's pipeline.fsync)")
    p.add_argument("--snapshot-every", type=int, default=0,
                   help="with --wal: snapshot the state every N commands (0: never)")


def main(args) -> int:
    cfg = load_yaml(args.config)
    perf = run_st(args.input, args.out, args.dust, check_invariants=args.check_invariants,
                  wal_dir=args.wal, fsync=args.fsync or cfg.pipeline.fsync,
                  fsync_interval_ms=cfg.pipeline.fsync_interval_ms, capacity=cfg.capacity,
                  snapshot_every=args.snapshot_every)
    print((pathlib.Path(args.out) / "summary.txt").read_text(), end="")
    for k, v in perf.items():
        print(f"{k}={v}")
    return 0
