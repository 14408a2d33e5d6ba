"""The core's rules, scenario by scenario (docs/ENGINE.md), on both implementations.

Every test runs twice: on the plain-Python Reference and on the numba Core
(the autouse `engine` fixture picks the class `make` builds), so each
hand-derived expectation holds for both.

Every expected event below is derived by hand from the rules, with the
arithmetic written out in comments. Two symbols:
- BTC_USDT (id 0): BTC and USDT both 2 decimals, price decimals 0, so
  cost(p, q) = p * q exactly; fees and STP configurable per test.
- ETH_USDT (id 1): ETH 1 decimal, price decimals 2, so cost(p, q) = floor(p*q / 10):
  the rounding symbol, for the dust policies.
"""
from __future__ import annotations

import numpy as np
import pytest

from xinfinity.config import Asset, Capacity, Symbol
from xinfinity.engine import records as R
from xinfinity.engine.reference import INT64_MAX, QTY_UNLIMITED, Reference

from tests.cmds import (batch, cancel, deposit, ioc, limit, market_buy, market_sell, move,
                        place, reduce, withdraw)
from tests.invariants import Flows, check_invariants

BTC, USDT, ETH = 1, 2, 3
BTC_USDT, ETH_USDT = 0, 1
FEES = 99           # the fee account of BTC_USDT when fees are on
ASSETS = [Asset(id=BTC, name="BTC", decimals=2, display_decimals=2),
          Asset(id=USDT, name="USDT", decimals=2, display_decimals=2),
          Asset(id=ETH, name="ETH", decimals=1, display_decimals=1)]


def symbols(stp="none", maker_ppm=0, taker_ppm=0, fee_user=-1):
    return [Symbol(id=BTC_USDT, name="BTC_USDT", base_asset_id=BTC, quote_asset_id=USDT,
                   price_decimals=0, price_display_decimals=0, maker_fee_ppm=maker_ppm,
                   taker_fee_ppm=taker_ppm, fee_user_id=fee_user, stp=stp),
            Symbol(id=ETH_USDT, name="ETH_USDT", base_asset_id=ETH, quote_asset_id=USDT,
                   price_decimals=2, price_display_decimals=2)]


# Small enough that building a numba Core per test is cheap (its arrays are
# preallocated and touched at start); a test that sets a limit keeps its own.
SMALL = Capacity(max_users=256, max_orders=1024, max_buckets=64)
IMPL = {"cls": Reference}


@pytest.fixture(autouse=True, params=["reference", "numba"])
def engine(request):
    """Run the test on the Reference, then on the numba Core."""
    if request.param == "numba":
        from xinfinity.engine.core import Core
        IMPL["cls"] = Core
    yield request.param
    IMPL["cls"] = Reference


def _small(capacity):
    return Capacity(**{f: getattr(capacity, f) if getattr(capacity, f) != getattr(Capacity(), f)
                       else getattr(SMALL, f) for f in Capacity.__struct_fields__})


def make(dust=R.DUST_RELEASE, capacity=Capacity(), fund=1000, users=(1, 2, 3), **terms):
    """An engine where each of `users` has deposited `fund` of every asset."""
    ref = IMPL["cls"](ASSETS, symbols(**terms), dust=dust, capacity=_small(capacity))
    if fund is not None:
        ref.apply(batch([deposit(u, a, fund) for u in users for a in (BTC, USDT, ETH)]))
    return ref


def run(ref, *cmds):
    return ref.apply(batch(*cmds))


# -- readable views of events and state ----------------------------------------

def O(ev):
    """Order events as (order_id, status, reason text)."""
    return [(o["order_id"], R.STATUS_NAMES[o["status"]], R.REASON_TEXT[o["reason"]])
            for o in ev.orders]


def B(ev):
    """Balance events as (user, asset, op, amount)."""
    return [(int(b["user_id"]), int(b["asset"]), R.OP_NAMES[b["op"]], int(b["amount"]))
            for b in ev.balances]


def T(ev):
    """Trades as (price, qty, quote_qty, buyer order, seller order, buyer fee, seller fee)."""
    return [tuple(int(t[f]) for f in ("price", "qty", "quote_qty", "buyer_order_id",
                                      "seller_order_id", "buyer_fee", "seller_fee"))
            for t in ev.trades]


def slot(ref, user, asset):
    """(avail, frozen) of a slot; (0, 0) if it never had an event."""
    for row in ref.balances():
        if row["user_id"] == user and row["asset"] == asset:
            return int(row["avail"]), int(row["frozen"])
    return 0, 0


def book(ref):
    """Open orders as (order_id, side, price, qty, filled, lock), in book order."""
    return [(int(o["order_id"]), R.SIDE_NAMES[o["side"]], int(o["price"]), int(o["qty"]),
             int(o["filled"]), int(o["lock"])) for o in ref.open_orders()]


def last_event(ev, order_id):
    return [o for o in ev.orders if o["order_id"] == order_id][-1]


# -- deposit / withdraw ---------------------------------------------------------

def test_deposit_creates_the_user_and_its_slot():
    ref = make(fund=None)
    ev = run(ref, deposit(1, USDT, 100))
    (b,) = ev.balances
    assert (b["seq"], b["user_id"], b["asset"], b["op"], b["amount"], b["avail"], b["frozen"],
            b["version"], b["reason"]) == (1, 1, USDT, R.OP_DEPOSIT, 100, 100, 0, 1, 0)
    assert ref.balances().tolist() == [(1, USDT, 100, 0, 1)]


