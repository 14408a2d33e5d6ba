"""The order store: what `xinf serve`'s queries read, kept by settlement.

SQLite in WAL mode under the data dir (DATA/orders.db): settlement is the one
writer of orders, trades and balances; the gateway workers read (a reader
never blocks the writer) and add the text of client order ids (`cids`).

Settlement applies each step's events in one transaction whose last write is
the high-water mark `applied_seq`, and only then answers the gateways: so
once a client holds an answer, every query reflects that command (read your
writes). Recovery replays the WAL from a snapshot; events of seqs at or below
the mark are skipped, so nothing is applied twice and nothing is lost.
Rows are derived from events only, never from a second copy of the rules.
"""
from __future__ import annotations

import hashlib
import pathlib
import sqlite3
from typing import NamedTuple

import numpy as np

from ..engine import records as R
from ..engine.events import Events

# An order's status in the store: the ME's last word on it. ST_REDUCED and
# ST_MOVED leave it open, as NEW or PARTIALLY_FILLED by what is filled.
OPEN = (R.ST_ACCEPTED, R.ST_PARTIALLY_FILLED)
OPEN_SQL = f"status IN {OPEN}"       # the open-orders index's predicate: queries say it the same way

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS orders (
    order_id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, symbol_id INTEGER NOT NULL,
    side INTEGER NOT NULL, order_type INTEGER NOT NULL, tif INTEGER NOT NULL,
    price INTEGER NOT NULL, qty INTEGER NOT NULL, quote_qty INTEGER NOT NULL,
    filled_qty INTEGER NOT NULL, avg_price INTEGER NOT NULL, status INTEGER NOT NULL,
    reason INTEGER NOT NULL, cid_hash INTEGER NOT NULL,
    created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL, seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS orders_by_user ON orders (user_id, order_id);
CREATE INDEX IF NOT EXISTS open_orders ON orders (user_id, status) WHERE {OPEN_SQL};
CREATE TABLE IF NOT EXISTS trades (
    trade_id INTEGER NOT NULL, side INTEGER NOT NULL, order_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL, symbol_id INTEGER NOT NULL, price INTEGER NOT NULL,
    qty INTEGER NOT NULL, quote_qty INTEGER NOT NULL, fee INTEGER NOT NULL,
    fee_asset_id INTEGER NOT NULL, taker INTEGER NOT NULL, created_ns INTEGER NOT NULL,
    seq INTEGER NOT NULL, PRIMARY KEY (trade_id, side));
CREATE INDEX IF NOT EXISTS trades_by_user ON trades (user_id, trade_id);
CREATE INDEX IF NOT EXISTS trades_by_order ON trades (order_id);
CREATE TABLE IF NOT EXISTS balances (
    user_id INTEGER NOT NULL, asset_id INTEGER NOT NULL, avail INTEGER NOT NULL,
    frozen INTEGER NOT NULL, PRIMARY KEY (user_id, asset_id));
CREATE TABLE IF NOT EXISTS cids (
    user_id INTEGER NOT NULL, cid_hash INTEGER NOT NULL, cid TEXT NOT NULL,
    PRIMARY KEY (user_id, cid_hash));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class OrderRow(NamedTuple):
    order_id: int
    user_id: int
    symbol_id: int
    side: int
    order_type: int
    tif: int
    price: int
    qty: int
    quote_qty: int
    filled_qty: int
    avg_price: int
    status: int
    reason: int
    cid_hash: int
    created_ns: int
    updated_ns: int
    seq: int


class TradeRow(NamedTuple):
    trade_id: int
    side: int
    order_id: int
    user_id: int
    symbol_id: int
    price: int
    qty: int
    quote_qty: int
    fee: int
    fee_asset_id: int
    taker: int
    created_ns: int
    seq: int


def connect(path, checkpoints: bool = True) -> sqlite3.Connection:
    """checkpoints False: this connection never checkpoints SQLite's WAL itself (a
    checkpoint syncs the database file, milliseconds inside settlement's step or a
    request); app/serve.py's supervisor does it beside them (`checkpoint`)."""
    db = sqlite3.connect(str(path), timeout=5.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    # FULL: each commit syncs SQLite's WAL, a little at a time. Under NORMAL
    # the commits left dirty pages that the kernel wrote back in bursts, and
    # the order WAL's fdatasync on the same disk waited behind them: alone its
    # p99 is 0.5 ms, beside a NORMAL writer 7 ms, beside a FULL one 1.1 ms.
    # Acknowledgements wait on those syncs (bench gateway, 500 orders/s,
    # every_batch: p99 38-54 ms under NORMAL, 8.5-10.6 ms under FULL).
    db.execute("PRAGMA synchronous=FULL")
    if not checkpoints:
        db.execute("PRAGMA wal_autocheckpoint=0")
    return db


def checkpoint(db: sqlite3.Connection) -> None:
    """Move what SQLite's WAL holds into the database file, blocking no reader or writer."""
    db.execute("PRAGMA wal_checkpoint(PASSIVE)")


def cid_hash(cid: str) -> int:
    """A client order id's 63-bit hash, never 0 (the command's `cid` field)."""
    h = int.from_bytes(hashlib.blake2b(cid.encode(), digest_size=8).digest(), "little") >> 1
    return h or 1


class OrderStore:
    """The writer's side (settlement) and the readers' (gateway workers)."""

    def __init__(self, path, symbols_base_quote: dict[int, tuple[int, int]], checkpoints: bool = True):
        """symbols_base_quote: symbol id -> (base asset id, quote asset id), for fee assets;
        checkpoints: as `connect`'s."""
        self.path = pathlib.Path(path)
        self.db = connect(self.path, checkpoints)
        self.db.executescript(_SCHEMA)
        self.assets_of = symbols_base_quote
        self.open_rows: dict[int, OrderRow] = {}  # the writer's open orders as last written (saves a read)
        self.mark: int | None = None              # the writer's applied_seq

    # -- writer -----------------------------------------------------------------

    def applied_seq(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'applied_seq'").fetchone()
        return row[0] if row else 0

    def apply(self, ev: Events, cmds: np.ndarray) -> dict[int, OrderRow]:
        """Apply the events of `cmds` (sequenced commands, consecutive seqs: they
        carry what events do not, the entry time, a market buy's budget, the
        cid hash) in one transaction ending with the mark at their last seq;
        events at or below the mark are skipped. Returns the order rows
        written, by id."""
        if self.mark is None:
            self.mark = self.applied_seq()      # one writer: read once, then kept
        mark = self.mark
        through = int(cmds["seq"][-1]) if len(cmds) else 0
        first = int(cmds["seq"][0]) if len(cmds) else 0
        rows = self._order_rows(ev.orders[ev.orders["seq"] > mark], cmds, first)
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            if rows:
                db.executemany(f"INSERT OR REPLACE INTO orders VALUES ({','.join('?' * len(OrderRow._fields))})",
                               list(rows.values()))
            t = ev.trades[ev.trades["seq"] > mark]
            if len(t):
                db.executemany(f"INSERT OR IGNORE INTO trades VALUES ({','.join('?' * len(TradeRow._fields))})",
                               self._trade_rows(t, cmds, first))
            b = ev.balances[(ev.balances["seq"] > mark) & (ev.balances["reason"] == 0)]
            if len(b):
                db.executemany("INSERT OR REPLACE INTO balances VALUES (?,?,?,?)",
                               zip(b["user_id"].tolist(), b["asset"].tolist(), b["avail"].tolist(),
                                   b["frozen"].tolist()))
            if through > mark:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('applied_seq', ?)", (through,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self.open_rows.clear()
            self.mark = None
            raise
        self.mark = max(mark, through)
        for order_id, row in rows.items():
            if row.status in OPEN:
                self.open_rows[order_id] = row
            else:
                self.open_rows.pop(order_id, None)
        return rows

    def _order_rows(self, ev: np.ndarray, cmds: np.ndarray, first: int) -> dict[int, OrderRow]:
        """The new state of every order these events touch (later events win)."""
        rows: dict[int, OrderRow | None] = {}
        for e in ev.tolist():
            (seq, order_id, user_id, price, qty, filled, avg, _lq, _lp, _tid, symbol, kind, status, reason,
             side, otype, tif) = e
            if status == R.ST_REJECTED and kind != R.CMD_PLACE:
                continue                # a refused cancel, reduce or move changes no order
            row = rows.get(order_id)
            if row is None:
                if kind == R.CMD_PLACE and seq == order_id:
                    old = None          # placed by this very seq (the sequencer's id): new
                else:
                    old = self.open_rows.get(order_id) or self.order(order_id)
                if old and status == R.ST_REJECTED:
                    continue            # a place refused for naming an existing order's id changes it not
                row = rows[order_id] = old
            c = cmds[seq - first]
            ts = int(c["ts"])
            if row is None:             # first seen: its place (accepted or refused)
                row = OrderRow(order_id, user_id, symbol, side, otype, tif, price,
                               0 if qty == R.QTY_UNLIMITED else qty, int(c["amount"]), filled, avg, status, reason,
                               int(c["cid"]), ts, ts, seq)
            if status in (R.ST_REDUCED, R.ST_MOVED):
                status = R.ST_PARTIALLY_FILLED if filled else R.ST_ACCEPTED
            rows[order_id] = row._replace(price=price, qty=row.qty if qty == R.QTY_UNLIMITED else qty,
                                          filled_qty=filled, avg_price=avg, status=status, reason=reason,
                                          updated_ns=ts)
        return rows

    def _trade_rows(self, t: np.ndarray, cmds: np.ndarray, first: int) -> list[tuple]:
        out = []
        for (tid, seq, price, qty, quote, b_oid, s_oid, b_uid, s_uid, b_fee, s_fee, symbol, taker_side,
             _r) in t.tolist():
            base, quote_asset = self.assets_of[symbol]
            ts = int(cmds[seq - first]["ts"])
            out.append((tid, R.SIDE_BUY, b_oid, b_uid, symbol, price, qty, quote, b_fee, base,
                        int(taker_side == R.SIDE_BUY), ts, seq))
            out.append((tid, R.SIDE_SELL, s_oid, s_uid, symbol, price, qty, quote, s_fee, quote_asset,
                        int(taker_side == R.SIDE_SELL), ts, seq))
        return out

    # -- readers ------------------------------------------------------------------

    def add_cid(self, user_id: int, h: int, cid: str) -> None:
        """The text of a client order id, written by the gateway before the command is sent (an
        orphan, if the command never lands, is harmless: it only names a hash)."""
        self.db.execute("INSERT OR IGNORE INTO cids VALUES (?, ?, ?)", (user_id, h, cid))

    def cid_text(self, user_id: int, h: int) -> str | None:
        if not h:
            return None
        row = self.db.execute("SELECT cid FROM cids WHERE user_id = ? AND cid_hash = ?", (user_id, h)).fetchone()
        return row[0] if row else None

    def order(self, order_id: int) -> OrderRow | None:
        row = self.db.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        return OrderRow(*row) if row else None

    def order_by_cid(self, user_id: int, h: int) -> OrderRow | None:
        """The user's newest order with this client order id."""
        row = self.db.execute("SELECT * FROM orders WHERE user_id = ? AND cid_hash = ? ORDER BY order_id DESC "
                              "LIMIT 1", (user_id, h)).fetchone()
        return OrderRow(*row) if row else None

    def orders(self, user_id: int, symbol_id: int | None, open_only: bool, limit: int) -> list[OrderRow]:
        q, args = "SELECT * FROM orders WHERE user_id = ?", [user_id]
        if symbol_id is not None:
            q += " AND symbol_id = ?"
            args.append(symbol_id)
        if open_only:
            q += f" AND {OPEN_SQL}"
        q += " ORDER BY order_id DESC LIMIT ?"
        args.append(limit)
        return [OrderRow(*r) for r in self.db.execute(q, args)]

    def trades(self, user_id: int, symbol_id: int | None, limit: int, order_id: int | None = None,
               seq: int | None = None) -> list[TradeRow]:
        # An order's trades through its own index: by user, SQLite would walk every trade of the
        # user newest first to find them (a fills read grew with the user's history).
        q = "SELECT * FROM trades INDEXED BY trades_by_order WHERE order_id = ?" if order_id is not None else \
            "SELECT * FROM trades WHERE 1"
        args = [order_id] if order_id is not None else []
        q += " AND user_id = ?"
        args.append(user_id)
        for col, v in (("symbol_id", symbol_id), ("seq", seq)):
            if v is not None:
                q += f" AND {col} = ?"
                args.append(v)
        q += " ORDER BY trade_id DESC LIMIT ?"
        args.append(limit)
        return [TradeRow(*r) for r in self.db.execute(q, args)]

    def market_state(self, trades_limit: int) -> tuple[int, list[OrderRow], list[TradeRow]]:
        """What market data starts from, read in one transaction: the applied seq, every open
        order, and the newest `trades_limit` trades (both rows of each)."""
        self.db.execute("BEGIN")
        try:
            seq = self.applied_seq()
            open_orders = [OrderRow(*r) for r in self.db.execute(f"SELECT * FROM orders WHERE {OPEN_SQL}")]
            trades = [TradeRow(*r) for r in self.db.execute(
                "SELECT * FROM trades WHERE trade_id > (SELECT COALESCE(MAX(trade_id), 0) FROM trades) - ?",
                (trades_limit,))]
        finally:
            self.db.execute("COMMIT")
        return seq, open_orders, trades

    def balances(self, user_id: int) -> dict[int, tuple[int, int]]:
        return {a: (av, fr) for a, av, fr in
                self.db.execute("SELECT asset_id, avail, frozen FROM balances WHERE user_id = ?", (user_id,))}

    def close(self) -> None:
        self.db.close()
