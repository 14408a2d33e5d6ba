"""Depth from hand-made order events: which orders rest, at what qty, and the diffs
(marketdata/book.py; the update-id rule of marketdata/types.py)."""
from __future__ import annotations

from xinfinity.engine import records as R
from xinfinity.marketdata.book import MarketData
from xinfinity.marketdata.types import DepthDiff, DepthSnapshot
from xinfinity.storage.order_store import OrderRow

from tests.marketdata.events import SYMBOLS, accepted, batch, order, trade

IOC = dict(tif=R.TIF_IOC)


def _resting(seq: int, *orders: tuple) -> MarketData:
    """MarketData after one batch at `seq` placing (order_id, side, price, qty) limit GTC orders that rest."""
    md = MarketData(SYMBOLS)
    md.apply(*batch(seq, *(accepted(seq, oid, side, price, qty) for oid, side, price, qty in orders)))
    return md


def _sorted(diff: DepthDiff) -> tuple:
    return diff.symbol_id, diff.first_update_id, diff.last_update_id, sorted(diff.bids), sorted(diff.asks)


def test_a_limit_gtc_order_rests_at_its_price_and_the_diff_says_so():
    md = MarketData(SYMBOLS)
    update = md.apply(*batch(1, accepted(1, 1, "buy", 100, 5), ms=1_700_000_000_123))
    assert update.diffs == [DepthDiff(0, 1, 1, 1_700_000_000_123, [(100, 5)], [])]
    assert update.trades == [] and update.klines == []
    assert md.depth(0, 10) == DepthSnapshot(0, 1, [(100, 5)], [])
    assert md.best(0) == (100, 5, 0, 0)
    assert md.seq == 1


def test_orders_at_one_price_add_up_and_depth_lists_best_first_up_to_the_limit():
    md = _resting(1, (1, "buy", 100, 5), (2, "buy", 100, 3), (3, "buy", 99, 1), (4, "buy", 101, 2),
                  (5, "sell", 103, 4), (6, "sell", 102, 7))
    assert md.depth(0, 10) == DepthSnapshot(0, 1, [(101, 2), (100, 8), (99, 1)], [(102, 7), (103, 4)])
    assert md.depth(0, 2) == DepthSnapshot(0, 1, [(101, 2), (100, 8)], [(102, 7), (103, 4)])
    assert md.depth(0, 0) == md.depth(0, -1) == DepthSnapshot(0, 1, [], [])
    assert md.best(0) == (101, 2, 102, 7)
    assert md.depth(1, 10) == DepthSnapshot(1, 1, [], [])


def test_a_partial_fill_leaves_the_maker_with_its_open_qty():
    md = _resting(1, (1, "sell", 101, 5))
    update = md.apply(*batch(2, accepted(2, 2, "buy", 101, 2, **IOC),
                             order(2, 1, "sell", 101, 5, R.ST_PARTIALLY_FILLED, filled=2),
                             trade(2, 1, 101, 2, "buy", buyer=2, seller=1),
                             order(2, 2, "buy", 101, 2, R.ST_FILLED, filled=2, **IOC)))
    assert [_sorted(d) for d in update.diffs] == [(0, 2, 2, [], [(101, 3)])]
    assert md.depth(0, 10).asks == [(101, 3)]


def test_a_fill_removes_the_level_and_a_filled_gtc_taker_leaves_no_trace():
    md = _resting(1, (1, "sell", 101, 3))
    update = md.apply(*batch(2, accepted(2, 2, "buy", 101, 3),
                             order(2, 1, "sell", 101, 3, R.ST_FILLED, filled=3),
                             trade(2, 1, 101, 3, "buy", buyer=2, seller=1),
                             order(2, 2, "buy", 101, 3, R.ST_FILLED, filled=3)))
    assert [_sorted(d) for d in update.diffs] == [(0, 2, 2, [], [(101, 0)])]
    assert md.depth(0, 10) == DepthSnapshot(0, 2, [], [])
    assert md.best(0) == (0, 0, 0, 0)


def test_a_gtc_taker_rests_with_what_it_did_not_fill():
    md = _resting(1, (1, "sell", 101, 2))
    update = md.apply(*batch(2, accepted(2, 2, "buy", 102, 5),
                             order(2, 1, "sell", 101, 2, R.ST_FILLED, filled=2),
                             trade(2, 1, 101, 2, "buy", buyer=2, seller=1),
                             order(2, 2, "buy", 102, 5, R.ST_PARTIALLY_FILLED, filled=2)))
    assert [_sorted(d) for d in update.diffs] == [(0, 2, 2, [(102, 3)], [(101, 0)])]
    assert md.depth(0, 10) == DepthSnapshot(0, 2, [(102, 3)], [])