def test_deposit_of_zero_creates_the_slot_and_the_user():
    ref = make(fund=None)
    ev = run(ref, deposit(1, BTC, 0), withdraw(1, BTC, 0))
    assert [(op, amount, version) for _, _, op, amount, version in
            [(b["user_id"], b["asset"], R.OP_NAMES[b["op"]], b["amount"], b["version"])
             for b in ev.balances]] == [("deposit", 0, 1), ("withdraw", 0, 2)]
    assert ref.balances().tolist() == [(1, BTC, 0, 0, 2)]


def test_negative_deposit_is_refused_and_changes_nothing():
    ref = make(fund=None)
    ev = run(ref, deposit(1, USDT, -5))
    (b,) = ev.balances
    assert (b["op"], b["reason"], b["amount"], b["avail"], b["frozen"], b["version"]) == \
        (R.OP_DEPOSIT, R.R_INVALID_QUANTITY, -5, 0, 0, 0)
    assert len(ref.balances()) == 0
    # the refused deposit did not create the user
    assert O(run(ref, limit(1, 1, "sell", 10, 1))) == [(1, "rejected", "User not found")]


def test_deposit_to_an_unknown_asset_is_refused():
    ref = make(fund=None)
    (b,) = run(ref, deposit(1, 42, 5)).balances
    assert (b["asset"], b["reason"]) == (42, R.R_ASSET_NOT_FOUND)
    assert len(ref.balances()) == 0


def test_deposit_overflow_of_the_asset_total_is_refused():
    ref = make(fund=None)
    ev = run(ref,
             deposit(1, USDT, INT64_MAX - 10),
             deposit(2, USDT, 11),            # total would be INT64_MAX + 1
             deposit(2, USDT, 10),            # total exactly INT64_MAX: fine
             deposit(2, BTC, INT64_MAX),      # another asset has its own total
             withdraw(1, USDT, 3),
             deposit(3, USDT, 3))             # room again after the withdrawal
    assert [(int(b["user_id"]), R.REASON_TEXT[b["reason"]]) for b in ev.balances] == [
        (1, ""), (2, "Amount overflows"), (2, ""), (2, ""), (1, ""), (3, "")]
    refused = ev.balances[1]
    assert (refused["avail"], refused["frozen"], refused["version"]) == (0, 0, 0)
    assert slot(ref, 2, USDT) == (10, 0)


def test_new_user_beyond_user_capacity_is_refused():
    # The fee account exists from the start and takes one of the two user slots.
    ref = make(fund=None, capacity=Capacity(max_users=2), maker_ppm=0, taker_ppm=10,
               fee_user=FEES)
    ev = run(ref, deposit(1, USDT, 5), deposit(2, USDT, 5), deposit(1, BTC, 5),
             deposit(FEES, USDT, 5))
    assert [R.REASON_TEXT[b["reason"]] for b in ev.balances] == [
        "", "User capacity exceeded", "", ""]


def test_withdraw_checks_in_order():
    ref = make(users=(1,))
    ev = run(ref,
             withdraw(7, 42, -1),       # negative first
             withdraw(7, 42, 1),        # then unknown user
             withdraw(1, 42, 1),        # then unknown asset
             withdraw(1, USDT, 1001),   # then balance
             withdraw(1, USDT, 1000))
    assert [(R.OP_NAMES[b["op"]], R.REASON_TEXT[b["reason"]]) for b in ev.balances] == [
        ("withdraw", "Invalid quantity"), ("withdraw", "User not found"),
        ("withdraw", "Asset not found"), ("withdraw", "Insufficient balance"), ("withdraw", "")]
    assert slot(ref, 1, USDT) == (0, 0)


def test_withdraw_cannot_touch_frozen_funds():
    ref = make(users=(1,))
    run(ref, limit(1, 1, "buy", 10, 60))                # locks 600 USDT
    ev = run(ref, withdraw(1, USDT, 401), withdraw(1, USDT, 400))
    assert [R.REASON_TEXT[b["reason"]] for b in ev.balances] == ["Insufficient balance", ""]
    assert slot(ref, 1, USDT) == (0, 600)


# -- place: checks -------------------------------------------------------------

def test_place_rejection_order_of_checks():
    ref = make(users=(1,))
    ev = run(ref,
             place(1, 42, "buy", 0, 0, symbol=9),             # 1. invalid price wins
             place(1, 42, "buy", 10, 0, symbol=9),            # 2. invalid quantity
             place(1, 42, "buy", 10, 5, symbol=9),            # 3. unknown user
             place(1, 1, "buy", 2**62, 4, symbol=BTC_USDT),   # 4. lock 2^64 does not fit
             place(1, 1, "buy", 2**62, 4, symbol=9),          # 5. unknown symbol (no lock check)
             limit(1, 1, "sell", 10, 1),                      # rests
             place(1, 1, "buy", 10, 10**6),                   # 6. duplicate before balance
             place(2, 1, "buy", 10, 101))                     # 8. 1010 USDT > 1000 avail
    assert O(ev) == [
        (1, "rejected", "Invalid price"), (1, "rejected", "Invalid quantity"),
        (1, "rejected", "User not found"), (1, "rejected", "Invalid quantity"),
        (1, "rejected", "Asset not found"), (1, "accepted", ""),
        (1, "rejected", "Duplicate order id"), (2, "rejected", "Insufficient balance")]
    # Rejections produce no balance event: the only one is the lock of the sell.
    assert B(ev) == [(1, BTC, "lock", 1)]


