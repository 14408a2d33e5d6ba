"""`xinf pipeline st`: a dataset through the single-process core, outputs to files.

Reads the dataset (tools/dataset.py), deposits the initial balances, runs every
command through `engine.core.Core` in batches, and writes into --out:

- the golden-format files: t2_ledger.csv, t2_balances_final.csv,
  t2_orderbook.csv, summary.txt (see docs/ENGINE.md "Outputs");
- our event files: events_order.bin, events_trade.bin, events_balance.bin and
  events_format.txt describing them (tools/outputs.py);
- perf.txt: orders, trades, load_s, core_s (time inside the core, event
  writing and snapshots excluded; WAL appends included), core_orders_per_sec,
  write_s, total_s, and snapshot_s with --snapshot-every.
"""
from __future__ import annotations

import pathlib
import time

import numpy as np

from xinfinity.config import Capacity
from xinfinity.engine import records as R
from xinfinity.engine.core import Core
from xinfinity.engine.events import Events
from xinfinity.services.wal import POLICIES

from . import outputs
from .dataset import load_dataset

ROOT = pathlib.Path(__file__).resolve().parent.parent


class Sink:
    """Receives each flushed chunk of events: writes them (unless out_dir is
    None: the benchmarks) and counts what the summary needs, timing itself so
    the core's own time can be told apart."""

    def __init__(self, out_dir: pathlib.Path | None, after: dict | None = None, after_trade: int | None = None):
        self.ledger = outputs.LedgerWriter(out_dir / outputs.LEDGER_FILE, after_trade) if out_dir else None
        self.events = outputs.EventWriter(out_dir, after) if out_dir else None
        self.resumed = after is not None
        self.accepted = self.rejected = self.trades = 0
        self.seconds = 0.0

    @classmethod
    def resume(cls, out_dir: pathlib.Path, through: int | None = None) -> "Sink":
        """Carry on files a crash interrupted (tools/outputs.py cut_events):
        with `through`, they are complete through that seq; without, each is cut
        back to what is surely complete, and the sink skips what a recovery
        re-emits up to there. The summary's counts are then taken from the files."""
        after = {stream: outputs.cut_events(out_dir / name, dt, through)
                 for stream, (name, dt) in outputs.EVENT_FILES.items()}
        after_trade = outputs.cut_ledger(out_dir / outputs.LEDGER_FILE, drop_last=through is None)
        return cls(out_dir, after, after_trade)

    def through(self) -> int:
        """The seq every file is complete through (resumed sinks): a snapshot
        newer than this cannot restore them. The ledger is complete up to the
        seq of the first trade it lacks."""
        through = min(self.events.after.values())
        name, dt = outputs.EVENT_FILES["trades"]
        path = self.events.out_dir / name
        trades = np.memmap(path, dt, "r") if path.stat().st_size else np.zeros(0, dt)
        i = int(np.searchsorted(trades["trade_id"], self.ledger.after_trade, side="right"))
        if i < len(trades):
            through = min(through, int(trades["seq"][i]) - 1)
        return through

    def __call__(self, ev: Events) -> None:
        t0 = time.perf_counter()
        o = ev.orders
        places = o["kind"] == R.CMD_PLACE
        self.accepted += int(np.count_nonzero(places & (o["status"] == R.ST_ACCEPTED)))
        self.rejected += int(np.count_nonzero(places & (o["status"] == R.ST_REJECTED)))
        self.trades += len(ev.trades)
        if self.ledger:
            self.ledger.write(ev.balances)
            self.events.write(ev)
        self.seconds += time.perf_counter() - t0

    def close(self) -> None:
        if self.ledger:
            self.ledger.close()
            self.events.close()
            if self.resumed:            # what came before the crash counts too
                path = self.events.out_dir / outputs.EVENT_FILES["orders"][0]
                orders = np.fromfile(path, R.ORDER_EVENT)
                places = orders["kind"] == R.CMD_PLACE
                self.accepted = int(np.count_nonzero(places & (orders["status"] == R.ST_ACCEPTED)))
                self.rejected = int(np.count_nonzero(places & (orders["status"] == R.ST_REJECTED)))
                self.trades = self.events.counts["trades"]


