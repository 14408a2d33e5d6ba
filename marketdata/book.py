"""MarketData: the core's event stream turned into depth, public trades,
K-lines and the 24 h ticker (marketdata/types.py gives the shapes).

A pure, deterministic state machine: no clock (times are the commands'
entry times, handed in; a ticker is asked for at a time), no floats, no
randomness. The same events give the same state and the same updates, in
any process, live or after `load`.

The book is rebuilt from order events alone, never from a second copy of the
matching rules: an order rests iff its latest event leaves it open (accepted,
partially filled, reduced or moved) and it is a limit GTC order (an IOC or
market taker never rests); it rests at that event's price with qty -
filled_qty open. A refused command's event (rejected) changes no order.

Invariants:
- after `apply`, every level's qty is the sum of the open qty of the orders
  resting there, and a level is listed iff its qty > 0;
- a batch holds every event of its seqs (settlement hands over whole steps), so
  a taker's passing states inside a seq (accepted, then partially filled, then
  expired) are never seen: a diff lists only levels whose qty differs from the
  batch's start, at their final qty;
- update ids are seqs: every book's last_update_id is `seq`; a symbol's diff
  covers U..u with U its previous diff's u + 1 (after `load` at X: X + 1) and u
  the batch's last seq, so a snapshot at X plus the diffs with u > X is the
  live book;
- events of seqs at or below `seq` are skipped, so a batch that overlaps what
  `load` read (or a replayed one) is applied once.
"""
from __future__ import annotations

import bisect

import numpy as np

from ..config import Symbol
from ..engine import records as R
from ..storage.order_store import OrderRow, TradeRow
from .tape import DAY_MS, Tape
from .types import DepthDiff, DepthSnapshot, Kline, MarketUpdate, PublicTrade, Ticker

NS_PER_MS = 1_000_000
_OPEN = frozenset((R.ST_ACCEPTED, R.ST_PARTIALLY_FILLED, R.ST_REDUCED, R.ST_MOVED))


def rests(status: int, order_type: int, tif: int) -> bool:
    """Is an order on the book after an event of this status (of a command not refused)?"""
    return status in _OPEN and order_type == R.TYPE_LIMIT and tif == R.TIF_GTC


class Book:
    """One symbol's levels: open qty by price for each side, and the prices ascending."""
    __slots__ = ("qty", "prices")

    def __init__(self):
        self.qty: tuple[dict[int, int], dict[int, int]] = ({}, {})       # by R.SIDE_*
        self.prices: tuple[list[int], list[int]] = ([], [])

    def top(self, side: int, limit: int) -> list[tuple[int, int]]:
        """The best `limit` levels of a side, best first."""
        if limit <= 0:
            return []
        prices, qty = self.prices[side], self.qty[side]
        best = prices[:-limit - 1:-1] if side == R.SIDE_BUY else prices[:limit]
        return [(p, qty[p]) for p in best]

    def best(self, side: int) -> tuple[int, int]:
        prices = self.prices[side]
        if not prices:
            return 0, 0
        price = prices[-1] if side == R.SIDE_BUY else prices[0]
        return price, self.qty[side][price]