def test_order_capacity_is_checked_after_duplicate_and_before_balance():
    ref = make(users=(1,), capacity=Capacity(max_orders=1))
    ev = run(ref, limit(1, 1, "sell", 10, 1),
             place(1, 1, "buy", 10, 10**6),       # duplicate, capacity and balance all fail
             place(2, 1, "buy", 10, 10**6))       # capacity and balance fail
    assert O(ev)[1:] == [(1, "rejected", "Duplicate order id"),
                         (2, "rejected", "Order capacity exceeded")]


def test_rejected_place_copies_the_command_fields():
    ref = make(users=(1,))
    ev = run(ref, place(5, 42, "sell", 17, 3, symbol=9, order_type="limit", tif="ioc"),
             market_buy(6, 1, budget=0, qty=0))
    a, b = ev.orders
    assert (a["seq"], a["order_id"], a["user_id"], a["price"], a["qty"], a["symbol"], a["kind"],
            a["side"], a["order_type"], a["tif"], a["filled_qty"], a["avg_price"]) == \
        (4, 5, 42, 17, 3, 9, R.CMD_PLACE, R.SIDE_SELL, R.TYPE_LIMIT, R.TIF_IOC, 0, 0)
    # a market buy's qty 0 stays 0 in its rejection
    assert (b["reason"], b["qty"]) == (R.R_INVALID_QUANTITY, 0)


def test_market_buy_needs_a_positive_budget_and_a_non_negative_qty():
    ref = make(users=(1,))
    ev = run(ref, market_buy(1, 1, budget=0), market_buy(2, 1, budget=-1),
             market_buy(3, 1, budget=10, qty=-1), market_sell(4, 1, qty=0),
             market_buy(5, 1, budget=10))
    assert O(ev) == [(1, "rejected", "Invalid quantity"), (2, "rejected", "Invalid quantity"),
                     (3, "rejected", "Invalid quantity"), (4, "rejected", "Invalid quantity"),
                     (5, "accepted", ""), (5, "expired", "")]
    # accepted with qty 0: no quantity limit
    assert ev.orders[-1]["qty"] == QTY_UNLIMITED
    assert B(ev) == [(1, USDT, "lock", 10), (1, USDT, "unlock", 10)]


def test_order_capacity_counts_the_taker_being_matched():
    ref = make(capacity=Capacity(max_orders=2))
    run(ref, limit(1, 2, "sell", 10, 1), limit(2, 2, "sell", 11, 1))
    # the book is full: even a taker that would fill at once is refused
    assert O(run(ref, limit(3, 1, "buy", 10, 1))) == [(3, "rejected", "Order capacity exceeded")]
    run(ref, cancel(2, 2))
    assert O(run(ref, limit(3, 1, "buy", 10, 1))) == [
        (3, "accepted", ""), (1, "filled", ""), (3, "filled", "")]
    assert book(ref) == []


def test_unknown_command_kind_and_codes_are_invalid_commands():
    ref = make(users=(1,))
    weird = batch(limit(1, 1, "buy", 10, 1))
    weird["kind"] = 99
    bad_side = batch(limit(2, 1, "buy", 10, 1))
    bad_side["side"] = 5
    ev = ref.apply(np.concatenate([weird, bad_side]))
    assert O(ev) == [(1, "rejected", "Invalid command"), (2, "rejected", "Invalid command")]
    assert list(ev.orders["seq"]) == [4, 5]       # after the 3 opening deposits
    assert ref.counters() == {"next_seq": 6, "next_trade_id": 1}


# -- matching ------------------------------------------------------------------

def test_limit_order_rests_and_locks_its_cost():
    ref = make()
    ev = run(ref, limit(1, 1, "buy", 10, 2))
    assert O(ev) == [(1, "accepted", "")]
    assert B(ev) == [(1, USDT, "lock", 20)]
    assert book(ref) == [(1, "buy", 10, 2, 0, 20)]
    assert slot(ref, 1, USDT) == (980, 20)


def test_buy_taker_gets_price_improvement_refund():
    ref = make()
    run(ref, limit(1, 2, "sell", 10, 3))
    ev = run(ref, limit(2, 1, "buy", 12, 3))       # locks cost(12, 3) = 36
    assert T(ev) == [(10, 3, 30, 2, 1, 0, 0)]
    assert B(ev) == [
        (1, USDT, "lock", 36),
        (1, USDT, "spend", 30), (1, BTC, "credit", 3),
        (2, BTC, "spend", 3), (2, USDT, "credit", 30),
        (1, USDT, "unlock", 6)]                    # cost(12 - 10, 3)
    assert O(ev) == [(2, "accepted", ""), (1, "filled", ""), (2, "filled", "")]
    assert slot(ref, 1, USDT) == (970, 0) and slot(ref, 1, BTC) == (1003, 0)
    assert slot(ref, 2, USDT) == (1030, 0) and slot(ref, 2, BTC) == (997, 0)


