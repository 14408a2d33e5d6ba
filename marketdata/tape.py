"""One symbol's trade tape: its recent public trades, its K-lines of every
interval, and the last 24 h of trades for the rolling ticker.

Invariants:
- trade times never go backwards within a symbol: a trade whose command
  entered earlier than the symbol's previous trade (entry times come from
  several gateway workers' clocks, sequencing decides the order) takes the
  previous trade's time. So candles only ever open later, and the same
  trades give the same tape whether applied live or loaded from the store.
- a candle is kept as a list of Kline's fields in Kline's order (it becomes
  a Kline without copying field by field); the newest candle of an interval
  is the only open one, every older one has `closed` set.
- a trade updates the 1 min candle only. Every interval is a whole number of
  minutes, so a longer interval's candle is a fold of 1 min candles: each
  minute is folded into the longer candles holding it when it closes, and a
  longer interval's open candle is completed with the open minute when read.
  Kept candles of a longer interval hold closed minutes only.
- the day window keeps the trades of every minute that ends less than 24 h
  before the newest trade, as columns, with each minute's totals: a ticker is
  exact for any `now_ms` at or after the newest trade's time, and costs two
  bisects, builtin max/min/sum over at most 1441 minutes' totals, and over
  slices of the (at most two) minutes the window's edges cut.
"""
from __future__ import annotations

import bisect
from array import array
from collections import deque
from functools import partial

from .types import INTERVALS_MS, Kline, PublicTrade

DAY_MS = 86_400_000
MINUTE_MS = 60_000
assert min(INTERVALS_MS.values()) == INTERVALS_MS["1m"] == MINUTE_MS
assert all(interval_ms % MINUTE_MS == 0 for interval_ms in INTERVALS_MS.values())

_OPEN_TIME, _OPEN, _HIGH, _LOW, _CLOSE, _VOLUME, _QUOTE_VOLUME, _TRADES, _TAKER_BUY, _TAKER_BUY_QUOTE, _LAST_ID, \
    _CLOSED = (Kline._fields.index(f) for f in (
        "open_time_ms", "open", "high", "low", "close", "volume", "quote_volume", "trades", "taker_buy_volume",
        "taker_buy_quote_volume", "last_trade_id", "closed"))
_SUMMED = (_VOLUME, _QUOTE_VOLUME, _TRADES, _TAKER_BUY, _TAKER_BUY_QUOTE)
_as_kline = partial(tuple.__new__, Kline)


def _fold(candle: list, minute: list) -> None:
    """Append a later minute's trades to a candle."""
    if minute[_HIGH] > candle[_HIGH]:
        candle[_HIGH] = minute[_HIGH]
    if minute[_LOW] < candle[_LOW]:
        candle[_LOW] = minute[_LOW]
    candle[_CLOSE] = minute[_CLOSE]
    for i in _SUMMED:
        candle[i] += minute[i]
    candle[_LAST_ID] = minute[_LAST_ID]


def _candle_of(minute: list, name: str, interval_ms: int) -> list:
    """A candle of a longer interval holding just this minute."""
    open_ms = minute[_OPEN_TIME] - minute[_OPEN_TIME] % interval_ms
    return [minute[0], name, open_ms, open_ms + interval_ms - 1, *minute[_OPEN:_CLOSED], False]


