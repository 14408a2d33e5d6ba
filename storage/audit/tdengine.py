"""The audit store in TDengine, through taospy (`pip install 'xinfinity[tdengine]'`).

Laid out as 0xInfinity lays it out (src/persistence/schema.rs: super tables
with a subtable per symbol, balances per user and asset, K-lines per symbol
and interval), in one database (the DSN's path, default `xinfinity`):

    trades    TAGS (symbol_id)            subtable trades_<symbol>
    orders    TAGS (symbol_id)            subtable orders_<symbol>     (order events)
    balances  TAGS (user_id, asset_id)    subtable balances_<user>_<asset>
    klines    TAGS (symbol_id, intv)      subtable klines_<symbol>_<interval>
    audit_mark                            a plain table: one row per batch, the mark is its maximum

Unlike 0xInfinity's (which stamps rows with NOW), a row's timestamp is its
command's entry time (nanosecond precision) and its second, primary-key
column is its key in the log (trade_id; seq << 24 | ord for order and balance
events; see the package doc), a composite key (TDengine 3.3+). TDengine keeps
one row per key, so a row written again overwrites itself: there are no
transactions, a batch's rows go first and its mark last, and the rows a crash
left above the mark are simply written again after the restart. Readers may
see such rows before the mark covers them (they are durable events all the
same). One writer at a time: the mark is read before the rows are written.

The DSN: `http://user:password@host:6041/db` (the REST API through
taosAdapter, `taosrest`, pure Python) or `taos://user:password@host:6030/db`
(the native client, which needs TDengine's libtaos installed).
"""
from __future__ import annotations

import re
import time
import urllib.parse
from typing import Callable

import numpy as np

from ...engine import records as R
from ...engine.events import records
from ...marketdata.types import INTERVALS_MS, Kline
from . import ORD_BITS, AuditBatch, AuditStore, Rows, above, check_query, window_ns

STATEMENT_BYTES = 512 * 1024        # TDengine takes statements up to 1 MB (maxSQLLength)

_TRADE_COLS = ("trade_id", "seq", "price", "qty", "quote_qty", "buyer_order_id", "seller_order_id",
               "buyer_user_id", "seller_user_id", "buyer_fee", "seller_fee", "taker_side")
_ORDER_COLS = ("seq", "order_id", "user_id", "price", "qty", "filled_qty", "avg_price", "last_qty",
               "last_price", "trade_id", "kind", "status", "reason", "side", "order_type", "tif")
_BALANCE_COLS = ("seq", "trade_id", "amount", "avail", "frozen", "version", "op", "reason")
_KLINE_COLS = ("close_time_ms", "open", "high", "low", "close", "volume", "quote_volume", "trade_count",
               "taker_buy_volume", "taker_buy_quote_volume", "first_trade_id", "last_trade_id")


def _q(names) -> str:
    """Column names quoted (some, like `close`, are TDengine keywords)."""
    return ", ".join(f"`{n}`" for n in names)


def _defs(names) -> str:
    return ", ".join(f"`{n}` BIGINT" for n in names)


class TdengineClient:
    """The two calls the store needs, over either of taospy's connections."""

    def __init__(self, conn, fetch: Callable):
        self.conn, self.fetch = conn, fetch

    def execute(self, sql: str) -> None:
        self.conn.execute(sql)

    def rows(self, sql: str) -> list:
        return list(self.fetch(self.conn.query(sql)))

    def close(self) -> None:
        self.conn.close()


def database_of(dsn: str) -> str:
    """The database a DSN names (its path; default xinfinity). Raises ValueError if it is not a plain name."""
    db = urllib.parse.urlsplit(dsn).path.strip("/") or "xinfinity"
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", db):
        raise ValueError(f"persistence.tdengine_dsn: database name {db!r} is not a plain identifier")
    return db


def connect(dsn: str) -> TdengineClient:
    """A client for the DSN. Raises ValueError naming a DSN it cannot use."""
    u = urllib.parse.urlsplit(dsn)
    user = urllib.parse.unquote(u.username) if u.username else "root"
    password = urllib.parse.unquote(u.password) if u.password else "taosdata"
    try:
        if u.scheme in ("http", "https"):
            import taosrest
            conn = taosrest.connect(url=f"{u.scheme}://{u.hostname}:{u.port or 6041}", user=user, password=password,
                                    timeout=30, convert_timestamp=False)
            return TdengineClient(conn, lambda result: result.data)
        if u.scheme == "taos":
            import taos
            conn = taos.connect(host=u.hostname, port=u.port or 6030, user=user, password=password)
            return TdengineClient(conn, lambda result: result.fetch_all())
    except ImportError as e:
        raise ValueError(f"persistence.tdengine_dsn is set but taospy cannot be loaded ({e}); "
                         "pip install 'xinfinity[tdengine]'") from None
    raise ValueError(f"persistence.tdengine_dsn {u.scheme}://...: use http(s)://user:password@host:6041/db "
                     "(REST) or taos://user:password@host:6030/db (native)")