def test_sell_taker_trades_at_the_makers_price_without_refund():
    ref = make()
    run(ref, limit(1, 2, "buy", 12, 2))            # locks 24
    ev = run(ref, limit(2, 1, "sell", 10, 2))
    assert T(ev) == [(12, 2, 24, 1, 2, 0, 0)]
    assert B(ev) == [(1, BTC, "lock", 2),
                     (2, USDT, "spend", 24), (2, BTC, "credit", 2),
                     (1, BTC, "spend", 2), (1, USDT, "credit", 24)]
    assert ev.trades[0]["taker_side"] == R.SIDE_SELL


def test_taker_sweeps_levels_in_price_time_priority():
    ref = make()
    run(ref, limit(1, 2, "sell", 10, 2), limit(2, 3, "sell", 10, 1), limit(3, 2, "sell", 11, 5))
    ev = run(ref, limit(4, 1, "buy", 11, 4))       # locks 44
    assert T(ev) == [(10, 2, 20, 4, 1, 0, 0), (10, 1, 10, 4, 2, 0, 0), (11, 1, 11, 4, 3, 0, 0)]
    assert list(ev.trades["trade_id"]) == [1, 2, 3]
    assert O(ev) == [(4, "accepted", ""), (1, "filled", ""), (4, "partially_filled", ""),
                     (2, "filled", ""), (4, "partially_filled", ""),
                     (3, "partially_filled", ""), (4, "filled", "")]
    # refunds cost(1, 2) = 2 and cost(1, 1) = 1; none at 11
    assert [a for _, _, op, a in B(ev) if op == "unlock"] == [2, 1]
    last = last_event(ev, 4)
    assert (last["filled_qty"], last["avg_price"], last["last_qty"], last["last_price"],
            last["trade_id"]) == (4, 10, 1, 11, 3)      # floor((20 + 10 + 11) / 4) = 10
    assert book(ref) == [(3, "sell", 11, 5, 1, 4)]
    assert slot(ref, 1, USDT) == (959, 0)               # 44 - 41 spent - 3 refunded


def test_gtc_remainder_rests_and_ioc_remainder_expires():
    ref = make()
    run(ref, limit(1, 2, "sell", 10, 1))
    ev = run(ref, limit(3, 1, "buy", 10, 3))
    assert O(ev)[-1] == (3, "partially_filled", "")
    assert book(ref) == [(3, "buy", 10, 3, 1, 20)]       # L = 30 - 10
    ev = run(ref, cancel(3, 1), limit(2, 2, "sell", 10, 1), ioc(4, 1, "buy", 10, 3))
    assert O(ev) == [(3, "cancelled", ""), (2, "accepted", ""), (4, "accepted", ""),
                     (2, "filled", ""), (4, "partially_filled", ""), (4, "expired", "")]
    assert B(ev) == [(1, USDT, "unlock", 20), (2, BTC, "lock", 1), (1, USDT, "lock", 30),
                     (1, USDT, "spend", 10), (1, BTC, "credit", 1),
                     (2, BTC, "spend", 1), (2, USDT, "credit", 10),
                     (1, USDT, "unlock", 20)]
    assert book(ref) == []


def test_non_crossing_orders_do_not_trade():
    ref = make()
    ev = run(ref, limit(1, 2, "sell", 11, 1), limit(2, 1, "buy", 10, 1))
    assert T(ev) == []
    assert book(ref) == [(2, "buy", 10, 1, 0, 10), (1, "sell", 11, 1, 0, 1)]


def test_market_buy_stops_at_budget():
    ref = make()
    run(ref, limit(1, 2, "sell", 10, 5))
    ev = run(ref, market_buy(2, 1, budget=35))
    # largest q with 10*q <= 35 is 3; then 5 left buys nothing at 10
    assert T(ev) == [(10, 3, 30, 2, 1, 0, 0)]
    assert O(ev) == [(2, "accepted", ""), (1, "partially_filled", ""),
                     (2, "partially_filled", ""), (2, "expired", "")]
    assert B(ev) == [(1, USDT, "lock", 35),
                     (1, USDT, "spend", 30), (1, BTC, "credit", 3),
                     (2, BTC, "spend", 3), (2, USDT, "credit", 30),
                     (1, USDT, "unlock", 5)]
    assert all(o["qty"] == QTY_UNLIMITED for o in ev.orders if o["order_id"] == 2)
    assert book(ref) == [(1, "sell", 10, 5, 3, 2)]


def test_market_buy_whose_budget_is_spent_exactly_is_filled():
    ref = make()
    run(ref, limit(1, 2, "sell", 10, 5))
    ev = run(ref, market_buy(2, 1, budget=30))
    assert O(ev) == [(2, "accepted", ""), (1, "partially_filled", ""), (2, "filled", "")]
    assert B(ev)[-1] == (2, USDT, "credit", 30)        # nothing left to release


def test_market_buy_with_a_qty_stops_at_its_qty_and_releases_the_budget_left():
    ref = make()
    run(ref, limit(1, 2, "sell", 10, 5))
    ev = run(ref, market_buy(2, 1, budget=100, qty=2))
    assert T(ev) == [(10, 2, 20, 2, 1, 0, 0)]
    assert O(ev)[-1] == (2, "filled", "")
    assert B(ev)[-1] == (1, USDT, "unlock", 80)


