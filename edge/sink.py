"""Where the core's events go in a dataset run: the output files (edge/outputs.py)
and the counts summary.txt needs. ST, MT settlement, replay and recovery all
write through a `Sink`; a resumed one carries on files a crash interrupted.
"""
from __future__ import annotations

import pathlib
import time

import numpy as np

from xinfinity.engine import records as R
from xinfinity.engine.events import Events

from . import outputs


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
        """Carry on files a crash interrupted (edge/outputs.py cut_events):
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
