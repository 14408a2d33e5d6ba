"""Market data built from the real core's events, step by step, against what it
must equal (tests/marketdata/traffic.py drives the numba core):

- the previous snapshot plus the step's diffs is the new snapshot (full depth),
  and no diff lists a level at the qty it already had;
- each symbol's diffs are contiguous: U = its previous diff's u + 1, u = the
  step's last seq, at most one diff per symbol per step;
- the book is the core's own resting orders (`Core.open_orders`), aggregated;
- the step's public trades, the K-lines it reports, every kept candle, the kept
  trades and the ticker equal a brute-force recomputation from all trades so far;
- after `load` from the order store's rows (storage/order_store.py) at any
  step, the same later steps give the same state and updates as a MarketData
  that applied everything from the start.

On failure hypothesis prints the falsifying scenario and a `@reproduce_failure`
blob; `--hypothesis-seed=N` replays a run.
"""
from __future__ import annotations

import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import pytest

from xinfinity.engine import records as R
from xinfinity.marketdata.book import MarketData
from xinfinity.marketdata.types import INTERVALS_MS, Kline, PublicTrade
from xinfinity.storage.order_store import OrderStore

from tests.marketdata.traffic import DAY_MS, SCENARIO, SYMBOLS, USERS, run

TRADES_KEPT = 5
KLINES_KEPT = 6
EVERY_LEVEL = 10**6
SETTINGS = settings(deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SYMBOL_IDS = [s.id for s in SYMBOLS]
# The order store syncs every commit: on tmpfs that costs nothing.
_FAST_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None


class AllTrades:
    """Every trade so far; market data recomputed from scratch at each question."""

    def __init__(self):
        self.trades: list[PublicTrade] = []
        self.taker_is_buyer: dict[int, bool] = {}
        self.last_ms = dict.fromkeys(SYMBOL_IDS, 0)

    def add(self, trades, ts_ns: dict[int, int]) -> list[PublicTrade]:
        added = []
        for (trade_id, seq, price, qty, quote_qty, buyer, seller, *_, symbol, taker_side, _r) in trades.tolist():
            # a symbol's trade times never go back (tape.py): an earlier entry time takes the last one
            self.last_ms[symbol] = max(ts_ns[seq] // 1_000_000, self.last_ms[symbol])
            added.append(PublicTrade(trade_id, symbol, price, qty, quote_qty, self.last_ms[symbol],
                                     taker_side == R.SIDE_SELL, buyer, seller, seq))
            self.taker_is_buyer[trade_id] = taker_side == R.SIDE_BUY
        self.trades += added
        return added

    def of(self, symbol: int) -> list[PublicTrade]:
        return [t for t in self.trades if t.symbol_id == symbol]

    def candles(self, symbol: int, interval: str) -> list[Kline]:
        """Every candle of the symbol's trades, oldest first."""
        iv = INTERVALS_MS[interval]
        buckets: dict[int, list[PublicTrade]] = {}
        for t in self.of(symbol):
            buckets.setdefault(t.time_ms - t.time_ms % iv, []).append(t)
        out = []
        for open_ms, ts in buckets.items():
            taker_buys = [t for t in ts if self.taker_is_buyer[t.trade_id]]
            out.append(Kline(symbol, interval, open_ms, open_ms + iv - 1, ts[0].price, max(t.price for t in ts),
                             min(t.price for t in ts), ts[-1].price, sum(t.qty for t in ts),
                             sum(t.quote_qty for t in ts), len(ts), sum(t.qty for t in taker_buys),
                             sum(t.quote_qty for t in taker_buys), ts[0].trade_id, ts[-1].trade_id,
                             open_ms != max(buckets)))
        return out

    def ticker_trade_fields(self, symbol: int, now_ms: int) -> tuple:
        """The Ticker's fields from open to last_trade_id."""
        ts = [t for t in self.of(symbol) if now_ms - DAY_MS < t.time_ms <= now_ms]
        if not ts:
            return 0, 0, 0, 0, 0, 0, 0, 0, -1, -1
        return (ts[0].price, max(t.price for t in ts), min(t.price for t in ts), ts[-1].price, ts[-1].qty,
                sum(t.qty for t in ts), sum(t.quote_qty for t in ts), len(ts), ts[0].trade_id, ts[-1].trade_id)


def _core_book(core, symbol: int) -> tuple[list, list]:
    """The core's resting orders of a symbol as depth levels, best first."""
    levels = ({}, {})
    for o in core.open_orders().tolist():
        sym, side, price, _oid, _uid, qty, filled, _lock = o
        if sym == symbol:
            levels[side][price] = levels[side].get(price, 0) + qty - filled
    return (sorted(levels[R.SIDE_BUY].items(), reverse=True), sorted(levels[R.SIDE_SELL].items()))


def _check_step(md: MarketData, update, before: dict, last_u: dict, step, core, all_trades: AllTrades,
                added: list[PublicTrade], newest_open: dict) -> None:
    last = max(step.ts_ns)
    assert md.seq == last
    seen = set()
    for d in update.diffs:
        assert d.symbol_id not in seen, "two diffs of one symbol in one step"
        seen.add(d.symbol_id)
        assert (d.first_update_id, d.last_update_id, d.time_ms) == (last_u[d.symbol_id] + 1, last,
                                                                    step.ts_ns[last] // 1_000_000)
        last_u[d.symbol_id] = last
        for side, entries in ((0, d.bids), (1, d.asks)):
            book = before[d.symbol_id][side]
            assert len({p for p, _ in entries}) == len(entries), "a level twice in one diff"
            for price, qty in entries:
                assert book.get(price, 0) != qty, f"diff lists level {price} at the qty it had"
                if qty:
                    book[price] = qty
                else:
                    del book[price]
    for s in SYMBOL_IDS:
        snap = md.depth(s, EVERY_LEVEL)
        assert snap.last_update_id == last
        bids, asks = _core_book(core, s)
        assert (snap.bids, snap.asks) == (bids, asks), f"symbol {s}: the book is not the core's"
        assert _levels(md, s) == before[s], f"symbol {s}: snapshot + diffs != snapshot"
        assert md.best(s) == (*(bids[0] if bids else (0, 0)), *(asks[0] if asks else (0, 0)))
    assert update.trades == added
    expected_klines = []
    for s in sorted({t.symbol_id for t in added}):
        for interval in INTERVALS_MS:
            expected_klines += [k for k in all_trades.candles(s, interval)
                                if k.open_time_ms >= newest_open.get((s, interval), -1)]
    assert update.klines == expected_klines
    for s in SYMBOL_IDS:
        assert md.trades(s, 100) == all_trades.of(s)[-TRADES_KEPT:]
        for interval in INTERVALS_MS:
            candles = all_trades.candles(s, interval)[-KLINES_KEPT:]
            assert md.klines(s, interval, None, None, 1000) == candles
            if candles:
                newest = candles[-1].open_time_ms
                assert md.klines(s, interval, newest, None, 5) == candles[-1:]
                assert md.klines(s, interval, newest + 1, None, 5) == []
                assert md.klines(s, interval, None, newest - 1, 2) == candles[:-1][-2:]
            if len(candles) > 2:
                assert md.klines(s, interval, candles[1].open_time_ms, None, 2) == candles[1:3]
        newest_ms = max(all_trades.last_ms[s], step.ts_ns[last] // 1_000_000)
        for offset in (0, 1, 59_999, DAY_MS - 1, DAY_MS):
            t = md.ticker(s, newest_ms + offset)
            assert t[3:13] == all_trades.ticker_trade_fields(s, newest_ms + offset), f"ticker at +{offset} ms"
            assert t[13:] == md.best(s)


def _levels(md: MarketData, symbol: int) -> tuple[dict, dict]:
    """The full book as {price: qty} for bids and asks."""
    snap = md.depth(symbol, EVERY_LEVEL)
    return dict(snap.bids), dict(snap.asks)


def _open_candles(all_trades: AllTrades) -> dict:
    """The open candle's open time of every (symbol, interval) that has one."""
    return {(s, iv): ks[-1].open_time_ms for s in SYMBOL_IDS for iv in INTERVALS_MS
            if (ks := all_trades.candles(s, iv))}


@pytest.mark.slow
@settings(SETTINGS, max_examples=150)
@given(scenario=SCENARIO)
def test_market_data_follows_the_core_step_by_step(scenario):
    md = MarketData(SYMBOLS, TRADES_KEPT, KLINES_KEPT)
    all_trades = AllTrades()
    last_u = dict.fromkeys(SYMBOL_IDS, 0)
    for step, core in run(scenario):
        before = {s: _levels(md, s) for s in SYMBOL_IDS}
        newest_open = _open_candles(all_trades)
        update = md.apply(step.events.orders, step.events.trades, step.ts_ns)
        added = all_trades.add(step.events.trades, step.ts_ns)
        _check_step(md, update, before, last_u, step, core, all_trades, added, newest_open)


def _store_rows(store: OrderStore) -> tuple[list, list]:
    """Every open order and every trade row the store holds, through its readers."""
    open_orders, trades = [], []
    for user in USERS:
        open_orders += store.orders(user, None, True, 10**9)
        trades += store.trades(user, None, 10**9)
    return open_orders, trades


def _state(md: MarketData, now_ms: int) -> tuple:
    return (md.seq, [md.depth(s, EVERY_LEVEL) for s in SYMBOL_IDS], [md.trades(s, 100) for s in SYMBOL_IDS],
            [md.klines(s, iv, None, None, 1000) for s in SYMBOL_IDS for iv in INTERVALS_MS],
            [md.ticker(s, now_ms + offset) for s in SYMBOL_IDS for offset in (0, DAY_MS - 1)])


@pytest.mark.slow
@settings(SETTINGS, max_examples=60)
@given(scenario=SCENARIO, load_at=st.integers(0, 30))
def test_loading_from_the_order_store_then_applying_equals_applying_from_the_start(scenario, load_at):
    load_at %= len(scenario[1]) + 1                 # a step of this scenario (0: its deposits)
    live = MarketData(SYMBOLS, TRADES_KEPT, KLINES_KEPT)
    loaded = MarketData(SYMBOLS, TRADES_KEPT, KLINES_KEPT)
    with tempfile.TemporaryDirectory(dir=_FAST_DIR) as tmp:
        store = OrderStore(f"{tmp}/orders.db", {s.id: (s.base_asset_id, s.quote_asset_id) for s in SYMBOLS})
        for i, (step, _core) in enumerate(run(scenario, reuse_ids=False)):
            store.apply(step.events, step.cmds)
            update = live.apply(step.events.orders, step.events.trades, step.ts_ns)
            if i < load_at:
                continue
            if i == load_at:
                load_seq = store.applied_seq()
                loaded.load(load_seq, *_store_rows(store))
                awaiting_first_diff = set(SYMBOL_IDS)
            else:
                mine = loaded.apply(step.events.orders, step.events.trades, step.ts_ns)
                assert (mine.trades, mine.klines) == (update.trades, update.klines)
                assert [d[:1] + d[2:] for d in mine.diffs] == [d[:1] + d[2:] for d in update.diffs]
                for d_mine, d_live in zip(mine.diffs, update.diffs):
                    # after a load a symbol's first diff starts at the loaded seq + 1, later ones as live's
                    if d_mine.symbol_id in awaiting_first_diff:
                        assert d_mine.first_update_id == load_seq + 1
                        awaiting_first_diff.discard(d_mine.symbol_id)
                    else:
                        assert d_mine.first_update_id == d_live.first_update_id
            now_ms = max(step.ts_ns.values()) // 1_000_000
            assert _state(loaded, now_ms) == _state(live, now_ms), f"after step {i}"
        store.close()