def summary(best, ds, sink: Sink) -> dict:
    """summary.txt's items; best(symbol id) -> (bid, ask, bid levels, ask levels)."""
    kinds = ds.commands["kind"]
    first = ds.symbols[0]
    bid, ask, n_bid, n_ask = best(first.id)
    items = {"symbol": first.name, "rows": ds.rows,
             "places": int(np.count_nonzero(kinds == R.CMD_PLACE)),
             "cancels": int(np.count_nonzero(kinds == R.CMD_CANCEL)),
             "accepted": sink.accepted, "rejected": sink.rejected, "trades": sink.trades,
             "best_bid": bid, "best_ask": ask, "bid_levels": n_bid, "ask_levels": n_ask}
    # Beyond the golden keys: other command kinds and other symbols, when present.
    for kind in (R.CMD_REDUCE, R.CMD_MOVE, R.CMD_DEPOSIT, R.CMD_WITHDRAW):
        n = int(np.count_nonzero(kinds == kind))
        if n:
            items[R.CMD_NAMES[kind] + "s"] = n
    traded = set(np.unique(ds.commands["symbol"][kinds == R.CMD_PLACE]).tolist())
    for s in ds.symbols[1:]:
        if s.id not in traded:
            continue
        bid, ask, n_bid, n_ask = best(s.id)
        items.update({f"{s.name}.best_bid": bid, f"{s.name}.best_ask": ask,
                      f"{s.name}.bid_levels": n_bid, f"{s.name}.ask_levels": n_ask})
    return items


def write_finals(out_dir, sink: Sink, balances, open_orders, best, ds) -> None:
    """Close the event files and write the final-state files (both pipelines)."""
    sink.close()
    outputs.write_balances(out_dir / "t2_balances_final.csv", balances)
    outputs.write_orderbook(out_dir / "t2_orderbook.csv", open_orders)
    outputs.write_summary(out_dir / "summary.txt", summary(best, ds, sink))


def _sequenced(core: Core, cmds: np.ndarray) -> np.ndarray:
    """A copy of cmds with the seqs the core is about to give them (every
    command gets the next seq), for the WAL to hold before the core acts."""
    seqd = cmds.copy()
    first = core.counters()["next_seq"]
    seqd["seq"] = np.arange(first, first + len(seqd))
    return seqd


def run_st(input_dir, out_dir, dust: str = "release", batch: int = 65536,
           check_invariants: bool = False, wal_dir=None, fsync: str = "every_batch", ds=None,
           capacity: Capacity = Capacity(), snapshot_every: int = 0) -> dict:
    """Run the ST pipeline; returns the perf figures (also written to perf.txt).
    check_invariants: assert TRADING_RULES section 7 after every batch (debug;
    its time is excluded from core_s). wal_dir: persist every batch of
    commands to the order WAL there (fsync policy `fsync`) before running it.
    ds: an already loaded dataset (replay passes the WAL's). snapshot_every:
    with a WAL, snapshot the state after a batch once that many commands ran
    since the last one (in wal_dir/snapshots)."""
    t_start = time.perf_counter()
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = ds if ds is not None else load_dataset(input_dir)
    core = Core(ds.assets, ds.symbols, R.DUST_CODES[dust], capacity)
    journal = None
    if wal_dir is not None:
        from xinfinity.services.journal import SNAPSHOTS, Journal
        journal = Journal(wal_dir, ds.path, dust, len(ds.deposits), fsync, capacity=capacity)
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
            from xinfinity.services.snapshot import write_snapshot
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
        if check_invariants:
            t_check = time.perf_counter()
            core.check_invariants()
            check_s += time.perf_counter() - t_check
    core_s = time.perf_counter() - t0 - (sink.seconds - sink_before) - check_s - snapshot_s[0]

    if journal is not None:
        journal.close()
    t_write = time.perf_counter()
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


def add_arguments(p) -> None:
    p.add_argument("--input", required=True, help="dataset directory")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--dust", choices=sorted(R.DUST_CODES), default="release")
    p.add_argument("--check-invariants", action="store_true",
                   help="debug: assert conservation, locks and an uncrossed book after every batch")
    p.add_argument("--wal", default=None, help="write the order WAL (and what replaying it needs) into this directory")
    p.add_argument("--fsync", choices=POLICIES, default="every_batch",
                   help="WAL fsync policy (with --wal)")
    p.add_argument("--snapshot-every", type=int, default=0,
                   help="with --wal: snapshot the state every N commands (0: never)")


def main(args) -> int:
    perf = run_st(args.input, args.out, args.dust, check_invariants=args.check_invariants,
                  wal_dir=args.wal, fsync=args.fsync, snapshot_every=args.snapshot_every)
    print((pathlib.Path(args.out) / "summary.txt").read_text(), end="")
    for k, v in perf.items():
        print(f"{k}={v}")
    return 0