def test_market_order_has_price_zero_in_its_events_whatever_the_command_says():
    ref = make()
    run(ref, limit(1, 2, "buy", 10, 1))
    ev = run(ref, place(2, 1, "sell", 77, 2, order_type="market", tif="gtc"))
    assert O(ev) == [(2, "accepted", ""), (1, "filled", ""), (2, "partially_filled", ""),
                     (2, "expired", "")]            # a market order expires even if GTC
    assert [int(o["price"]) for o in ev.orders if o["order_id"] == 2] == [0, 0, 0]
    assert [int(o["tif"]) for o in ev.orders if o["order_id"] == 2] == [R.TIF_GTC] * 3
    assert T(ev) == [(10, 1, 10, 1, 2, 0, 0)]


def test_market_sell_sweeps_any_price_and_expires_the_rest():
    ref = make()
    run(ref, limit(1, 2, "buy", 10, 1), limit(2, 3, "buy", 5, 1))
    ev = run(ref, market_sell(3, 1, qty=3))
    assert T(ev) == [(10, 1, 10, 1, 3, 0, 0), (5, 1, 5, 2, 3, 0, 0)]
    assert O(ev) == [(3, "accepted", ""), (1, "filled", ""), (3, "partially_filled", ""),
                     (2, "filled", ""), (3, "partially_filled", ""), (3, "expired", "")]
    assert B(ev) == [(1, BTC, "lock", 3),
                     (2, USDT, "spend", 10), (2, BTC, "credit", 1),
                     (1, BTC, "spend", 1), (1, USDT, "credit", 10),
                     (3, USDT, "spend", 5), (3, BTC, "credit", 1),
                     (1, BTC, "spend", 1), (1, USDT, "credit", 5),
                     (1, BTC, "unlock", 1)]


def test_trade_ids_are_global_across_symbols():
    ref = make()
    run(ref, limit(1, 2, "sell", 10, 1), limit(2, 2, "sell", 15, 10, symbol=ETH_USDT))
    ev = run(ref, limit(3, 1, "buy", 15, 10, symbol=ETH_USDT), limit(4, 1, "buy", 10, 1))
    assert list(ev.trades["trade_id"]) == [1, 2]
    assert list(ev.trades["symbol"]) == [ETH_USDT, BTC_USDT]
    assert ref.counters() == {"next_seq": 14, "next_trade_id": 3}


def test_every_command_takes_a_seq_accepted_or_not():
    ref = make(fund=None)
    ev = run(ref, deposit(1, USDT, 5), deposit(1, USDT, -5), limit(1, 1, "buy", 0, 1),
             cancel(9, 1))
    assert list(ev.balances["seq"]) == [1, 2]
    assert list(ev.orders["seq"]) == [3, 4]
    assert ref.counters() == {"next_seq": 5, "next_trade_id": 1}


# -- self-trade prevention -----------------------------------------------------

def test_stp_none_lets_a_user_trade_with_itself():
    ref = make(stp="none")
    ev = run(ref, limit(1, 1, "sell", 10, 1), limit(2, 1, "buy", 10, 1))
    assert T(ev) == [(10, 1, 10, 2, 1, 0, 0)]
    assert slot(ref, 1, USDT) == (1000, 0) and slot(ref, 1, BTC) == (1000, 0)


def test_stp_expire_maker_expires_own_makers_and_continues():
    ref = make(stp="expire_maker")
    run(ref, limit(1, 1, "sell", 10, 1), limit(2, 2, "sell", 10, 1))
    ev = run(ref, limit(3, 1, "buy", 10, 1))
    assert O(ev) == [(3, "accepted", ""), (1, "expired", "Self-trade prevented"),
                     (2, "filled", ""), (3, "filled", "")]
    assert B(ev) == [(1, USDT, "lock", 10), (1, BTC, "unlock", 1),
                     (1, USDT, "spend", 10), (1, BTC, "credit", 1),
                     (2, BTC, "spend", 1), (2, USDT, "credit", 10)]
    assert book(ref) == []


def test_stp_expire_taker_stops_matching_and_expires_the_taker():
    ref = make(stp="expire_taker")
    run(ref, limit(1, 2, "sell", 9, 1), limit(2, 1, "sell", 10, 1))
    ev = run(ref, limit(3, 1, "buy", 10, 3))           # GTC, locks 30
    assert T(ev) == [(9, 1, 9, 3, 1, 0, 0)]
    assert O(ev) == [(3, "accepted", ""), (1, "filled", ""), (3, "partially_filled", ""),
                     (3, "expired", "Self-trade prevented")]
    # refund cost(1, 1) = 1, then release L = 30 - 9 - 1 = 20
    assert B(ev)[-2:] == [(1, USDT, "unlock", 1), (1, USDT, "unlock", 20)]
    assert book(ref) == [(2, "sell", 10, 1, 0, 1)]


def test_stp_expire_both_expires_the_maker_and_the_taker():
    ref = make(stp="expire_both")
    run(ref, limit(1, 1, "sell", 10, 1), limit(2, 2, "sell", 10, 1))
    ev = run(ref, limit(3, 1, "buy", 10, 1))
    assert O(ev) == [(3, "accepted", ""), (1, "expired", "Self-trade prevented"),
                     (3, "expired", "Self-trade prevented")]
    assert B(ev) == [(1, USDT, "lock", 10), (1, BTC, "unlock", 1), (1, USDT, "unlock", 10)]
    assert T(ev) == []
    assert book(ref) == [(2, "sell", 10, 1, 0, 1)]