class Tape:
    def __init__(self, symbol_id: int, trades_kept: int, klines_kept: int):
        self.symbol_id = symbol_id
        self.recent: deque[PublicTrade] = deque(maxlen=trades_kept)
        self.candles = {name: deque(maxlen=klines_kept) for name in INTERVALS_MS}
        self.minutes = self.candles["1m"]
        self._longer = [(name, interval_ms, self.candles[name]) for name, interval_ms in INTERVALS_MS.items()
                        if name != "1m"]
        self.day = DayWindow()
        self.last_time_ms = 0

    def add(self, trade_id: int, seq: int, price: int, qty: int, quote_qty: int, time_ms: int,
            taker_is_buyer: bool, buyer_order_id: int, seller_order_id: int) -> PublicTrade:
        """Record one trade (trade id order) at its command's entry time; returns it as published."""
        time_ms = max(time_ms, self.last_time_ms)
        self.last_time_ms = time_ms
        trade = PublicTrade(trade_id, self.symbol_id, price, qty, quote_qty, time_ms, not taker_is_buyer,
                            buyer_order_id, seller_order_id, seq)
        self.recent.append(trade)
        taker_buy, taker_buy_quote = (qty, quote_qty) if taker_is_buyer else (0, 0)
        minute_ms = time_ms - time_ms % MINUTE_MS
        minutes = self.minutes
        if minutes and minutes[-1][_OPEN_TIME] == minute_ms:
            c = minutes[-1]
            if price > c[_HIGH]:
                c[_HIGH] = price
            elif price < c[_LOW]:
                c[_LOW] = price
            c[_CLOSE] = price
            c[_VOLUME] += qty
            c[_QUOTE_VOLUME] += quote_qty
            c[_TRADES] += 1
            c[_TAKER_BUY] += taker_buy
            c[_TAKER_BUY_QUOTE] += taker_buy_quote
            c[_LAST_ID] = trade_id
        else:
            if minutes:
                self._close_minute(minutes[-1], minute_ms)
            minutes.append([self.symbol_id, "1m", minute_ms, minute_ms + MINUTE_MS - 1, price, price, price, price,
                            qty, quote_qty, 1, taker_buy, taker_buy_quote, trade_id, trade_id, False])
        self.day.add(time_ms, trade_id, price, qty, quote_qty)
        return trade

    def _close_minute(self, minute: list, next_minute_ms: int) -> None:
        """A trade opened the minute at next_minute_ms: fold the one it closes into the longer
        intervals' candles, and close those the new minute is not in."""
        minute[_CLOSED] = True
        for name, interval_ms, candles in self._longer:
            open_ms = minute[_OPEN_TIME] - minute[_OPEN_TIME] % interval_ms
            if candles and candles[-1][_OPEN_TIME] == open_ms:
                _fold(candles[-1], minute)
            else:
                candles.append(_candle_of(minute, name, interval_ms))
            if next_minute_ms - next_minute_ms % interval_ms != open_ms:
                candles[-1][_CLOSED] = True

    def _since(self, name: str, interval_ms: int, start_ms: int) -> list[list]:
        """The interval's candles opened at or after start_ms, oldest first, the open one whole."""
        candles = self.candles[name]
        k = len(candles)
        while k > 0 and candles[k - 1][_OPEN_TIME] >= start_ms:
            k -= 1
        out = [candles[i] for i in range(k, len(candles))]
        if name == "1m" or not self.minutes:
            return out
        minute = self.minutes[-1]
        if out and not out[-1][_CLOSED]:        # the open candle's closed minutes, and the open minute
            out[-1] = out[-1].copy()
            _fold(out[-1], minute)
        elif minute[_OPEN_TIME] - minute[_OPEN_TIME] % interval_ms >= start_ms:
            out.append(_candle_of(minute, name, interval_ms))
        return out[-candles.maxlen:]          # the open candle may be one more than is kept

    def open_candles(self) -> list[int]:
        """Each interval's open candle's open time (-1: none yet): where `klines_since` starts."""
        if not self.minutes:
            return [-1] * len(INTERVALS_MS)
        minute_ms = self.minutes[-1][_OPEN_TIME]
        return [minute_ms - minute_ms % interval_ms for interval_ms in INTERVALS_MS.values()]

    def klines_since(self, open_candles: list[int]) -> list[Kline]:
        """Every candle from those `open_candles` named on, oldest first per interval:
        the candles a batch touched, those it closed first."""
        return [_as_kline(c) for (name, interval_ms), start in zip(INTERVALS_MS.items(), open_candles)
                for c in self._since(name, interval_ms, start)]

    def klines(self, name: str, start_ms: int | None, end_ms: int | None, limit: int) -> list[Kline]:
        """Binance's: candles opened in [start, end], oldest first, the first `limit` from
        `start`, or with no start the newest `limit`."""
        if limit <= 0:
            return []
        chosen = [c for c in self._since(name, INTERVALS_MS[name], -1 if start_ms is None else start_ms)
                  if end_ms is None or c[_OPEN_TIME] <= end_ms]
        chosen = chosen[:limit] if start_ms is not None else chosen[-limit:]
        return [_as_kline(c) for c in chosen]


class DayTotals:
    """What a window of trades adds up to: the ticker's trade fields."""
    __slots__ = ("open", "high", "low", "last", "last_qty", "volume", "quote_volume", "trades",
                 "first_trade_id", "last_trade_id")

    def __init__(self):
        self.open = self.high = self.low = self.last = self.last_qty = 0
        self.volume = self.quote_volume = self.trades = 0
        self.first_trade_id = self.last_trade_id = -1

    def add(self, first_trade_id: int, open_: int, last_trade_id: int, last: int, last_qty: int, high: int,
            low: int, volume: int, quote_volume: int, trades: int) -> None:
        """Append a run of trades, all after those added so far."""
        if not self.trades:
            self.open, self.high, self.low, self.first_trade_id = open_, high, low, first_trade_id
        else:
            self.high, self.low = max(self.high, high), min(self.low, low)
        self.last, self.last_qty, self.last_trade_id = last, last_qty, last_trade_id
        self.volume += volume
        self.quote_volume += quote_volume
        self.trades += trades