def _values(table: np.ndarray) -> list[str]:
    return ["(" + ",".join(map(str, row)) + ")" for row in table.tolist()]


class TdengineAuditStore(AuditStore):
    backend = "tdengine"

    def __init__(self, dsn: str, client: TdengineClient | None = None):
        """client: an already connected one (tests), for the DSN's database."""
        self.db = db = database_of(dsn)
        self.client = client = client or connect(dsn)
        for sql in (f"CREATE DATABASE IF NOT EXISTS {db} PRECISION 'ns' KEEP 36500d",
                    f"CREATE STABLE IF NOT EXISTS {db}.trades (`ts` TIMESTAMP, `trade_id` BIGINT PRIMARY KEY, "
                    f"{_defs(_TRADE_COLS[1:])}) TAGS (`symbol_id` INT)",
                    f"CREATE STABLE IF NOT EXISTS {db}.orders (`ts` TIMESTAMP, `event_key` BIGINT PRIMARY KEY, "
                    f"{_defs(_ORDER_COLS)}) TAGS (`symbol_id` INT)",
                    f"CREATE STABLE IF NOT EXISTS {db}.balances (`ts` TIMESTAMP, `event_key` BIGINT PRIMARY KEY, "
                    f"{_defs(_BALANCE_COLS)}) TAGS (`user_id` BIGINT, `asset_id` INT)",
                    f"CREATE STABLE IF NOT EXISTS {db}.klines (`ts` TIMESTAMP, {_defs(_KLINE_COLS)}) "
                    "TAGS (`symbol_id` INT, `intv` NCHAR(8))",
                    f"CREATE TABLE IF NOT EXISTS {db}.audit_mark (`ts` TIMESTAMP, `through_seq` BIGINT)"):
            client.execute(sql)

    def mark(self) -> int:
        got = self.client.rows(f"SELECT MAX(`through_seq`) FROM {self.db}.audit_mark")
        return int(got[0][0]) if got and got[0][0] is not None else 0

    def write(self, batch: AuditBatch) -> int:
        mark = self.mark()
        if batch.through_seq <= mark:
            return 0
        p = above(batch, mark)
        db, rows = self.db, []         # (subtable clause, values), grouped by subtable
        t = p.trades
        table = np.column_stack([p.trade_ts] + [t[c].astype(np.int64) for c in _TRADE_COLS])
        for s in np.unique(t["symbol"]).tolist():
            rows.append((f"{db}.trades_{s} USING {db}.trades TAGS ({s})", _values(table[t["symbol"] == s])))
        o = p.orders
        key = (o["seq"].astype(np.int64) << ORD_BITS) | p.order_ord
        table = np.column_stack([p.order_ts, key] + [o[c].astype(np.int64) for c in _ORDER_COLS])
        for s in np.unique(o["symbol"]).tolist():
            rows.append((f"{db}.orders_{s} USING {db}.orders TAGS ({s})", _values(table[o["symbol"] == s])))
        b = p.balances
        key = (b["seq"].astype(np.int64) << ORD_BITS) | p.balance_ord
        table = np.column_stack([p.balance_ts, key] + [b[c].astype(np.int64) for c in _BALANCE_COLS])
        cell = b["user_id"].astype(np.int64) * 65536 + b["asset"]
        for c in np.unique(cell).tolist():
            user, asset = divmod(c, 65536)
            rows.append((f"{db}.balances_{user}_{asset} USING {db}.balances TAGS ({user}, {asset})",
                         _values(table[cell == c])))
        for k in p.klines:
            values = (k.open_time_ms * 1_000_000, k.close_time_ms, k.open, k.high, k.low, k.close, k.volume,
                      k.quote_volume, k.trades, k.taker_buy_volume, k.taker_buy_quote_volume, k.first_trade_id,
                      k.last_trade_id)
            rows.append((f"{db}.klines_{k.symbol_id}_{k.interval} USING {db}.klines TAGS ({k.symbol_id}, "
                         f"'{k.interval}')", ["(" + ",".join(map(str, values)) + ")"]))
        for sql in statements(rows):
            self.client.execute(sql)
        self.client.execute(f"INSERT INTO {db}.audit_mark VALUES ({time.time_ns()}, {batch.through_seq})")
        return p.rows

    # -- queries ------------------------------------------------------------------

    def _events(self, stable: str, cols, names, dtype, where: list[str], start_ms, end_ms, limit: int,
                key: str) -> Rows:
        check_query(limit)
        lo, hi = window_ns(start_ms, end_ms)
        if start_ms is not None:
            where.append(f"`ts` >= {lo}")
        if end_ms is not None:
            where.append(f"`ts` <= {hi}")
        way = "DESC" if start_ms is None else "ASC"
        got = self.client.rows(f"SELECT CAST(`ts` AS BIGINT), {_q(cols)} FROM {self.db}.{stable} "
                               f"WHERE {' AND '.join(where)} ORDER BY `ts` {way}, `{key}` {way} LIMIT {int(limit)}")
        if start_ms is None:
            got.reverse()
        ts = np.array([r[0] for r in got], np.int64)
        return Rows(records(dtype, [r[1:] for r in got], names), ts)

    def trades(self, symbol_id: int, start_ms: int | None = None, end_ms: int | None = None,
               limit: int = 500) -> Rows:
        cols = _TRADE_COLS[:-1] + ("symbol_id", "taker_side")
        names = _TRADE_COLS[:-1] + ("symbol", "taker_side")
        return self._events("trades", cols, names, R.TRADE_EVENT, [f"`symbol_id` = {int(symbol_id)}"],
                            start_ms, end_ms, limit, "trade_id")

    def order_events(self, user_id: int, symbol_id: int | None = None, start_ms: int | None = None,
                     end_ms: int | None = None, limit: int = 500) -> Rows:
        where = [f"`user_id` = {int(user_id)}"]
        if symbol_id is not None:
            where.append(f"`symbol_id` = {int(symbol_id)}")
        return self._events("orders", _ORDER_COLS + ("symbol_id",), _ORDER_COLS + ("symbol",), R.ORDER_EVENT,
                            where, start_ms, end_ms, limit, "event_key")

    def balance_events(self, user_id: int, asset: int | None = None, start_ms: int | None = None,
                       end_ms: int | None = None, limit: int = 500) -> Rows:
        where = [f"`user_id` = {int(user_id)}"]
        if asset is not None:
            where.append(f"`asset_id` = {int(asset)}")
        return self._events("balances", _BALANCE_COLS + ("user_id", "asset_id"),
                            _BALANCE_COLS + ("user_id", "asset"), R.BALANCE_EVENT, where, start_ms, end_ms, limit,
                            "event_key")

    def klines(self, symbol_id: int, interval: str, start_ms: int | None = None, end_ms: int | None = None,
               limit: int = 500) -> list[Kline]:
        check_query(limit, interval)
        where = [f"`symbol_id` = {int(symbol_id)}", f"`intv` = '{interval}'"]
        if start_ms is not None:
            where.append(f"`ts` >= {start_ms * 1_000_000}")
        if end_ms is not None:
            where.append(f"`ts` <= {end_ms * 1_000_000}")
        way = "DESC" if start_ms is None else "ASC"
        got = self.client.rows(f"SELECT CAST(`ts` AS BIGINT), {_q(_KLINE_COLS)} FROM {self.db}.klines "
                               f"WHERE {' AND '.join(where)} ORDER BY `ts` {way} LIMIT {int(limit)}")
        if start_ms is None:
            got.reverse()
        out = [Kline(symbol_id, interval, int(r[0]) // 1_000_000, *map(int, r[1:]), True) for r in got]
        assert all(k.close_time_ms == k.open_time_ms + INTERVALS_MS[interval] - 1 for k in out), \
            "a stored candle's times disagree"
        return out

    def close(self) -> None:
        self.client.close()


def statements(rows: list[tuple[str, list[str]]], limit: int = STATEMENT_BYTES) -> list[str]:
    """INSERT statements of at most about `limit` bytes for (subtable clause,
    values) groups: TDengine writes many subtables in one statement."""
    out, parts, size = [], [], 0
    for head, values in rows:
        opened = False
        for v in values:
            if parts and size + len(v) > limit:
                out.append("INSERT INTO " + " ".join(parts))
                parts, size, opened = [], 0, False
            if not opened:
                parts.append(f"{head} VALUES")
                size += len(head) + 8
                opened = True
            parts.append(v)
            size += len(v) + 1
    if parts:
        out.append("INSERT INTO " + " ".join(parts))
    return out
