"""A worker's end of the push stream (gateway/push.py) over records as
settlement makes them (services/answers.py push_records): the market data
starts from the store, takes only later seqs with their entry times, starts
again from the store after a gap, and the feed hears the market update and
the private events."""
from __future__ import annotations

import numpy as np

from tests.marketdata.events import SYMBOLS, accepted, trade
from xinfinity.engine import records as R
from xinfinity.engine.events import Events, records
from xinfinity.gateway.push import PushStream
from xinfinity.marketdata.book import MarketData
from xinfinity.services.answers import push_records


class Store:
    """The order store's market_state: an empty book at `seq`."""

    def __init__(self, seq: int):
        self.seq, self.reads = seq, 0

    def market_state(self, trades_limit: int):
        self.reads += 1
        return self.seq, [], []


class Feed:
    def __init__(self):
        self.markets, self.privates = [], []

    def market(self, update, now_ms):
        self.markets.append(update)

    def private(self, orders, trades, balances, ts_ns):
        self.privates.append((orders["seq"].tolist(), trades["seq"].tolist(), balances["seq"].tolist(), ts_ns))


def pushed(first: int, last: int, orders=(), trades=(), balances=()) -> np.ndarray:
    """Settlement's PUSH records of seqs first..last (entry time: seq * 1 ms)."""
    cmds = np.zeros(last - first + 1, R.CMD)
    cmds["seq"] = np.arange(first, last + 1)
    cmds["ts"] = cmds["seq"] * 1_000_000
    return push_records(cmds, Events(*(as_records(d, rows) for d, rows in (
        (R.ORDER_EVENT, orders), (R.TRADE_EVENT, trades), (R.BALANCE_EVENT, balances)))))


def as_records(dtype, rows) -> np.ndarray:
    """Dicts of event fields as records (the fields not named stay 0)."""
    names = dtype.names
    return records(dtype, [tuple(r.get(f, 0) for f in names) for r in rows], names)


def stream(seq: int):
    store, feed = Store(seq), Feed()
    s = PushStream(store, MarketData(SYMBOLS), feed, now_ms=lambda: 0)
    s.load()
    return s, store, feed


def test_records_the_store_already_holds_are_dropped_and_later_ones_applied_with_their_times():
    s, _, feed = stream(seq=5)
    s.take(pushed(4, 6, orders=[accepted(4, 4, "buy", 100, 1), accepted(6, 6, "buy", 101, 2)],
                  balances=[dict(seq=6, user_id=1, asset=2, avail=1, op=R.OP_DEPOSIT)]))
    assert s.market.depth(0, 10).bids == [(101, 2)]
    (update,) = feed.markets
    assert [(d.first_update_id, d.last_update_id, d.time_ms, d.bids) for d in update.diffs] == [(6, 6, 6, [(101, 2)])]
    assert feed.privates == [([6], [], [6], {4: 4_000_000, 6: 6_000_000})]


def test_nothing_new_reaches_neither_the_market_nor_the_feed():
    s, _, feed = stream(seq=9)
    s.take(pushed(8, 9, orders=[accepted(8, 8, "sell", 100, 1)]))
    assert (feed.markets, feed.privates, s.market.seq) == ([], [], 9)


def test_a_gap_starts_again_from_the_store_and_takes_only_what_follows_it():
    s, store, feed = stream(seq=3)
    before = pushed(4, 4, orders=[accepted(4, 4, "buy", 100, 1)])
    after = pushed(8, 9, orders=[accepted(8, 8, "sell", 105, 1)], trades=[trade(9, 1, 105, 1, "buy")])
    store.seq = 7                                   # settlement dropped records; the store is at 7
    s.take(np.concatenate([before, np.zeros(1, R.PUSH), after]))     # kind 0: PUSH_GAP
    assert store.reads == 2
    assert s.market.depth(0, 10).asks == [(105, 1)] and s.market.depth(0, 10).bids == []
    assert [t.trade_id for t in s.market.trades(0, 10)] == [1]
    assert [p[0] for p in feed.privates] == [[8]]


def test_every_record_of_a_batch_is_observed_once_applied_held_ones_too():
    s, _, feed = stream(seq=5)
    seen = []
    s.observe_applied = lambda ts: seen.append((ts.tolist(), len(feed.privates)))
    s.take(pushed(4, 6, orders=[accepted(4, 4, "buy", 100, 1), accepted(6, 6, "buy", 101, 2)]))
    s.take(pushed(6, 6, orders=[accepted(6, 6, "buy", 101, 2)]))      # held already: nothing applied
    assert seen == [([4_000_000, 6_000_000], 1), ([6_000_000], 1)]    # after the feed heard the batch