class MarketData:
    """Depth, trades, K-lines and ticker of every configured symbol, from the event stream."""

    def __init__(self, symbols: list[Symbol], trades_kept: int = 1000, klines_kept: int = 1000):
        self._symbol_ids = [s.id for s in symbols]
        self._trades_kept, self._klines_kept = trades_kept, klines_kept
        self._start_empty(0)

    def _start_empty(self, seq: int) -> None:
        """No order, no trade, every book at `seq`."""
        self._books = {s: Book() for s in self._symbol_ids}
        self._tapes = {s: Tape(s, self._trades_kept, self._klines_kept) for s in self._symbol_ids}
        self._resting: dict[int, tuple[int, int, int, int]] = {}   # order id -> (symbol, side, price, open qty)
        self._last_diff_u = dict.fromkeys(self._symbol_ids, seq)    # U - 1 of each symbol's next diff
        self._seq = seq

    @property
    def seq(self) -> int:
        """The last seq applied (or loaded): every book's last_update_id."""
        return self._seq

    # -- input ----------------------------------------------------------------------

    def load(self, seq: int, open_orders: list[OrderRow], trades: list[TradeRow]) -> None:
        """Start again from the order store at its applied seq `seq`: its open orders,
        and its trade rows (two per trade, any order) as far back as the tape
        should reach. Both go through the same paths as `apply`. Whatever was
        applied before is dropped (a gap in the events means starting again)."""
        self._start_empty(seq)
        not_diffed: dict = {}           # a load is a new start, not a change to report
        for o in open_orders:
            assert rests(o.status, o.order_type, o.tif), f"order {o.order_id} is not on the book"
            self._set_order(o.order_id, (o.symbol_id, o.side, o.price, o.qty - o.filled_qty), not_diffed)
        sides: dict[int, list] = {}
        for t in trades:
            assert t.seq <= seq, f"trade {t.trade_id} is of seq {t.seq}, after the store's {seq}"
            sides.setdefault(t.trade_id, [None, None])[t.side] = t
        for trade_id in sorted(sides):
            buy, sell = sides[trade_id]
            self._tapes[buy.symbol_id].add(trade_id, buy.seq, buy.price, buy.qty, buy.quote_qty,
                                           buy.created_ns // NS_PER_MS, bool(buy.taker), buy.order_id,
                                           sell.order_id)

    def apply(self, orders: np.ndarray, trades: np.ndarray, ts_ns: dict[int, int]) -> MarketUpdate:
        """One batch: ORDER_EVENT and TRADE_EVENT records of consecutive seqs in seq
        order, every event of each seq; ts_ns: the entry time (ns) of each seq,
        at least of every seq of these events. The batch runs through
        max(ts_ns). Returns what changed."""
        last = max(ts_ns, default=0)
        mark = self._seq
        if last <= mark:
            assert not any(len(e) and e["seq"][-1] > mark for e in (orders, trades)), "events with no entry time"
            return MarketUpdate([], [], [])
        levels_before: dict[tuple[int, int, int], int] = {}
        for (seq, order_id, _user, price, qty, filled, _avg, _lq, _lp, _tid, symbol, _kind, status, _reason,
             side, order_type, tif) in orders.tolist():
            if seq <= mark or status == R.ST_REJECTED:
                continue
            assert seq <= last, f"an order event of seq {seq}, which has no entry time"
            now = (symbol, side, price, qty - filled) if rests(status, order_type, tif) else None
            self._set_order(order_id, now, levels_before)
        public: list[PublicTrade] = []
        open_candles: dict[int, list[int]] = {}
        for (trade_id, seq, price, qty, quote_qty, buyer_order_id, seller_order_id, _bu, _su, _bf, _sf, symbol,
             taker_side, _reserved) in trades.tolist():
            if seq <= mark:
                continue
            tape = self._tapes[symbol]
            if symbol not in open_candles:
                open_candles[symbol] = tape.open_candles()
            public.append(tape.add(trade_id, seq, price, qty, quote_qty, ts_ns[seq] // NS_PER_MS,
                                   taker_side == R.SIDE_BUY, buyer_order_id, seller_order_id))
        self._seq = last
        klines = [k for symbol in sorted(open_candles) for k in self._tapes[symbol].klines_since(open_candles[symbol])]
        return MarketUpdate(self._diffs(levels_before, last, ts_ns[last] // NS_PER_MS), public, klines)

    def _set_order(self, order_id: int, now: tuple[int, int, int, int] | None,
                   levels_before: dict[tuple[int, int, int], int]) -> None:
        """Order `order_id` now rests as `now` (symbol, side, price, open qty), or not (None)."""
        assert now is None or now[3] > 0, f"order {order_id} rests with nothing open"
        was = self._resting.get(order_id)
        if was == now:
            return
        if now is None:
            del self._resting[order_id]
        else:
            self._resting[order_id] = now
        if was is not None:
            self._add_to_level(*was[:3], -was[3], levels_before)
        if now is not None:
            self._add_to_level(*now[:3], now[3], levels_before)

    def _add_to_level(self, symbol: int, side: int, price: int, qty: int,
                      levels_before: dict[tuple[int, int, int], int]) -> None:
        """Add qty (< 0: take) to a level, noting its qty before the batch on first touch."""
        book = self._books[symbol]
        levels = book.qty[side]
        old = levels.get(price, 0)
        levels_before.setdefault((symbol, side, price), old)
        new = old + qty
        assert new >= 0, f"level {symbol}/{side}/{price} would hold {new}"
        prices = book.prices[side]
        if new:
            if not old:
                bisect.insort(prices, price)
            levels[price] = new
        else:
            del levels[price]
            del prices[bisect.bisect_left(prices, price)]

    def _diffs(self, levels_before: dict[tuple[int, int, int], int], last: int, time_ms: int) -> list[DepthDiff]:
        """One diff per symbol with a level that ends the batch other than it began it."""
        changed: dict[int, tuple[list, list]] = {}
        for (symbol, side, price), before in levels_before.items():
            qty = self._books[symbol].qty[side].get(price, 0)
            if qty != before:
                changed.setdefault(symbol, ([], []))[side].append((price, qty))
        diffs = []
        for symbol in sorted(changed):
            bids, asks = changed[symbol]
            diffs.append(DepthDiff(symbol, self._last_diff_u[symbol] + 1, last, time_ms, bids, asks))
            self._last_diff_u[symbol] = last
        return diffs

    # -- queries --------------------------------------------------------------------

    def depth(self, symbol_id: int, limit: int) -> DepthSnapshot:
        book = self._books[symbol_id]
        return DepthSnapshot(symbol_id, self._seq, book.top(R.SIDE_BUY, limit), book.top(R.SIDE_SELL, limit))

    def trades(self, symbol_id: int, limit: int) -> list[PublicTrade]:
        """The newest `limit` trades kept, oldest first."""
        recent = self._tapes[symbol_id].recent
        return list(recent)[-limit:] if limit > 0 else []

    def klines(self, symbol_id: int, interval: str, start_ms: int | None, end_ms: int | None,
               limit: int) -> list[Kline]:
        """Candles opened in [start_ms, end_ms], oldest first: the first `limit` from
        start_ms, or with no start_ms the newest `limit` (Binance's semantics)."""
        return self._tapes[symbol_id].klines(interval, start_ms, end_ms, limit)

    def ticker(self, symbol_id: int, now_ms: int) -> Ticker:
        """The rolling 24 h ending at now_ms: trades at times in (now_ms - 24 h, now_ms]."""
        tape = self._tapes[symbol_id]
        day = tape.day.totals(now_ms)
        return Ticker(symbol_id, now_ms - DAY_MS, now_ms, day.open, day.high, day.low, day.last, day.last_qty,
                      day.volume, day.quote_volume, day.trades, day.first_trade_id, day.last_trade_id,
                      *self.best(symbol_id))

    def best(self, symbol_id: int) -> tuple[int, int, int, int]:
        """bid_price, bid_qty, ask_price, ask_qty; 0s for an empty side."""
        book = self._books[symbol_id]
        return (*book.best(R.SIDE_BUY), *book.best(R.SIDE_SELL))
