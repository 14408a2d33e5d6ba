"""The audit store in SQLite (DATA/audit.db): the default, embedded, no service to run.

WAL mode: one writer (the audit stage), readers in other processes (the
history queries) that never block it. A batch is one transaction holding its
rows and the mark, read again inside that transaction: rows above the mark
never exist, so a second writer (a restarted stage while the old one still
finishes) can neither duplicate nor skip a row; the primary keys (see the
package doc) make a re-write a no-op besides. FULL sync: each commit syncs
SQLite's WAL, so the store's writes trickle to the disk the order WAL shares
(storage/order_store.py says why bursts of NORMAL's hurt the order WAL's
fsync); commits are per batch, so few.
"""
from __future__ import annotations

import pathlib
import sqlite3

import numpy as np

from ...engine import records as R
from ...engine.events import records
from ...marketdata.types import INTERVALS_MS, Kline
from . import AuditBatch, AuditStore, Rows, above, check_query, window_ns

_TRADE_COLS = ("trade_id", "seq", "price", "qty", "quote_qty", "buyer_order_id", "seller_order_id",
               "buyer_user_id", "seller_user_id", "buyer_fee", "seller_fee", "symbol", "taker_side")
_ORDER_COLS = ("seq", "order_id", "user_id", "price", "qty", "filled_qty", "avg_price", "last_qty",
               "last_price", "trade_id", "symbol", "kind", "status", "reason", "side", "order_type", "tif")
_BALANCE_COLS = ("seq", "trade_id", "user_id", "amount", "avail", "frozen", "version", "asset", "op", "reason")
_KLINE_COLS = ("symbol_id", "intv", "open_time_ms", "close_time_ms", "open", "high", "low", "close", "volume",
               "quote_volume", "trades", "taker_buy_volume", "taker_buy_quote_volume", "first_trade_id",
               "last_trade_id")


def _cols(names) -> str:
    return ", ".join(f"{n} INTEGER NOT NULL" for n in names)


# trade_id is the rowid: trades arrive in its order, so inserts append.
# Each event table's second index (symbol or user, then entry time) serves
# its query in the order it returns, the primary key riding along in it.
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS trades (trade_id INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL,
    {_cols(_TRADE_COLS[1:])});