def test_stp_applies_only_to_crossing_makers():
    ref = make(stp="expire_taker")
    ev = run(ref, limit(1, 1, "sell", 12, 1), limit(2, 1, "buy", 10, 1))
    assert O(ev) == [(1, "accepted", ""), (2, "accepted", "")]
    assert book(ref) == [(2, "buy", 10, 1, 0, 10), (1, "sell", 12, 1, 0, 1)]


# -- fees ----------------------------------------------------------------------

def test_fees_go_to_the_fee_account_by_role():
    ref = make(fund=10**6, maker_ppm=1000, taker_ppm=2000, fee_user=FEES)
    run(ref, limit(1, 2, "sell", 10, 1000))
    ev = run(ref, limit(2, 1, "buy", 10, 1000))
    # buyer (taker) fee = 1000 * 2000 / 10^6 = 2 BTC units; seller (maker) fee =
    # 10000 * 1000 / 10^6 = 10 USDT units
    assert T(ev) == [(10, 1000, 10000, 2, 1, 2, 10)]
    assert B(ev)[1:] == [(1, USDT, "spend", 10000), (1, BTC, "credit", 998),
                         (2, BTC, "spend", 1000), (2, USDT, "credit", 9990),
                         (FEES, BTC, "fee", 2), (FEES, USDT, "fee", 10)]
    # roles swapped: the seller is the taker now
    run(ref, limit(3, 1, "buy", 10, 1000))
    ev = run(ref, limit(4, 2, "sell", 10, 1000))
    assert T(ev) == [(10, 1000, 10000, 3, 4, 1, 20)]


def test_fee_is_at_least_one_unit():
    ref = make(maker_ppm=1000, taker_ppm=2000, fee_user=FEES)
    run(ref, limit(1, 2, "sell", 10, 1))
    ev = run(ref, limit(2, 1, "buy", 10, 1))
    # 1 * 2000 / 10^6 and 10 * 1000 / 10^6 both floor to 0: the minimum is 1
    assert T(ev) == [(10, 1, 10, 2, 1, 1, 1)]
    assert (1, BTC, "credit", 0) in B(ev) and (2, USDT, "credit", 9) in B(ev)


# -- dust policies (ETH_USDT: cost(p, q) = floor(p*q / 10)) ---------------------

def _buy_with_two_fills(dust):
    """Buy 5 ETH at 15 (locks floor(75/10) = 7), then two sells of 1 fill it:
    each trade costs floor(15/10) = 1, so L = 5 while cost(15, R=3) = 4."""
    ref = make(dust=dust)
    run(ref, limit(1, 1, "buy", 15, 5, symbol=ETH_USDT),
         limit(2, 2, "sell", 15, 1, symbol=ETH_USDT), limit(3, 2, "sell", 15, 1, symbol=ETH_USDT))
    assert book(ref) == [(1, "buy", 15, 5, 2, 5)]
    assert slot(ref, 1, USDT) == (993, 5)
    return ref


def test_release_policy_unlocks_the_rounding_dust_of_a_filled_buy():
    ref = _buy_with_two_fills(R.DUST_RELEASE)
    ev = run(ref, limit(4, 2, "sell", 15, 3, symbol=ETH_USDT))   # costs floor(45/10) = 4
    assert B(ev)[-1] == (1, USDT, "unlock", 1)
    assert slot(ref, 1, USDT) == (994, 0)


def test_keep_policy_leaves_the_rounding_dust_of_a_filled_buy_frozen():
    ref = _buy_with_two_fills(R.DUST_KEEP)
    ev = run(ref, limit(4, 2, "sell", 15, 3, symbol=ETH_USDT))
    assert B(ev)[-1] == (2, USDT, "credit", 4)                    # no release: cost(15, 0) = 0
    assert slot(ref, 1, USDT) == (993, 1)


@pytest.mark.parametrize("dust, released, frozen_after", [
    (R.DUST_RELEASE, 5, 0),       # all of L
    (R.DUST_KEEP, 4, 1),          # cost(15, 3) = 4, 1 stays frozen
])
def test_cancel_releases_by_dust_policy(dust, released, frozen_after):
    ref = _buy_with_two_fills(dust)
    ev = run(ref, cancel(1, 1))
    assert B(ev) == [(1, USDT, "unlock", released)]
    assert slot(ref, 1, USDT)[1] == frozen_after


@pytest.mark.parametrize("dust, unlocked, lock_after", [
    (R.DUST_RELEASE, 2, 3),       # new L = cost(15, 2) = 3; unlock 5 - 3
    (R.DUST_KEEP, 1, 4),          # cost(15, 3) - cost(15, 2) = 4 - 3
])
def test_reduce_of_a_buy_unlocks_by_dust_policy(dust, unlocked, lock_after):
    ref = _buy_with_two_fills(dust)
    ev = run(ref, reduce(1, 1, 1))
    assert O(ev) == [(1, "reduced", "")]
    assert (ev.orders[0]["qty"], ev.orders[0]["last_qty"]) == (4, 1)
    assert B(ev) == [(1, USDT, "unlock", unlocked)]
    assert book(ref) == [(1, "buy", 15, 4, 2, lock_after)]