def test_a_cancel_removes_the_order_and_only_its_qty():
    md = _resting(1, (1, "buy", 100, 5), (2, "buy", 100, 3))
    update = md.apply(*batch(2, order(2, 1, "buy", 100, 5, R.ST_CANCELLED, kind=R.CMD_CANCEL)))
    assert [_sorted(d) for d in update.diffs] == [(0, 2, 2, [(100, 3)], [])]
    update = md.apply(*batch(3, order(3, 2, "buy", 100, 3, R.ST_CANCELLED, kind=R.CMD_CANCEL)))
    assert [_sorted(d) for d in update.diffs] == [(0, 3, 3, [(100, 0)], [])]
    assert md.depth(0, 10).bids == []


def test_a_reduce_leaves_qty_minus_filled_open():
    md = _resting(1, (1, "sell", 101, 10))
    md.apply(*batch(2, order(2, 1, "sell", 101, 10, R.ST_PARTIALLY_FILLED, filled=2),
                    trade(2, 1, 101, 2, "buy", buyer=9, seller=1)))
    update = md.apply(*batch(3, order(3, 1, "sell", 101, 6, R.ST_REDUCED, filled=2, kind=R.CMD_REDUCE)))
    assert [_sorted(d) for d in update.diffs] == [(0, 3, 3, [], [(101, 4)])]
    # reducing by all that is open is a cancel
    update = md.apply(*batch(4, order(4, 1, "sell", 101, 6, R.ST_CANCELLED, filled=2, kind=R.CMD_REDUCE)))
    assert [_sorted(d) for d in update.diffs] == [(0, 4, 4, [], [(101, 0)])]


def test_a_move_takes_the_order_from_its_old_price_to_its_new_one():
    md = _resting(1, (1, "buy", 100, 5), (2, "buy", 100, 1))
    update = md.apply(*batch(2, order(2, 1, "buy", 98, 5, R.ST_MOVED, kind=R.CMD_MOVE)))
    assert [_sorted(d) for d in update.diffs] == [(0, 2, 2, [(98, 5), (100, 1)], [])]
    assert md.depth(0, 10).bids == [(100, 1), (98, 5)]


def test_a_move_that_crosses_fills_and_rests_the_rest_at_the_new_price():
    md = _resting(1, (1, "buy", 100, 5), (2, "sell", 102, 2))
    update = md.apply(*batch(2, order(2, 1, "buy", 103, 5, R.ST_MOVED, kind=R.CMD_MOVE),
                             order(2, 2, "sell", 102, 2, R.ST_FILLED, filled=2, kind=R.CMD_MOVE),
                             trade(2, 1, 102, 2, "buy", buyer=1, seller=2),
                             order(2, 1, "buy", 103, 5, R.ST_PARTIALLY_FILLED, filled=2, kind=R.CMD_MOVE)))
    assert [_sorted(d) for d in update.diffs] == [(0, 2, 2, [(100, 0), (103, 3)], [(102, 0)])]
    assert md.depth(0, 10) == DepthSnapshot(0, 2, [(103, 3)], [])


def test_an_ioc_remainder_expires_and_never_rests():
    md = _resting(1, (1, "sell", 101, 2))
    update = md.apply(*batch(2, accepted(2, 2, "buy", 101, 5, **IOC),
                             order(2, 1, "sell", 101, 2, R.ST_FILLED, filled=2),
                             trade(2, 1, 101, 2, "buy", buyer=2, seller=1),
                             order(2, 2, "buy", 101, 5, R.ST_PARTIALLY_FILLED, filled=2, **IOC),
                             order(2, 2, "buy", 101, 5, R.ST_EXPIRED, filled=2, **IOC)))
    assert [_sorted(d) for d in update.diffs] == [(0, 2, 2, [], [(101, 0)])]
    assert md.depth(0, 10) == DepthSnapshot(0, 2, [], [])


def test_a_gtc_taker_that_fills_part_then_expires_leaves_no_trace():
    """Self-trade prevention (expire_taker) stops a GTC taker after a fill: it expires in the same seq."""
    md = _resting(1, (1, "sell", 101, 2), (2, "sell", 101, 2))
    update = md.apply(*batch(2, accepted(2, 3, "buy", 101, 5, user=2),
                             order(2, 1, "sell", 101, 2, R.ST_FILLED, filled=2),
                             trade(2, 1, 101, 2, "buy", buyer=3, seller=1),
                             order(2, 3, "buy", 101, 5, R.ST_PARTIALLY_FILLED, filled=2, user=2),
                             order(2, 3, "buy", 101, 5, R.ST_EXPIRED, filled=2, user=2)))
    assert [_sorted(d) for d in update.diffs] == [(0, 2, 2, [], [(101, 2)])]


def test_a_gtc_order_the_book_has_no_room_for_leaves_no_diff():
    md = _resting(1, (1, "buy", 100, 5))
    update = md.apply(*batch(2, accepted(2, 2, "buy", 100, 3), order(2, 2, "buy", 100, 3, R.ST_EXPIRED)))
    assert update.diffs == []
    assert md.depth(0, 10) == DepthSnapshot(0, 2, [(100, 5)], [])