CREATE INDEX IF NOT EXISTS trades_by_symbol ON trades (symbol, ts_ns);
CREATE TABLE IF NOT EXISTS order_events (ord INTEGER NOT NULL, ts_ns INTEGER NOT NULL, {_cols(_ORDER_COLS)},
    PRIMARY KEY (seq, ord)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS order_events_by_user ON order_events (user_id, ts_ns);
CREATE TABLE IF NOT EXISTS balance_events (ord INTEGER NOT NULL, ts_ns INTEGER NOT NULL, {_cols(_BALANCE_COLS)},
    PRIMARY KEY (seq, ord)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS balance_events_by_user ON balance_events (user_id, ts_ns);
CREATE TABLE IF NOT EXISTS klines (symbol_id INTEGER NOT NULL, intv TEXT NOT NULL, {_cols(_KLINE_COLS[2:])},
    PRIMARY KEY (symbol_id, intv, open_time_ms)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def _insert(table: str, names) -> str:
    return f"INSERT OR IGNORE INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


_INSERT_TRADE = _insert("trades", ("ts_ns",) + _TRADE_COLS)
_INSERT_ORDER = _insert("order_events", ("ord", "ts_ns") + _ORDER_COLS)
_INSERT_BALANCE = _insert("balance_events", ("ord", "ts_ns") + _BALANCE_COLS)
_INSERT_KLINE = _insert("klines", _KLINE_COLS)


def _table(ev: np.ndarray, names, *front: np.ndarray) -> list[list[int]]:
    """The rows to insert: the `front` columns, then the events' fields `names`, as Python ints."""
    cols = np.empty((len(ev), len(front) + len(names)), np.int64)
    for i, c in enumerate(front):
        cols[:, i] = c
    for i, n in enumerate(names):
        cols[:, len(front) + i] = ev[n]
    return cols.tolist()


class SqliteAuditStore(AuditStore):
    backend = "sqlite"

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.db = sqlite3.connect(str(self.path), timeout=10.0, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        # The user indexes take rows all over (one place per active user): a
        # larger page cache than the default 2 MiB keeps those pages in hand.
        self.db.execute("PRAGMA cache_size=-65536")
        self.db.executescript(_SCHEMA)

    def mark(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'mark'").fetchone()
        return row[0] if row else 0

    def write(self, batch: AuditBatch) -> int:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            mark = self.mark()
            n = 0
            if batch.through_seq > mark:
                part = above(batch, mark)
                if len(part.trades):
                    db.executemany(_INSERT_TRADE, _table(part.trades, _TRADE_COLS, part.trade_ts))
                if len(part.orders):
                    db.executemany(_INSERT_ORDER, _table(part.orders, _ORDER_COLS, part.order_ord, part.order_ts))
                if len(part.balances):
                    db.executemany(_INSERT_BALANCE,
                                   _table(part.balances, _BALANCE_COLS, part.balance_ord, part.balance_ts))
                if part.klines:
                    db.executemany(_INSERT_KLINE, [k[:-1] for k in part.klines])     # all but `closed`
                db.execute("INSERT OR REPLACE INTO meta VALUES ('mark', ?)", (batch.through_seq,))
                n = part.rows
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return n

    # -- queries ------------------------------------------------------------------

    def _events(self, table: str, names, dtype: np.dtype, where: str, args: list, start_ms, end_ms,
                limit: int, key: tuple[str, ...]) -> Rows:
        check_query(limit)
        lo, hi = window_ns(start_ms, end_ms)
        newest = start_ms is None
        order = ", ".join(f"{c} {'DESC' if newest else 'ASC'}" for c in ("ts_ns",) + key)
        got = self.db.execute(f"SELECT ts_ns, {', '.join(names)} FROM {table} WHERE {where} AND ts_ns BETWEEN ? AND ? "
                              f"ORDER BY {order} LIMIT ?", [*args, lo, hi, limit]).fetchall()
        if newest:
            got.reverse()
        ts = np.array([r[0] for r in got], np.int64)
        return Rows(records(dtype, [r[1:] for r in got], names), ts)

    def trades(self, symbol_id: int, start_ms: int | None = None, end_ms: int | None = None,
               limit: int = 500) -> Rows:
        return self._events("trades", _TRADE_COLS, R.TRADE_EVENT, "symbol = ?", [symbol_id], start_ms, end_ms,
                            limit, ("trade_id",))

    def order_events(self, user_id: int, symbol_id: int | None = None, start_ms: int | None = None,
                     end_ms: int | None = None, limit: int = 500) -> Rows:
        where, args = "user_id = ?", [user_id]
        if symbol_id is not None:
            where, args = where + " AND symbol = ?", args + [symbol_id]
        return self._events("order_events", _ORDER_COLS, R.ORDER_EVENT, where, args, start_ms, end_ms, limit,
                            ("seq", "ord"))

    def balance_events(self, user_id: int, asset: int | None = None, start_ms: int | None = None,
                       end_ms: int | None = None, limit: int = 500) -> Rows:
        where, args = "user_id = ?", [user_id]
        if asset is not None:
            where, args = where + " AND asset = ?", args + [asset]
        return self._events("balance_events", _BALANCE_COLS, R.BALANCE_EVENT, where, args, start_ms, end_ms, limit,
                            ("seq", "ord"))

    def klines(self, symbol_id: int, interval: str, start_ms: int | None = None, end_ms: int | None = None,
               limit: int = 500) -> list[Kline]:
        check_query(limit, interval)
        lo, hi = (-(1 << 62) if start_ms is None else start_ms), ((1 << 62) if end_ms is None else end_ms)
        newest = start_ms is None
        got = self.db.execute(f"SELECT {', '.join(_KLINE_COLS)} FROM klines WHERE symbol_id = ? AND intv = ? "
                              f"AND open_time_ms BETWEEN ? AND ? ORDER BY open_time_ms {'DESC' if newest else 'ASC'} "
                              "LIMIT ?", (symbol_id, interval, lo, hi, limit)).fetchall()
        if newest:
            got.reverse()
        assert all(r[3] == r[2] + INTERVALS_MS[interval] - 1 for r in got), "a stored candle's times disagree"
        return [Kline(*r, True) for r in got]

    def close(self) -> None:
        self.db.close()