@pytest.mark.parametrize("dust, delta", [
    (R.DUST_RELEASE, ("lock", 1)),     # need cost(20, 3) = 6, have L = 5
    (R.DUST_KEEP, ("lock", 2)),        # need 6, have cost(15, 3) = 4
])
def test_move_of_a_buy_adjusts_the_lock_by_dust_policy(dust, delta):
    ref = _buy_with_two_fills(dust)
    ev = run(ref, move(1, 1, 20))
    assert B(ev) == [(1, USDT, *delta)]
    assert book(ref) == [(1, "buy", 20, 5, 2, 5 + delta[1])]


# -- cancel --------------------------------------------------------------------

def test_cancel_releases_the_lock():
    ref = make()
    run(ref, limit(1, 1, "buy", 10, 2))
    ev = run(ref, cancel(1, 1))
    assert O(ev) == [(1, "cancelled", "")]
    assert B(ev) == [(1, USDT, "unlock", 20)]
    assert book(ref) == [] and slot(ref, 1, USDT) == (1000, 0)


def test_cancel_of_other_users_order_is_rejected():
    ref = make()
    run(ref, limit(1, 1, "buy", 10, 2))
    ev = run(ref, cancel(1, 2))
    assert O(ev) == [(1, "rejected", "Order not found")]
    (o,) = ev.orders
    # the rejection copies the command, and reveals nothing of the order
    assert (o["user_id"], o["price"], o["qty"], o["kind"]) == (2, 0, 0, R.CMD_CANCEL)
    assert B(ev) == []
    assert book(ref) == [(1, "buy", 10, 2, 0, 20)]


def test_cancel_of_an_unknown_or_finished_order_is_rejected():
    ref = make()
    run(ref, limit(1, 2, "sell", 10, 1), limit(2, 1, "buy", 10, 1))    # both filled
    ev = run(ref, cancel(1, 2), cancel(77, 1))
    assert O(ev) == [(1, "rejected", "Order not found"), (77, "rejected", "Order not found")]


# -- reduce --------------------------------------------------------------------

def test_reduce_keeps_priority():
    ref = make()
    run(ref, limit(1, 2, "sell", 10, 5), limit(2, 3, "sell", 10, 5))
    ev = run(ref, reduce(1, 2, 2))
    assert O(ev) == [(1, "reduced", "")]
    assert (ev.orders[0]["qty"], ev.orders[0]["last_qty"]) == (3, 2)
    assert B(ev) == [(2, BTC, "unlock", 2)]
    ev = run(ref, limit(3, 1, "buy", 10, 3))
    assert T(ev) == [(10, 3, 30, 3, 1, 0, 0)]
    assert book(ref) == [(2, "sell", 10, 5, 0, 5)]


@pytest.mark.parametrize("by", [5, 6, INT64_MAX])
def test_reduce_by_the_remaining_or_more_cancels(by):
    ref = make()
    run(ref, limit(1, 2, "sell", 10, 5))
    ev = run(ref, reduce(1, 2, by))
    assert O(ev) == [(1, "cancelled", "")]
    assert ev.orders[0]["kind"] == R.CMD_REDUCE
    assert B(ev) == [(2, BTC, "unlock", 5)]
    assert book(ref) == []


def test_reduce_rejections():
    ref = make()
    run(ref, limit(1, 2, "sell", 10, 5))
    ev = run(ref, reduce(1, 2, 0), reduce(1, 2, -1), reduce(99, 2, 0), reduce(99, 2, 1),
             reduce(1, 3, 1))
    assert O(ev) == [(1, "rejected", "Invalid quantity"), (1, "rejected", "Invalid quantity"),
                     (99, "rejected", "Invalid quantity"), (99, "rejected", "Order not found"),
                     (1, "rejected", "Order not found")]
    assert book(ref) == [(1, "sell", 10, 5, 0, 5)]


# -- move ----------------------------------------------------------------------

def test_move_loses_priority():
    ref = make()
    run(ref, limit(1, 2, "sell", 10, 1), limit(2, 3, "sell", 10, 1))
    ev = run(ref, move(1, 2, 10))                      # same price, back of the queue
    assert O(ev) == [(1, "moved", "")]
    assert B(ev) == []                                 # a sell's lock is its qty: no change
    ev = run(ref, limit(3, 1, "buy", 10, 1))
    assert T(ev) == [(10, 1, 10, 3, 2, 0, 0)]
    assert book(ref) == [(1, "sell", 10, 1, 0, 1)]


def test_move_re_matches_as_taker_with_refund_against_the_new_price():
    ref = make()
    run(ref, limit(1, 2, "buy", 8, 2), limit(2, 3, "sell", 9, 1))     # locks 16; no cross
    ev = run(ref, move(1, 2, 10))
    # need cost(10, 2) = 20, have 16: lock 4; trade at 9, refund cost(10 - 9, 1) = 1
    assert O(ev) == [(1, "moved", ""), (2, "filled", ""), (1, "partially_filled", "")]
    assert all(o["kind"] == R.CMD_MOVE for o in ev.orders)
    assert ev.orders[0]["price"] == 10
    assert T(ev) == [(9, 1, 9, 1, 2, 0, 0)]
    assert ev.trades[0]["taker_side"] == R.SIDE_BUY
    assert B(ev) == [(2, USDT, "lock", 4),
                     (2, USDT, "spend", 9), (2, BTC, "credit", 1),
                     (3, BTC, "spend", 1), (3, USDT, "credit", 9),
                     (2, USDT, "unlock", 1)]
    assert book(ref) == [(1, "buy", 10, 2, 1, 10)]     # rests: L = 20 - 9 - 1


