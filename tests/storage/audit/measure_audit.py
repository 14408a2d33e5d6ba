"""Measure the audit store and stage (run by hand, not collected by pytest):

    .venv/bin/python -m tests.storage.audit.measure_audit [--rate 5000] [--fixture fixtures/zxi-100k]

1. store: the ST replay's events of the fixture written to a fresh SQLite
   audit store in batches of N commands; rows/s and commands/s (orders/s).
2. stage: the audit stage replaying a WAL of the whole fixture from disk
   and writing it (one process: replay + store), commands/s.
3. live: the fixture goes through the multi-process pipeline with a WAL
   (fsync every batch), offered open-loop at --rate commands/s by ingestion
   (`xinf bench latency`'s pacing), while the stage follows the WAL in a
   process of its own, as in `xinf serve`; the lag (WAL's last seq - the
   store's mark) sampled every 50 ms: its maximum while fed, and how long
   after the feed stops it takes to reach 0. The pipeline starts only once
   the stage has started (its start is not the figure).

Every figure is printed only after the store is checked to hold exactly the
replay's rows (counts per table and the mark).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import pathlib
import sqlite3
import tempfile
import time

import msgspec
import numpy as np

from xinfinity.app.mt import run_mt
from xinfinity.config import Config, Persistence, Pipeline
from xinfinity.edge.dataset import load_dataset
from xinfinity.engine import records as R
from xinfinity.engine.core import Core
from xinfinity.engine.wal import RECORD_BYTES
from xinfinity.services.audit import AuditStage
from xinfinity.storage.audit import AuditBatch
from xinfinity.storage.audit.sqlite import SqliteAuditStore
from xinfinity.storage.wal_dir import WalDir

T0_NS = 1_700_000_000 * 10**9


def _history(fixture):
    ds = load_dataset(fixture)
    cmds = np.concatenate([ds.deposits, ds.commands])
    cmds["seq"] = np.arange(1, len(cmds) + 1)
    cmds["ts"] = T0_NS + cmds["seq"] * 200_000          # 5,000 commands a second
    return ds, cmds


def _check(db_path, ev, through: int) -> None:
    db = sqlite3.connect(str(db_path))
    got = [db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("trades", "order_events", "balance_events")]
    mark = db.execute("SELECT value FROM meta WHERE key = 'mark'").fetchone()[0]
    db.close()
    want = [len(ev.trades), len(ev.orders), len(ev.balances)]
    if got != want or mark != through:
        raise SystemExit(f"the store holds {got} rows through {mark}, not {want} through {through}: no figure")


def store_rate(ds, cmds, ev, batch: int, tmp: pathlib.Path) -> None:
    store = SqliteAuditStore(tmp / f"store-{batch}.db")
    by_seq = {name: np.searchsorted(a["seq"], np.arange(1, len(cmds) + 2)) for name, a in ev._asdict().items()}
    t0 = time.perf_counter()
    for i in range(0, len(cmds), batch):
        first, through = i + 1, min(i + batch, len(cmds))
        cut = {name: a[by_seq[name][first - 1]:by_seq[name][through]] for name, a in ev._asdict().items()}
        store.write(AuditBatch(first, through, cmds["ts"][i:through], cut["orders"], cut["trades"], cut["balances"],
                               []))
    s = time.perf_counter() - t0
    store.close()
    _check(tmp / f"store-{batch}.db", ev, len(cmds))
    rows = len(ev.orders) + len(ev.trades) + len(ev.balances)
    print(f"store  batch={batch:6d} commands: {rows} rows in {s:.2f} s = {rows / s:,.0f} rows/s, "
          f"{len(cmds) / s:,.0f} commands/s ({rows / len(cmds):.1f} rows per command)")


def _wal_dir(ds, data_dir: pathlib.Path) -> WalDir:
    return WalDir(data_dir / "wal", ds.path, "release", len(ds.deposits), "every_batch")


def stage_rate(ds, cmds, ev, batch: int, tmp: pathlib.Path) -> None:
    d = tmp / f"stage-{batch}"
    w = _wal_dir(ds, d)
    w.append(cmds)
    w.close()
    cfg = msgspec.structs.replace(Config(), persistence=Persistence(audit_batch=batch))
    t0 = time.perf_counter()
    stage = AuditStage(d, cfg)
    t1 = time.perf_counter()
    stage.caught_up()
    s = time.perf_counter() - t1
    stage.close()
    _check(d / "audit.db", ev, len(cmds))
    print(f"stage  batch={batch:6d}: {len(cmds)} commands replayed and written in {s:.2f} s = "
          f"{len(cmds) / s:,.0f} commands/s (start: {t1 - t0:.2f} s)")


def _feed(ds, data_dir, rate: int, follower_ready) -> None:
    """The fixture through the MT pipeline at `rate`, its WAL in data_dir/wal; the go waits for the stage."""
    run_mt(None, None, pipeline=Pipeline(), ds=ds, wal_dir=data_dir / "wal", fsync="every_batch",
           restarts=0, rate=rate, on_ready=lambda w: follower_ready.wait())


def _follow(data_dir, ready, stop) -> None:
    while not (data_dir / "wal" / "wal.log").exists():     # the journal makes it as the pipeline starts
        time.sleep(0.01)
    stage = AuditStage(data_dir, Config())
    ready.set()
    while not stop.is_set() or stage.lag():
        if not stage.step():
            time.sleep(0.02)
    stage.close()


def live(ds, cmds, ev, rate: int, tmp: pathlib.Path) -> None:
    d = tmp / "live"
    ctx = mp.get_context("fork")
    ready, stop = ctx.Event(), ctx.Event()
    follower = ctx.Process(target=_follow, args=(d, ready, stop))
    follower.start()
    feeder = ctx.Process(target=_feed, args=(ds, d, rate, ready))
    feeder.start()
    ready.wait()
    t0 = time.perf_counter()
    lags, fed_s, caught_s = [], None, None
    wal = d / "wal" / "wal.log"
    while True:
        last = wal.stat().st_size // RECORD_BYTES
        try:
            db = sqlite3.connect(str(d / "audit.db"), timeout=1)
            row = db.execute("SELECT value FROM meta WHERE key = 'mark'").fetchone()
            db.close()
        except sqlite3.OperationalError:
            row = None
        lag = last - (row[0] if row else 0)
        now = time.perf_counter() - t0
        lags.append((now, lag))
        if fed_s is None and not feeder.is_alive():
            fed_s = now
        if fed_s is not None and lag == 0 and last == len(cmds):
            caught_s = now
            break
        time.sleep(0.05)
    stop.set()
    follower.join(60)
    feeder.join()
    if feeder.exitcode:
        raise SystemExit(f"the pipeline failed (exit {feeder.exitcode}): no figure")
    _check(d / "audit.db", ev, len(cmds))
    fed = [lag for t, lag in lags if t <= fed_s]
    print(f"live   {rate} commands/s through the pipeline for {fed_s:.1f} s ({len(cmds) / fed_s:,.0f}/s achieved): "
          f"lag max {max(fed)}, p50 {int(np.median(fed))} commands; 0 again {caught_s - fed_s:.2f} s after the "
          f"pipeline ended")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixture", default="fixtures/zxi-100k")
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--live-only", action="store_true", help="only the live figure (3)")
    args = ap.parse_args()
    ds, cmds = _history(args.fixture)
    ev = Core(ds.assets, ds.symbols, R.DUST_RELEASE, prefault=False).apply(cmds.copy())
    print(f"{args.fixture}: {len(cmds)} commands, {len(ev.orders)} order, {len(ev.trades)} trade, "
          f"{len(ev.balances)} balance events")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        if not args.live_only:
            for batch in (100, 1000, 10_000):
                store_rate(ds, cmds, ev, batch, tmp)
            for batch in (1000, 65536):
                stage_rate(ds, cmds, ev, batch, tmp)
        live(ds, cmds, ev, args.rate, tmp)


if __name__ == "__main__":
    main()