class _Minute:
    """One minute's trades as columns, in time order: int64 arrays, 40 bytes a trade
    (a day of trades is kept; as Python ints in lists they took some 180)."""
    __slots__ = ("times", "trade_ids", "prices", "qtys", "quote_qtys")

    def __init__(self):
        self.times, self.trade_ids, self.prices, self.qtys, self.quote_qtys = (array("q") for _ in range(5))


class DayWindow:
    """A symbol's trades of the last 24 h by minute: per kept minute (ascending) its
    open time, high, low, volume, quote volume and trade count, and its trades."""

    def __init__(self):
        self.opens: list[int] = []
        self.highs: list[int] = []
        self.lows: list[int] = []
        self.volumes: list[int] = []
        self.quote_volumes: list[int] = []
        self.counts: list[int] = []
        self.minutes: list[_Minute] = []

    def add(self, time_ms: int, trade_id: int, price: int, qty: int, quote_qty: int) -> None:
        """A trade at or after every trade added so far."""
        minute_ms = time_ms - time_ms % MINUTE_MS
        if self.opens and self.opens[-1] == minute_ms:
            if price > self.highs[-1]:
                self.highs[-1] = price
            elif price < self.lows[-1]:
                self.lows[-1] = price
            self.volumes[-1] += qty
            self.quote_volumes[-1] += quote_qty
            self.counts[-1] += 1
        else:
            self._drop_before(time_ms - DAY_MS)
            self.opens.append(minute_ms)
            self.highs.append(price)
            self.lows.append(price)
            self.volumes.append(qty)
            self.quote_volumes.append(quote_qty)
            self.counts.append(1)
            self.minutes.append(_Minute())
        m = self.minutes[-1]
        m.times.append(time_ms)
        m.trade_ids.append(trade_id)
        m.prices.append(price)
        m.qtys.append(qty)
        m.quote_qtys.append(quote_qty)

    def _drop_before(self, cutoff_ms: int) -> None:
        """Forget the minutes that end at or before cutoff_ms: in no window from now on."""
        n = bisect.bisect_left(self.opens, cutoff_ms - MINUTE_MS + 2)
        if n:
            for column in (self.opens, self.highs, self.lows, self.volumes, self.quote_volumes, self.counts,
                           self.minutes):
                del column[:n]

    def totals(self, now_ms: int) -> DayTotals:
        """The trades at times in (now_ms - 24 h, now_ms]: whole minutes from their totals,
        the minutes the window's edges cut from their trades."""
        after = now_ms - DAY_MS
        lo = bisect.bisect_left(self.opens, after - MINUTE_MS + 2)     # the first minute ending after `after`
        hi = bisect.bisect_right(self.opens, now_ms)                   # past the last opening by now_ms
        totals = DayTotals()
        if lo >= hi:
            return totals
        minutes = self.minutes
        head = tail = None
        if minutes[lo].times[0] <= after:
            head, lo = minutes[lo], lo + 1
        if lo < hi and minutes[hi - 1].times[-1] > now_ms:
            tail, hi = minutes[hi - 1], hi - 1
        if head is not None:
            self._add_cut(totals, head, after, now_ms)
        if lo < hi:
            first, last = minutes[lo], minutes[hi - 1]
            totals.add(first.trade_ids[0], first.prices[0], last.trade_ids[-1], last.prices[-1], last.qtys[-1],
                       max(self.highs[lo:hi]), min(self.lows[lo:hi]), sum(self.volumes[lo:hi]),
                       sum(self.quote_volumes[lo:hi]), sum(self.counts[lo:hi]))
        if tail is not None:
            self._add_cut(totals, tail, after, now_ms)
        return totals

    @staticmethod
    def _add_cut(totals: DayTotals, m: _Minute, after: int, now_ms: int) -> None:
        """The trades of one minute at times in (after, now_ms]."""
        lo, hi = bisect.bisect_right(m.times, after), bisect.bisect_right(m.times, now_ms)
        if lo < hi:
            prices = m.prices[lo:hi]
            totals.add(m.trade_ids[lo], prices[0], m.trade_ids[hi - 1], prices[-1], m.qtys[hi - 1], max(prices),
                       min(prices), sum(m.qtys[lo:hi]), sum(m.quote_qtys[lo:hi]), hi - lo)
