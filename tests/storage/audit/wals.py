"""Data dirs laid out as `xinf serve` lays them (DATA/wal/, storage/wal_dir.py),
their WAL written by the project's own WAL writer from a fixture, snapshots
cut by the ST core at batch ends; and what an ST replay of that WAL emits,
which the audit store must hold exactly.

Commands get seq 1..n and entry time T0 + seq seconds (a fixture's are 0),
so a history of 1494 commands spans about 25 minutes of K-lines.
"""
from __future__ import annotations

import pathlib
import shutil

import numpy as np

from xinfinity.config import Capacity
from xinfinity.edge.dataset import load_dataset
from xinfinity.engine import records as R
from xinfinity.engine.core import Core
from xinfinity.engine.events import Events
from xinfinity.engine.wal import RECORD_BYTES
from xinfinity.marketdata.book import MarketData
from xinfinity.marketdata.types import INTERVALS_MS
from xinfinity.storage.audit import differences
from xinfinity.storage.snapshot import seq_of, snapshots_in, write_snapshot
from xinfinity.storage.wal_dir import SNAPSHOTS, WAL_FILE, WalDir

ROOT = pathlib.Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "fixtures" / "zxi-cancel-1294"
T0_NS = 1_700_000_000 * 10**9
BIG = 1 << 40


def history():
    """(dataset, its deposits and commands with seqs and entry times)."""
    ds = load_dataset(FIXTURE)
    cmds = np.concatenate([ds.deposits, ds.commands])
    cmds["seq"] = np.arange(1, len(cmds) + 1)
    cmds["ts"] = T0_NS + cmds["seq"] * 10**9
    return ds, cmds


def write_wal(data_dir: pathlib.Path, ds, cmds: np.ndarray, snapshots_at=(), batch: int = 100) -> pathlib.Path:
    """DATA/wal with every command, and a snapshot after the batch ending at each seq of snapshots_at."""
    wal = WalDir(data_dir / "wal", ds.path, "release", len(ds.deposits), "off")
    core = Core(ds.assets, ds.symbols, R.DUST_RELEASE, Capacity(), prefault=False)
    initial = Core(ds.assets, ds.symbols, R.DUST_RELEASE, Capacity(), prefault=False).state_arrays()
    for i in range(0, len(cmds), batch):
        chunk = cmds[i:i + batch]
        wal.append(chunk)
        core.run(chunk.copy(), lambda ev: None)
        last = int(chunk["seq"][-1])
        if last in snapshots_at:
            write_snapshot(data_dir / "wal" / SNAPSHOTS, last, core.state_arrays(), initial)
    wal.close()
    return data_dir / "wal" / WAL_FILE


def cut_copy(full: pathlib.Path, data_dir: pathlib.Path, records: int) -> pathlib.Path:
    """A copy of the data dir `full` whose WAL holds only its first `records`
    (and the snapshots within them): a WAL the journal is still writing."""
    shutil.copytree(full, data_dir)
    wal = data_dir / "wal" / WAL_FILE
    with open(wal, "r+b") as f:
        f.truncate(records * RECORD_BYTES)
    for snap in snapshots_in(data_dir / "wal" / SNAPSHOTS):
        if seq_of(snap) > records:
            shutil.rmtree(snap)
    return wal


def append_bytes(wal: pathlib.Path, full: pathlib.Path, upto: int) -> None:
    """Append the full WAL's bytes to `wal` up to byte `upto` (a record may be left half written)."""
    data = full.read_bytes()[wal.stat().st_size:upto]
    with open(wal, "ab") as f:
        f.write(data)


def replay_st(ds, cmds) -> Events:
    """The events of every command, from the ST core."""
    return Core(ds.assets, ds.symbols, R.DUST_RELEASE, Capacity(), prefault=False).apply(cmds.copy())


def assert_store_holds(store, ev: Events, cmds: np.ndarray, through: int) -> None:
    """The store holds exactly the events of seqs 1..through, each once, with its command's entry time."""
    found = differences(store, ev, cmds["ts"], through)
    assert not found, "\n".join(found)


def closed_klines(ds, ev: Events, cmds: np.ndarray) -> dict:
    """(symbol, interval) -> the candles the whole history closes, oldest first, by MarketData itself."""
    md = MarketData(ds.symbols)
    update = md.apply(np.zeros(0, R.ORDER_EVENT), ev.trades, dict(zip(cmds["seq"].tolist(), cmds["ts"].tolist())))
    out = {(s.id, i): [] for s in ds.symbols for i in INTERVALS_MS}
    for k in update.klines:
        if k.closed:
            out[(k.symbol_id, k.interval)].append(k)
    return out


def assert_klines(store, want: dict) -> None:
    for (symbol, interval), candles in want.items():
        assert store.klines(symbol, interval, limit=BIG) == candles, (symbol, interval)
