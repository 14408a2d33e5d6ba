"""Market data whose K-lines reach back past what a worker keeps in memory.

A worker's MarketData keeps the newest candles of each interval (and rebuilds
them from the order store's latest trades at start); every closed candle is
in the audit store (storage/audit/), written by the audit stage. A K-line
query takes what memory holds and, where the window reaches further back,
the audit store's closed candles before the oldest one in memory.
"""
from __future__ import annotations

from .types import Kline


class WithHistory:
    """The read side of marketdata.book.MarketData (what the REST routes ask), K-lines from both."""

    def __init__(self, market, audit):
        """market: marketdata.book.MarketData; audit: a storage.audit.AuditStore."""
        self.market, self.audit = market, audit

    def depth(self, symbol_id: int, limit: int):
        return self.market.depth(symbol_id, limit)

    def trades(self, symbol_id: int, limit: int):
        return self.market.trades(symbol_id, limit)

    def ticker(self, symbol_id: int, now_ms: int):
        return self.market.ticker(symbol_id, now_ms)

    def best(self, symbol_id: int):
        return self.market.best(symbol_id)

    def klines(self, symbol_id: int, interval: str, start_ms: int | None, end_ms: int | None,
               limit: int) -> list[Kline]:
        """As MarketData.klines (Binance's semantics: the first `limit` from start_ms, or the newest
        `limit`), over the audit store's closed candles and then memory's."""
        live = self.market.klines(symbol_id, interval, start_ms, end_ms, limit)
        if limit <= 0:
            return live
        before = live[0].open_time_ms - 1 if live else end_ms          # older than memory's oldest
        if before is not None and end_ms is not None:
            before = min(before, end_ms)
        if start_ms is None:
            if len(live) >= limit:
                return live
            return self.audit.klines(symbol_id, interval, None, before, limit - len(live)) + live
        if live and live[0].open_time_ms <= start_ms:
            return live                                                 # memory reaches back far enough
        return (self.audit.klines(symbol_id, interval, start_ms, before, limit) + live)[:limit]
