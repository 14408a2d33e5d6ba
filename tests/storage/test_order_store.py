"""The order store: rows derived from the events, applied once (storage/order_store.py)."""
from __future__ import annotations

import numpy as np

from xinfinity.config import Asset, Capacity, Symbol
from xinfinity.engine import records as R
from xinfinity.engine.reference import Reference
from xinfinity.storage.order_store import OrderStore

from tests.cmds import batch, cancel, deposit, ioc, limit

BTC, USDT = 1, 2
ASSETS = [Asset(BTC, "BTC", 2, 2), Asset(USDT, "USDT", 2, 2)]
SYMBOLS = [Symbol(0, "BTC_USDT", BTC, USDT, 0, 0, maker_fee_ppm=1000, taker_fee_ppm=2000, fee_user_id=9)]


def _run(ref, cmds):
    cmds["ts"] = np.arange(1, len(cmds) + 1) * 1_000_000 + 10_000_000_000 * ref.next_seq
    seq0 = ref.next_seq
    ev = ref.apply(cmds)
    cmds["seq"] = np.arange(seq0, seq0 + len(cmds))
    return cmds, ev


def _apply(store, cmds, ev):
    return store.apply(ev, cmds)


def test_orders_trades_and_balances_follow_the_events_and_apply_once(tmp_path):
    ref = Reference(ASSETS, SYMBOLS, R.DUST_RELEASE, Capacity(max_users=16, max_orders=64, max_buckets=8))
    store = OrderStore(tmp_path / "orders.db", {0: (BTC, USDT)})
    c1, e1 = _run(ref, batch(deposit(1, USDT, 100_000), deposit(2, BTC, 1_000)))
    _apply(store, c1, e1)
    c2, e2 = _run(ref, batch(dict(limit(0, 1, "buy", 100, 500), cid=77),    # seq 3: rests
                             ioc(0, 2, "sell", 100, 200),                   # seq 4: fills 200 of order 3
                             limit(0, 2, "sell", 100, 2_000),               # seq 5: refused, 800 BTC left
                             cancel(3, 1)))                                  # seq 6
    rows = _apply(store, c2, e2)
    assert sorted(rows) == [3, 4, 5]
    o3, o4, o5 = store.order(3), store.order(4), store.order(5)
    assert (o3.status, o3.filled_qty, o3.qty, o3.price, o3.cid_hash, o3.user_id) == (R.ST_CANCELLED, 200, 500, 100, 77, 1)
    assert o3.created_ns == c2["ts"][0] and o3.updated_ns == c2["ts"][3]
    assert (o4.status, o4.filled_qty) == (R.ST_FILLED, 200)
    assert (o5.status, o5.reason) == (R.ST_REJECTED, R.R_INSUFFICIENT_BALANCE)
    # one row per side of the trade; the buyer (maker) pays its fee in base, the seller (taker) in quote
    buyer, = store.trades(1, None, 10)
    seller, = store.trades(2, None, 10)
    assert (buyer.order_id, buyer.side, buyer.qty, buyer.quote_qty, buyer.fee, buyer.fee_asset_id, buyer.taker) == (
        3, R.SIDE_BUY, 200, 20_000, 1, BTC, 0)     # 0.1% of 200, rounded up
    assert (seller.order_id, seller.side, seller.fee, seller.fee_asset_id, seller.taker) == (4, R.SIDE_SELL, 40, USDT, 1)
    assert store.balances(1) == {USDT: (80_000, 0), BTC: (199, 0)}
    assert [o.order_id for o in store.orders(1, None, True, 10)] == []
    assert [o.order_id for o in store.orders(2, 0, False, 10)] == [5, 4]
    assert store.applied_seq() == 6
    # Recovery replays events the store holds: they are skipped, nothing changes.
    before = (store.order(3), store.trades(1, None, 10), store.balances(1))
    _apply(store, c2, e2)
    assert (store.order(3), store.trades(1, None, 10), store.balances(1)) == before
