"""A gateway worker's end of settlement's push stream.

Settlement sends every event of every durable command to every worker, after
the order store holds it (services/answers.py). The worker builds its market
data from them (marketdata/book.py), which its REST routes read and its
WebSocket feed streams (gateway/ws/), and hands the feed the private events.

It starts from the order store: the book of the open orders and the latest
trades, as of the store's applied seq X, read in one transaction. Records of
seqs at or below the market data's seq are dropped (they are in it already);
a PUSH_GAP record (settlement dropped records this worker was not taking)
means: start from the store again.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..engine import records as R

KINDS = (R.PUSH_ORDER, R.PUSH_TRADE, R.PUSH_BALANCE)
TRADES_LOADED = 100_000     # trades read from the store at start (K-lines and the 24 h ticker)


def bodies(recs: np.ndarray, mask: np.ndarray, kind: int) -> np.ndarray:
    """The event records of one kind (those `mask` picks) in a batch of PUSH records."""
    dtype = R.PUSH_BODY[kind]
    return np.ascontiguousarray(recs["body"][mask][:, :dtype.itemsize]).view(dtype).reshape(-1)


class PushStream:
    def __init__(self, store, market, feed=None, now_ms=None):
        """store: storage/order_store.OrderStore; market: marketdata.book.MarketData;
        feed: gateway/ws's Feed (None: market data only)."""
        self.store, self.market, self.feed = store, market, feed
        self.now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        # Called with each batch's entry times (PUSH.ts) once it is applied and handed to the feed:
        # the worker's metrics (services/gateway.py); None: not measured.
        self.observe_applied: Callable[[np.ndarray], None] | None = None

    def load(self) -> None:
        seq, open_orders, trades = self.store.market_state(TRADES_LOADED)
        self.market.load(seq, open_orders, trades)

    def take(self, recs: np.ndarray) -> None:
        self._apply(recs)
        if self.observe_applied is not None:
            self.observe_applied(recs["ts"])

    def _apply(self, recs: np.ndarray) -> None:
        gaps = np.flatnonzero(recs["kind"] == R.PUSH_GAP)
        if len(gaps):
            self.load()
            recs = recs[gaps[-1] + 1:]
        seq, ts_ns, events = self.market.seq, {}, []
        for kind in KINDS:
            mask = recs["kind"] == kind
            e = bodies(recs, mask, kind)
            ts_ns.update(zip(e["seq"].tolist(), recs["ts"][mask].tolist()))
            events.append(e[e["seq"] > seq])
        orders, trades, balances = events
        if not (len(orders) or len(trades) or len(balances)):
            return
        update = self.market.apply(orders, trades, ts_ns)
        if self.feed is not None:
            self.feed.market(update, self.now_ms())
            self.feed.private(orders, trades, balances, ts_ns)
