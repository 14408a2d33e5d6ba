"""What `MarketData.apply` costs per order event and per trade, at batches of 1
and of 100 events: decides where market data is built. Not a test (pytest does
not collect it); run it alone:

    .venv/bin/python -m tests.marketdata.bench_apply

Events come from the real core: a book of resting limit orders on 2 symbols
kept busy by places and cancels (one order event per seq), and IOC takers that
each fill one maker (one trade per seq). Each figure is the best of 5 runs over
the same events, and is reported only if the market data built from them equals
the core's book and trades.
"""
from __future__ import annotations

import random
import time

import numpy as np

from xinfinity.config import Capacity
from xinfinity.engine import records as R
from xinfinity.engine.core import Core
from xinfinity.marketdata.book import MarketData

from tests import cmds as C
from tests.marketdata.traffic import ASSETS, SYMBOLS, T0_MS

N_SEQS = 20_000
USERS = range(1, 9)


def _stream(seed: int) -> tuple[Core, np.ndarray, np.ndarray, dict[int, int]]:
    """The events of places and cancels of resting orders (book busy, no crossing), then of
    IOC takers each filling one maker; ts_ns of every seq (1 ms apart)."""
    rng = random.Random(seed)
    core = Core(ASSETS, SYMBOLS, capacity=Capacity(max_users=64, max_orders=1 << 16, max_buckets=64), prefault=False)
    core.apply(C.batch([C.deposit(u, a.id, 10**15) for u in USERS for a in ASSETS]))
    cmds, open_ids, next_id = [], [], 1
    for _ in range(N_SEQS):
        if open_ids and rng.random() < 0.45:
            order_id, user, symbol = open_ids.pop(rng.randrange(len(open_ids)))
            cmds.append(C.cancel(order_id, user, symbol))
        else:
            user, symbol, buy = rng.choice(USERS), rng.randrange(2), rng.random() < 0.5
            price = rng.randrange(900, 1000) if buy else rng.randrange(1001, 1100)
            cmds.append(C.limit(next_id, user, "buy" if buy else "sell", price, rng.randrange(1, 50), symbol))
            open_ids.append((next_id, user, symbol))
            next_id += 1
    for _ in range(N_SEQS):     # a maker at the touch, then a taker that fills it (2 seqs, one trade)
        user, symbol = rng.choice(USERS), rng.randrange(2)
        cmds.append(C.limit(next_id, user, "sell", 1000, 10, symbol))
        cmds.append(C.ioc(next_id + 1, user % 8 + 1, "buy", 1000, 10, symbol))
        next_id += 2
    cmds = C.batch(cmds)
    first = core.counters()["next_seq"]
    ev = core.apply(cmds)
    ts_ns = {first + i: (T0_MS + i) * 1_000_000 for i in range(len(cmds))}
    return core, ev.orders, ev.trades, ts_ns


def _batches(events: np.ndarray, size: int, ts_ns: dict[int, int]) -> list[tuple[np.ndarray, dict]]:
    """Events in batches of `size` whole seqs' events (each seq here has one event of the kind timed)."""
    out = []
    for i in range(0, len(events), size):
        part = events[i:i + size]
        out.append((part, {s: ts_ns[s] for s in part["seq"].tolist()}))
    return out


def _time(feed: list[tuple], kind: str, reference: MarketData) -> float:
    """Best-of-5 µs per event of applying `feed` to a fresh MarketData that first got `reference`'s setup."""
    no_orders, no_trades = np.zeros(0, R.ORDER_EVENT), np.zeros(0, R.TRADE_EVENT)
    best = float("inf")
    n = sum(len(events) for events, _ in feed)
    for _ in range(5):
        md = MarketData(SYMBOLS)
        t0 = time.perf_counter()
        for events, ts in feed:
            if kind == "orders":
                md.apply(events, no_trades, ts)
            else:
                md.apply(no_orders, events, ts)
        best = min(best, time.perf_counter() - t0)
    for s in SYMBOLS:      # the figure stands only if what was built is right
        if kind == "orders":
            assert md.depth(s.id, 10**6) == reference.depth(s.id, 10**6)._replace(last_update_id=md.seq)
        else:
            assert md.trades(s.id, 1000) == reference.trades(s.id, 1000)
            assert md.klines(s.id, "1m", None, None, 1000) == reference.klines(s.id, "1m", None, None, 1000)
    return best / n * 1e6


def main() -> None:
    core, orders, trades, ts_ns = _stream(seed=7)
    reference = MarketData(SYMBOLS)
    reference.apply(orders, trades, ts_ns)
    for s in SYMBOLS:
        levels = ({}, {})
        for sym, side, price, _oid, _uid, qty, filled, _lock in core.open_orders().tolist():
            if sym == s.id:
                levels[side][price] = levels[side].get(price, 0) + qty - filled
        assert (reference.depth(s.id, 10**6).bids, reference.depth(s.id, 10**6).asks) == (
            sorted(levels[0].items(), reverse=True), sorted(levels[1].items())), "market data is not the core's book"
    place_cancel = orders[:N_SEQS]
    assert len(np.unique(place_cancel["seq"])) == len(place_cancel) and len(trades) == N_SEQS
    # the order events of place/cancel only: the trade phase's are timed with the whole stream below
    order_reference = MarketData(SYMBOLS)
    order_reference.apply(place_cancel, np.zeros(0, R.TRADE_EVENT), ts_ns)
    print(f"{len(place_cancel)} order events (places, cancels; {len(reference.depth(0, 10**6).bids)} bid levels "
          f"on symbol 0), {len(trades)} trades")
    for size in (1, 100):
        per_order = _time(_batches(place_cancel, size, ts_ns), "orders", order_reference)
        per_trade = _time(_batches(trades, size, ts_ns), "trades", reference)
        print(f"batch of {size:>3} events: {per_order:5.2f} µs per order event, {per_trade:5.2f} µs per trade")
    md = reference
    for name, call, n in (("depth(20)", lambda: md.depth(0, 20), 20_000),
                          ("ticker", lambda: md.ticker(0, T0_MS + 3 * N_SEQS), 2_000),
                          ("klines(1m, 500)", lambda: md.klines(0, "1m", None, None, 500), 2_000)):
        t0 = time.perf_counter()
        for _ in range(n):
            call()
        print(f"{name}: {(time.perf_counter() - t0) / n * 1e6:.1f} µs")


if __name__ == "__main__":
    main()
