"""The audit store: every event of the durable history, for queries of the past.

The audit stage (services/audit.py) replays the order WAL and writes, batch by
batch, the order, trade and balance events of consecutive seqs and the K-line
candles that closed, each batch with the store's high-water mark: the last seq
whose events are all in the store. A backend writes a batch's rows and its
mark so that no reader or restart ever sees the mark ahead of its rows:

- SQLite (storage/audit/sqlite.py, the default, DATA/audit.db): the rows and
  the mark in one transaction.
- TDengine (storage/audit/tdengine.py, when `persistence.tdengine_dsn` is set):
  no transactions, so the rows first and the mark last; a crash in between
  leaves rows above the mark, which the rewrite after the restart lands on
  again (a row's key is fixed by the log, and TDengine keeps one row per key).

Invariants of every backend (tests/storage/audit/test_contract.py):

- `write(batch)` skips everything at or below the mark, so the same batch
  twice, or batches that overlap, write each row once; a batch that starts
  above mark + 1 is refused (it would leave a gap).
- A row's key is what identifies its event for ever: a trade by trade_id; an
  order or a balance event by (seq, ord), its place among the events of its
  kind of the same seq. The core emits a seq's events in one fixed order
  (replay is deterministic, DESIGN.md section 2), so the ord-th event of a
  seq is the same event at every replay; nothing in an event itself is unique
  (a place that fills twice emits two order events of one seq and one order,
  a refused deposit repeats the balance's version).
- A K-line is keyed by (symbol, interval, open time) and only closed candles
  are written: a closed candle never changes, so writing it again is a no-op.
- Queries return rows in time order (the entry time of their command, then
  their place in the log), the newest `limit` of them when no start is given
  and the oldest `limit` from the start otherwise (as Binance's history
  endpoints do); times are ms since the epoch, both ends inclusive.

Amounts are integers of the smallest unit, as in the events.
"""
from __future__ import annotations

import abc
import pathlib
from typing import NamedTuple

import numpy as np

from ...config import Config
from ...engine import records as R
from ...marketdata.types import INTERVALS_MS, Kline

AUDIT_DB = "audit.db"           # under the data dir (SQLite)
ORD_BITS = 24                   # events of one kind per seq: fewer than 2**24 (a key is seq << 24 | ord)


class AuditBatch(NamedTuple):
    """Every event of the seqs first_seq..through_seq, in emission order."""
    first_seq: int
    through_seq: int
    entry_ns: np.ndarray        # int64: the entry time of each seq's command, seq first_seq + i at i
    orders: np.ndarray          # R.ORDER_EVENT
    trades: np.ndarray          # R.TRADE_EVENT
    balances: np.ndarray        # R.BALANCE_EVENT
    klines: list[Kline]         # candles closed by these seqs' trades (closed=True)


class Rows(NamedTuple):
    """What an event query found: the events as they were emitted, and each one's entry time."""
    events: np.ndarray          # R.ORDER_EVENT, R.TRADE_EVENT or R.BALANCE_EVENT
    ts_ns: np.ndarray           # int64


class Part(NamedTuple):
    """The part of a batch above a mark, with each row's entry time and ord (see the module doc)."""
    orders: np.ndarray
    order_ts: np.ndarray
    order_ord: np.ndarray
    trades: np.ndarray
    trade_ts: np.ndarray
    balances: np.ndarray
    balance_ts: np.ndarray
    balance_ord: np.ndarray
    klines: list[Kline]

    @property
    def rows(self) -> int:
        return len(self.orders) + len(self.trades) + len(self.balances) + len(self.klines)


def ordinals(seqs: np.ndarray) -> np.ndarray:
    """Each event's place among those of its seq (seqs non-decreasing)."""
    first = np.searchsorted(seqs, seqs, side="left")
    return np.arange(len(seqs), dtype=np.int64) - first


def above(batch: AuditBatch, mark: int) -> Part:
    """The batch's rows of seqs above `mark`. Raises ValueError naming what is
    wrong with a batch that breaks AuditBatch's shape or would leave a gap."""
    first, through = batch.first_seq, batch.through_seq
    if through < first or len(batch.entry_ns) != through - first + 1:
        raise ValueError(f"audit batch of seqs {first}..{through} has {len(batch.entry_ns)} entry times")
    if first > mark + 1:
        raise ValueError(f"audit batch starts at seq {first} but the store holds seqs through {mark} only: "
                         f"seqs {mark + 1}..{first - 1} would be missing")
    entry = np.asarray(batch.entry_ns, np.int64)
    parts = []
    for name, ev, dtype in (("orders", batch.orders, R.ORDER_EVENT), ("trades", batch.trades, R.TRADE_EVENT),
                            ("balances", batch.balances, R.BALANCE_EVENT)):
        if ev.dtype != dtype:
            raise ValueError(f"audit batch {name} have dtype {ev.dtype}, not records' {name} event layout")
        seqs = ev["seq"]
        if len(ev) and (seqs[0] < first or seqs[-1] > through or np.any(np.diff(seqs) < 0)):
            raise ValueError(f"audit batch {name}: seqs not in order within {first}..{through}")
        ords = ordinals(seqs)
        if len(ords) and int(ords.max()) >> ORD_BITS:
            raise ValueError(f"audit batch {name}: more than 2**{ORD_BITS} events of one seq")
        keep = seqs > mark
        parts.append((ev[keep], entry[seqs[keep] - first], ords[keep]))
    (o, o_ts, o_ord), (t, t_ts, _), (b, b_ts, b_ord) = parts
    bad = [k for k in batch.klines if not k.closed or k.interval not in INTERVALS_MS]
    if bad:
        raise ValueError(f"audit batch: K-lines must be closed and of a known interval: {bad[0]}")
    return Part(o, o_ts, o_ord, t, t_ts, b, b_ts, b_ord, list(batch.klines) if through > mark else [])