def test_a_market_order_never_rests_whatever_its_tif():
    md = _resting(1, (1, "buy", 100, 2))
    market = dict(order_type=R.TYPE_MARKET, tif=R.TIF_GTC)
    update = md.apply(*batch(2, accepted(2, 2, "sell", 0, 5, **market),
                             order(2, 1, "buy", 100, 2, R.ST_FILLED, filled=2),
                             trade(2, 1, 100, 2, "sell", buyer=1, seller=2),
                             order(2, 2, "sell", 0, 5, R.ST_PARTIALLY_FILLED, filled=2, **market),
                             order(2, 2, "sell", 0, 5, R.ST_EXPIRED, filled=2, **market)))
    assert [_sorted(d) for d in update.diffs] == [(0, 2, 2, [(100, 0)], [])]
    assert md.depth(0, 10) == DepthSnapshot(0, 2, [], [])


def test_a_refused_command_changes_no_order():
    md = _resting(1, (1, "buy", 100, 5))
    update = md.apply(*batch(5,
                             order(2, 1, "buy", 0, 0, R.ST_REJECTED, kind=R.CMD_CANCEL, user=2),
                             order(3, 1, "buy", 90, 7, R.ST_REJECTED),           # a place naming an open id
                             order(4, 1, "buy", 0, 4, R.ST_REJECTED, kind=R.CMD_REDUCE),
                             order(5, 1, "buy", 95, 0, R.ST_REJECTED, kind=R.CMD_MOVE)))
    assert update.diffs == []
    assert md.depth(0, 10) == DepthSnapshot(0, 5, [(100, 5)], [])
    # the order is still the one that rests: its cancel empties the level
    update = md.apply(*batch(6, order(6, 1, "buy", 100, 5, R.ST_CANCELLED, kind=R.CMD_CANCEL)))
    assert [_sorted(d) for d in update.diffs] == [(0, 2, 6, [(100, 0)], [])]


def test_a_symbols_diffs_are_contiguous_and_a_snapshot_plus_later_diffs_is_the_book():
    md = MarketData(SYMBOLS)
    first = md.apply(*batch(1, accepted(1, 1, "buy", 100, 5, symbol=0))).diffs
    second = md.apply(*batch(2, accepted(2, 2, "sell", 200, 1, symbol=1))).diffs
    md.apply(*batch(3, order(3, 9, "buy", 0, 0, R.ST_REJECTED, kind=R.CMD_CANCEL)))
    snapshot = md.depth(0, 100)
    assert snapshot.last_update_id == 3
    third = md.apply(*batch(5, accepted(4, 3, "buy", 101, 1, symbol=0), accepted(5, 4, "buy", 201, 1, symbol=1)))
    assert [(d.symbol_id, d.first_update_id, d.last_update_id) for d in first + second + third.diffs] == [
        (0, 1, 1), (1, 1, 2), (0, 2, 5), (1, 3, 5)]
    # the first diff with u > 3 has U <= 4 <= u: what a Binance client checks
    assert third.diffs[0].first_update_id <= snapshot.last_update_id + 1 <= third.diffs[0].last_update_id
    assert md.depth(0, 100).bids == [(101, 1), (100, 5)]


def test_events_at_or_below_the_applied_seq_are_skipped():
    md = MarketData(SYMBOLS)
    md.apply(*batch(3, accepted(2, 1, "buy", 100, 5), trade(3, 1, 100, 1, "sell")))
    update = md.apply(*batch(4, accepted(2, 1, "buy", 100, 5), trade(3, 1, 100, 1, "sell"),
                             accepted(4, 2, "buy", 99, 1)))
    assert [_sorted(d) for d in update.diffs] == [(0, 4, 4, [(99, 1)], [])]
    assert update.trades == [] and md.seq == 4
    assert md.depth(0, 10).bids == [(100, 5), (99, 1)]
    assert md.apply(*batch(4, accepted(4, 2, "buy", 99, 1))) == ([], [], [])


def test_load_starts_again_from_the_store_and_the_first_diffs_start_at_its_seq_plus_one():
    md = _resting(1, (1, "buy", 100, 5))         # dropped by the load: the store is the new start
    row = OrderRow(order_id=5, user_id=1, symbol_id=1, side=R.SIDE_SELL, order_type=R.TYPE_LIMIT, tif=R.TIF_GTC,
                   price=200, qty=10, quote_qty=0, filled_qty=4, avg_price=200, status=R.ST_PARTIALLY_FILLED,
                   reason=0, cid_hash=0, created_ns=0, updated_ns=0, seq=3)
    md.load(7, [row], [])
    assert md.seq == 7 and md.depth(1, 10) == DepthSnapshot(1, 7, [], [(200, 6)])
    assert md.depth(0, 10) == DepthSnapshot(0, 7, [], [])
    update = md.apply(*batch(9, order(9, 5, "sell", 200, 10, R.ST_CANCELLED, filled=4, symbol=1,
                                      kind=R.CMD_CANCEL)))
    assert [_sorted(d) for d in update.diffs] == [(1, 8, 9, [], [(200, 0)])]
