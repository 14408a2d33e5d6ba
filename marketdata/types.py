"""What market data is made of, shared by its builder (marketdata/), the REST
routes (both API shapes) and the WebSocket streams.

Every price and quantity is an integer count of units (a price: quote units
per whole base unit at the symbol's price_decimals; a qty: base units; a
quote qty: quote units), times are ms since the epoch. Formatting to decimal
strings happens at the edge (engine/money.py).

Depth update ids are seqs. A symbol's book carries `last_update_id`, the seq
through which it is applied; a diff covers the seqs U..u, where U is the
previous diff's u + 1 for that symbol (so a symbol's diffs are contiguous, as
Binance clients check), and carries the absolute quantity of every level it
changed (0: the level is gone). A snapshot with last_update_id X plus every
diff with u > X gives the live book (spec/API.md).
"""
from __future__ import annotations

from typing import NamedTuple

INTERVALS_MS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
                "1h": 3_600_000, "4h": 14_400_000, "1d": 86_400_000}


class DepthSnapshot(NamedTuple):
    symbol_id: int
    last_update_id: int
    bids: list[tuple[int, int]]     # (price, qty), best (highest) first
    asks: list[tuple[int, int]]     # (price, qty), best (lowest) first


class DepthDiff(NamedTuple):
    symbol_id: int
    first_update_id: int            # U
    last_update_id: int             # u
    time_ms: int                    # the entry time of the command of seq u
    bids: list[tuple[int, int]]     # (price, absolute qty; 0 deletes), any order
    asks: list[tuple[int, int]]


class PublicTrade(NamedTuple):
    trade_id: int
    symbol_id: int
    price: int
    qty: int
    quote_qty: int
    time_ms: int
    buyer_is_maker: bool
    buyer_order_id: int
    seller_order_id: int
    seq: int


class Kline(NamedTuple):
    symbol_id: int
    interval: str                   # a key of INTERVALS_MS
    open_time_ms: int               # a multiple of the interval
    close_time_ms: int              # open_time_ms + interval - 1
    open: int
    high: int
    low: int
    close: int
    volume: int                     # base units
    quote_volume: int               # quote units
    trades: int
    taker_buy_volume: int
    taker_buy_quote_volume: int
    first_trade_id: int
    last_trade_id: int
    closed: bool                    # a later trade has opened a later candle of this interval


class Ticker(NamedTuple):
    """The rolling 24 h window ending at `close_time_ms` (the time it was asked for)."""
    symbol_id: int
    open_time_ms: int
    close_time_ms: int
    open: int                       # first trade's price in the window (0: no trade)
    high: int
    low: int
    last: int                       # last trade's price in the window
    last_qty: int
    volume: int
    quote_volume: int
    trades: int
    first_trade_id: int             # -1: no trade
    last_trade_id: int
    bid_price: int                  # best bid and ask now (0, 0 when that side is empty)
    bid_qty: int
    ask_price: int
    ask_qty: int


class MarketUpdate(NamedTuple):
    """What one `MarketData.apply` changed, for the push streams."""
    diffs: list[DepthDiff]                  # at most one per symbol
    trades: list[PublicTrade]               # in trade id order
    klines: list[Kline]                     # the current candle of every (symbol, interval) a trade touched,
                                            # and the candle it closed, if any (closed=True), first