def window_ns(start_ms: int | None, end_ms: int | None) -> tuple[int, int]:
    """A query's [start_ms, end_ms] (ms, inclusive; None: open) as inclusive ns bounds."""
    lo = -(1 << 62) if start_ms is None else start_ms * 1_000_000
    hi = (1 << 62) if end_ms is None else (end_ms + 1) * 1_000_000 - 1
    return lo, hi


def check_query(limit: int, interval: str | None = None) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    if interval is not None and interval not in INTERVALS_MS:
        raise ValueError(f"K-line interval {interval!r} is not one of {list(INTERVALS_MS)}")


class AuditStore(abc.ABC):
    """One writer (the audit stage) and any number of readers (the history queries)."""

    backend: str                # "sqlite" | "tdengine"

    @abc.abstractmethod
    def mark(self) -> int:
        """The last seq whose events are all in the store (0: none)."""

    @abc.abstractmethod
    def write(self, batch: AuditBatch) -> int:
        """Write the batch's rows above the mark and move the mark to its
        through_seq; returns the rows written (0 when the mark was there already)."""

    @abc.abstractmethod
    def trades(self, symbol_id: int, start_ms: int | None = None, end_ms: int | None = None,
               limit: int = 500) -> Rows:
        """The symbol's trades (R.TRADE_EVENT)."""

    @abc.abstractmethod
    def order_events(self, user_id: int, symbol_id: int | None = None, start_ms: int | None = None,
                     end_ms: int | None = None, limit: int = 500) -> Rows:
        """The user's order events (R.ORDER_EVENT), of one symbol or all."""

    @abc.abstractmethod
    def balance_events(self, user_id: int, asset: int | None = None, start_ms: int | None = None,
                       end_ms: int | None = None, limit: int = 500) -> Rows:
        """The user's balance events (R.BALANCE_EVENT), of one asset or all."""

    @abc.abstractmethod
    def klines(self, symbol_id: int, interval: str, start_ms: int | None = None, end_ms: int | None = None,
               limit: int = 500) -> list[Kline]:
        """The symbol's closed candles of `interval` whose open time is in the window."""

    @abc.abstractmethod
    def close(self) -> None:
        ...


def differences(store: AuditStore, ev, ts_of_seq: np.ndarray, through: int) -> list[str]:
    """How the store differs from holding exactly the events of seqs 1..through, each once, with its
    command's entry time (ts_of_seq[seq - 1]): ev is a replay's Events of at least those seqs.
    Empty: it holds exactly those (the crash drills' and the contract tests' check)."""
    big = 1 << 40

    def want(a, keep):
        a = a[keep & (a["seq"] <= through)]
        return a, ts_of_seq[a["seq"] - 1]
    found = []
    if store.mark() != through:
        found.append(f"the store's mark is {store.mark()}, not {through}")
    users = sorted(set(ev.orders["user_id"].tolist()) | set(ev.balances["user_id"].tolist()))
    checks = [(f"trades of symbol {s}", store.trades(s, limit=big), want(ev.trades, ev.trades["symbol"] == s))
              for s in sorted(set(ev.orders["symbol"].tolist()))]
    checks += [(f"order events of user {u}", store.order_events(u, limit=big), want(ev.orders, ev.orders["user_id"] == u))
               for u in users]
    checks += [(f"balance events of user {u}", store.balance_events(u, limit=big),
                want(ev.balances, ev.balances["user_id"] == u)) for u in users]
    rows = 0
    for what, got, (events, ts) in checks:
        if len(got.events) != len(events):
            found.append(f"{what}: {len(got.events)} rows where the replay has {len(events)}")
        elif got.events.tobytes() != events.tobytes():
            found.append(f"{what}: rows differ from the replay's events")
        elif got.ts_ns.tolist() != ts.tolist():
            found.append(f"{what}: entry times differ from the WAL's")
        rows += len(events)
    if rows != sum(int(np.sum(a["seq"] <= through)) for a in ev):
        found.append("some of the replay's events are of no user or symbol queried")
    return found


def open_audit_store(config: Config, data_dir) -> AuditStore:
    """TDengine when `persistence.tdengine_dsn` is set, else SQLite at DATA/audit.db."""
    dsn = config.persistence.tdengine_dsn
    if dsn:
        from .tdengine import TdengineAuditStore
        return TdengineAuditStore(dsn)
    from .sqlite import SqliteAuditStore
    return SqliteAuditStore(pathlib.Path(data_dir) / AUDIT_DB)
