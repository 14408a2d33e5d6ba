"""Stream names and keys of both WebSocket protocols, and the units they are
formatted with.

A subscription is a stream key in the hub (gateway/ws/hub.py); the protocol
sessions parse what a client asks for into keys, and the feed
(gateway/ws/feed.py) publishes to the same keys:

    0xInfinity (spec/API.md section 1)     key
      market.depth.<SYM>                   the topic itself (a str)
      market.trade.<SYM>, market.ticker.<SYM>, market.kline.<interval>.<SYM>
      order.update, trade, balance.update  (ZX, topic, user_id): private, after a login
    Binance (section 2)                    key
      <s>@<stream> on /ws/...              (RAW, name): the event as is
      <s>@<stream> on /stream              (COMBINED, name): {"stream": name, "data": event}
      the user data of a ws-api
      subscription                         (USER, user_id, subscriptionId)

Binance stream names take the symbol in lowercase without separator
(`btcusdt`); the streams: `@trade`, `@aggTrade`, `@kline_<interval>`,
`@miniTicker`, `@ticker`, `@bookTicker`, `@depth` (diffs each 1000 ms),
`@depth@100ms`, `@depth<5|10|20>` (the top of the book each 1000 ms) and
`@depth<5|10|20>@100ms`. Intervals are marketdata/types.py's.

Amounts leave as decimal strings of engine/money.py, as each API's REST
routes write them: a price with the symbol's price decimals, a quantity with
the base asset's, a quote amount with the quote asset's; truncated to the
display decimals on 0xInfinity's streams (gateway/routes.py), every decimal
on Binance's (gateway/binance/routes.py), so a depth diff lands on the levels
of the REST snapshot it follows.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from ...engine.money import format_decimal
from ...marketdata.types import INTERVALS_MS
from ..model import cost, mean_price

ZX, RAW, COMBINED, USER = "zx", "raw", "stream", "user"
ZX_PRIVATE = ("order.update", "trade", "balance.update")
ZX_PUBLIC = ("depth", "trade", "ticker", "kline")
DEPTH_WINDOWS_MS = (100, 1000)          # the Binance depth streams' update speeds
PARTIAL_LEVELS = (5, 10, 20)

_BINANCE = re.compile(r"(?P<s>[a-z0-9]+)@(?P<stream>trade|aggTrade|miniTicker|ticker|bookTicker|kline_(?P<i>\w+)|"
                      r"depth(?P<levels>5|10|20)?(?P<fast>@100ms)?)\Z")


class StreamError(ValueError):
    """A topic or stream name that is not one of ours; the message names what is wrong."""


class SymbolUnits(NamedTuple):
    id: int
    name: str                   # BTC_USDT
    binance: str                # BTCUSDT
    stream: str                 # btcusdt
    price_decimals: int
    price_display: int
    base_id: int
    base_decimals: int
    base_display: int
    quote_id: int
    quote_decimals: int
    quote_display: int


class Catalog:
    """Symbols and assets by every name the streams use, and their formatting: to the display
    decimals as the 0xInfinity REST routes (display=True), or to every decimal of the unit, as
    the Binance REST API (gateway/binance/routes.py) and so its streams (display=False)."""

    def __init__(self, assets, symbols, display: bool = True):
        self.display = display
        self.assets = {a.id: a for a in assets}
        self.symbols: dict[int, SymbolUnits] = {}
        for s in symbols:
            base, quote = self.assets[s.base_asset_id], self.assets[s.quote_asset_id]
            self.symbols[s.id] = SymbolUnits(
                s.id, s.name, s.name.replace("_", ""), s.name.replace("_", "").lower(), s.price_decimals,
                s.price_display_decimals, base.id, base.decimals, base.display_decimals, quote.id, quote.decimals,
                quote.display_decimals)
        self.by_name = {s.name: s for s in self.symbols.values()}
        self.by_stream = {s.stream: s for s in self.symbols.values()}
        assert len(self.by_stream) == len(self.symbols), "two symbols share a Binance name"

    def price(self, units: int, s: SymbolUnits) -> str:
        return format_decimal(units, s.price_decimals, s.price_display if self.display else None)

    def qty(self, units: int, s: SymbolUnits) -> str:
        return format_decimal(units, s.base_decimals, s.base_display if self.display else None)

    def quote(self, units: int, s: SymbolUnits) -> str:
        return format_decimal(units, s.quote_decimals, s.quote_display if self.display else None)

    def amount(self, units: int, asset_id: int) -> str:
        a = self.assets[asset_id]
        return format_decimal(units, a.decimals, a.display_decimals if self.display else None)

    @staticmethod
    def cost(price: int, qty: int, s: SymbolUnits) -> int:
        return cost(price, qty, s.price_decimals, s.base_decimals, s.quote_decimals)

    @staticmethod
    def mean_price(quote_units: int, qty: int, s: SymbolUnits) -> int:
        return mean_price(quote_units, qty, s.price_decimals, s.base_decimals, s.quote_decimals)

    @staticmethod
    def percent(change: int, base: int, decimals: int) -> str:
        """change / base in percent with `decimals` decimals, truncated toward zero (0 without a base)."""
        magnitude = abs(change) * 100 * 10**decimals // base if base else 0
        return format_decimal(-magnitude if change < 0 else magnitude, decimals)

    # -- names -------------------------------------------------------------------
    def zx_topic(self, topic: str, user_id: int) -> tuple:
        """(key, owner) of a 0xInfinity topic; owner is the user of a private one (0: public)."""
        if topic in ZX_PRIVATE:
            if not user_id:
                raise StreamError(f"topic {topic} is private: log in first (op login, or ?token=)")
            return (ZX, topic, user_id), user_id
        parts = topic.split(".")
        if len(parts) < 3 or parts[0] != "market" or parts[1] not in ZX_PUBLIC:
            raise StreamError(f"topic {topic!r} is unknown: expected market.depth|trade|ticker.<SYMBOL>, "
                              f"market.kline.<interval>.<SYMBOL> or one of {', '.join(ZX_PRIVATE)}")
        if parts[1] == "kline":
            if len(parts) != 4 or parts[2] not in INTERVALS_MS:
                raise StreamError(f"topic {topic!r}: expected market.kline.<interval>.<SYMBOL> with an interval "
                                  f"of {', '.join(INTERVALS_MS)}")
        elif len(parts) != 3:
            raise StreamError(f"topic {topic!r}: expected market.{parts[1]}.<SYMBOL>")
        if parts[-1] not in self.by_name:
            raise StreamError(f"topic {topic!r}: symbol {parts[-1]} is unknown")
        return topic, 0

    def binance_stream(self, name: str) -> SymbolUnits:
        """The symbol of a valid Binance stream name, or StreamError naming what is wrong."""
        m = _BINANCE.match(name) if isinstance(name, str) else None
        if m is None:
            raise StreamError(f"stream {name!r} is unknown: expected <symbol>@trade|aggTrade|kline_<interval>|"
                              "miniTicker|ticker|bookTicker|depth|depth@100ms|depth<5|10|20>[@100ms], "
                              "the symbol in lowercase")
        s = self.by_stream.get(m["s"])
        if s is None:
            raise StreamError(f"stream {name!r}: symbol {m['s']} is unknown")
        if m["i"] is not None and m["i"] not in INTERVALS_MS:
            raise StreamError(f"stream {name!r}: interval {m['i']} is not one of {', '.join(INTERVALS_MS)}")
        return s


def depth_stream(stream: str, window_ms: int, levels: int = 0) -> str:
    """The Binance name of a depth stream: diffs (levels 0) or the top `levels` of the book."""
    return f"{stream}@depth{levels or ''}{'@100ms' if window_ms == 100 else ''}"