def test_move_down_unlocks_the_difference():
    ref = make()
    run(ref, limit(1, 2, "buy", 8, 2))
    ev = run(ref, move(1, 2, 5))
    assert B(ev) == [(2, USDT, "unlock", 6)]
    assert book(ref) == [(1, "buy", 5, 2, 0, 10)]


def test_move_that_hits_an_own_order_under_expire_taker_expires():
    ref = make(stp="expire_taker")
    run(ref, limit(1, 1, "sell", 12, 1), limit(2, 1, "buy", 10, 1))
    ev = run(ref, move(2, 1, 12))
    # resting at 12 would cross the book: the moved order expires instead
    assert O(ev) == [(2, "moved", ""), (2, "expired", "Self-trade prevented")]
    assert B(ev) == [(1, USDT, "lock", 2), (1, USDT, "unlock", 12)]
    assert book(ref) == [(1, "sell", 12, 1, 0, 1)]


def test_move_rejections():
    ref = make()
    run(ref, limit(1, 2, "buy", 8, 2), limit(2, 2, "sell", 50, 1))    # u2 USDT avail 984
    ev = run(ref, move(1, 2, 0), move(1, 2, -3), move(1, 3, 9), move(77, 2, 9),
             move(1, 2, 2**62),        # cost(2^62, 2) = 2^63 does not fit
             move(1, 2, 501),          # needs 1002 - 16 = 986 > 984
             move(2, 2, 2**62))        # a sell has no cost to overflow
    assert O(ev) == [(1, "rejected", "Invalid price"), (1, "rejected", "Invalid price"),
                     (1, "rejected", "Order not found"), (77, "rejected", "Order not found"),
                     (1, "rejected", "Invalid quantity"), (1, "rejected", "Insufficient balance"),
                     (2, "moved", "")]
    assert ev.orders[5]["price"] == 501                # the command's price, not the order's
    assert B(ev) == []
    assert book(ref) == [(1, "buy", 8, 2, 0, 16), (2, "sell", 2**62, 1, 0, 1)]
    assert O(run(ref, move(1, 2, 500))) == [(1, "moved", "")]       # 1000 - 16 = 984: fits


# -- invariants on a mixed scenario ----------------------------------------------

@pytest.mark.parametrize("dust", [R.DUST_RELEASE, R.DUST_KEEP], ids=["release", "keep"])
def test_invariants_hold_through_a_mixed_scenario(dust):
    syms = symbols(stp="expire_maker", maker_ppm=500, taker_ppm=1500, fee_user=FEES)
    ref = IMPL["cls"](ASSETS, syms, dust=dust, capacity=SMALL)
    flows = Flows()
    script = [deposit(u, a, 10_000) for u in (1, 2, 3) for a in (BTC, USDT, ETH)] + [
        limit(1, 1, "buy", 15, 7, symbol=ETH_USDT), limit(2, 2, "sell", 13, 3, symbol=ETH_USDT),
        limit(3, 3, "sell", 9, 4), limit(4, 1, "buy", 11, 9), move(4, 1, 8), reduce(3, 3, 1),
        market_buy(5, 2, budget=40), limit(6, 3, "sell", 8, 20), cancel(1, 1),
        market_sell(7, 1, qty=5, symbol=ETH_USDT), withdraw(2, USDT, 100)]
    for cmd in script:
        flows.observe(ref.apply(batch(cmd)))
        check_invariants(ref, syms, dust, flows)


# -- orders from the gateway: ids by the sequencer, client order ids -----------

def test_a_place_without_an_order_id_gets_its_seq():
    ref = make()                        # the deposits took seqs 1..9
    ev = run(ref, limit(0, 1, "buy", 10, 1), limit(0, 2, "sell", 20, 1), cancel(10, 1))
    assert O(ev) == [(10, "accepted", ""), (11, "accepted", ""), (10, "cancelled", "")]


def test_a_client_order_id_is_unique_among_the_users_open_orders():
    ref = make()
    cid = 0x1234_5678_9ABC
    ev = run(ref, dict(limit(0, 1, "buy", 10, 1), cid=cid),
             dict(limit(0, 1, "buy", 11, 1), cid=cid),          # a retry: refused, nothing locked
             dict(limit(0, 2, "buy", 10, 1), cid=cid))          # another user's: its own
    assert O(ev) == [(10, "accepted", ""), (11, "rejected", "Duplicate client order id"), (12, "accepted", "")]
    assert [(int(b["user_id"]), R.OP_NAMES[b["op"]], int(b["amount"])) for b in ev.balances] == [
        (1, "lock", 10), (2, "lock", 10)]


def test_a_client_order_id_is_free_again_once_its_order_leaves_the_book():
    ref = make()
    cid = 77
    ev = run(ref, dict(limit(0, 1, "buy", 10, 1), cid=cid), cancel(10, 1),
             dict(limit(0, 1, "buy", 10, 1), cid=cid),
             dict(ioc(0, 2, "sell", 10, 1)),                     # fills order 12 completely
             dict(limit(0, 1, "buy", 9, 1), cid=cid))
    assert [(o, s) for o, s, _ in O(ev) if s in ("accepted", "rejected", "cancelled")] == [
        (10, "accepted"), (10, "cancelled"), (12, "accepted"), (13, "accepted"), (14, "accepted")]
