"""Random command streams: the numba Core equals the Reference, and the rules' invariants hold.

Streams run over 2-3 symbols sharing assets (one with fees and a fee account,
one with a self-trade prevention mode other than none), a few users, a small
price grid and small quantities, so that orders cross, self-trade and round
often; every command kind appears, on existing and missing order ids, with the
occasional zero, negative or overflowing value. Each test runs once per dust
policy. On failure hypothesis prints the falsifying scenario (the command list)
and a `@reproduce_failure` blob; `--hypothesis-seed=N` replays a run.

- test_numba_core_matches_reference: Core and Reference fed one command at a
  time must emit identical events and hold identical state after every command;
  then the whole stream in one `apply` call must give the same events again.
  Skipped only while `xinfinity.engine.core` does not exist.
- test_reference_is_deterministic: the same harness with the Reference on both
  sides (two instances; one-at-a-time versus one batch).
- test_reference_keeps_the_invariants: TRADING_RULES section 7 after every command.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xinfinity.config import Asset, Capacity, Symbol
from xinfinity.engine import records as R
from xinfinity.engine.core import Core
from xinfinity.engine.events import concat
from xinfinity.engine.reference import Reference

from tests import cmds as C
from tests.invariants import (Flows, assert_same_events, assert_same_state,
                              check_balance_events, check_invariants)

INT64_MAX = 2**63 - 1

# BTC has 3 decimals, USDT 2, ETH 1. With the price decimals below:
#   BTC_USDT cost = floor(p*q / 10)   (cost_den 10: rounding on most fills)
#   ETH_USDT cost = p*q*10            (cost_num 10)
#   ETH_BTC  cost = p*q               (num = den = 1)
ASSETS = [Asset(id=1, name="BTC", decimals=3, display_decimals=3),
          Asset(id=2, name="USDT", decimals=2, display_decimals=2),
          Asset(id=3, name="ETH", decimals=1, display_decimals=1)]
ASSET_IDS = [1, 2, 3]
UNKNOWN_ASSET = 9
UNKNOWN_SYMBOL = 7
FEE_USERS = (90, 91)
NEW_USER = 77               # never in the opening deposits: unknown until it deposits


# Generation is flat on purpose: each command is a fixed tuple of small integer
# draws, decoded by `_resolve`, and cross-references are relative ("the k-th most
# recent place"). Hypothesis then shrinks each field on its own and deletes any
# command cleanly; nested or dependent strategies made shrinking take minutes.
# Every field is decoded as `common[x % len(common)]` for most x and a rare
# value for the top few, so it shrinks towards the first common value.
# "skip" is first: it is what hypothesis shrinks the padding of a failing stream
# to (lists have min_size 12), and it resolves to no command at all.
KINDS = ["skip"] + ["limit"] * 5 + ["ioc"] * 2 + [
    "market_buy", "market_sell", "cancel", "reduce", "move", "move", "deposit", "withdraw"]
PRICES = ([10, 11, 9, 12, 10, 11], [0, -1, 2**62, INT64_MAX])
QTYS = (list(range(1, 13)), [0, -1, 2**40, INT64_MAX])
AMOUNTS = ([0, 10, 50, 100, 400], [-1, 2**62, INT64_MAX, 1])
BUDGETS = ([40, 10, 100, 300, 15], [0, -1, INT64_MAX, 1])
MARKET_BUY_QTYS = ([0, 1, 3, 8, 0], [-1, 2, 0, 12])
OPENING = ([100_000], [1000, 30, 0])
FIELD = st.integers(0, 39)          # 0..35 common, 36..39 rare
COMMAND = st.tuples(st.integers(0, len(KINDS) - 1), st.integers(0, 19), st.integers(0, 19),
                    st.booleans(), st.integers(0, 19), FIELD, FIELD)


def _pick(x: int, values: tuple[list, list], rare_from: int = 36):
    common, rare = values
    return common[x % len(common)] if x < rare_from else rare[(x - rare_from) % len(rare)]


def _resolve(draws, users: list[int], symbol_ids: list[int]) -> list[dict]:
    """Command dicts from flat draws (kind, ref, user, side, where, value, qty)."""
    placed: list[tuple[int, int]] = []          # (order id, user) of the places so far
    out = []
    for kind_i, ref, user_i, sell, where, value, qty in draws:
        kind = KINDS[kind_i]
        if kind == "skip":
            continue
        user = users[user_i % len(users)] if user_i < 18 else (NEW_USER, FEE_USERS[0])[user_i - 18]
        symbol = symbol_ids[where % len(symbol_ids)] if where < 19 else UNKNOWN_SYMBOL
        side = "sell" if sell else "buy"
        if kind in ("limit", "ioc", "market_buy", "market_sell"):
            # mostly a fresh order id; sometimes that of a recent place (a duplicate if open)
            back = ref - 16
            order_id = placed[-back][0] if 0 < back <= len(placed) else len(placed) + 1
            if kind in ("limit", "ioc"):
                cmd = C.place(order_id, user, side, _pick(value, PRICES), _pick(qty, QTYS),
                              symbol, tif="gtc" if kind == "limit" else "ioc")
            else:
                # A market order's price and tif are ignored by the rules but still
                # travel in its events: vary them (from bits no other use of
                # `where`/`sell` needs here).
                price, tif = (0, 0, 10, -1)[where // 5], "gtc" if sell else "ioc"
                if kind == "market_buy":
                    cmd = C.place(order_id, user, "buy", price, _pick(qty, MARKET_BUY_QTYS),
                                  symbol, "market", tif, budget=_pick(value, BUDGETS))
                else:
                    cmd = C.place(order_id, user, "sell", price, _pick(qty, QTYS), symbol,
                                  "market", tif)
            placed.append((order_id, user))
        elif kind in ("cancel", "reduce", "move"):
            # mostly one of the last 4 places, by its user; else any id, any user
            if ref < 16 and placed:
                order_id, user = placed[-min(1 + ref % 4, len(placed))]
            else:
                order_id = 1 + ref % 16
            cmd = (C.cancel(order_id, user) if kind == "cancel" else
                   C.reduce(order_id, user, _pick(qty, QTYS)) if kind == "reduce" else
                   C.move(order_id, user, _pick(value, PRICES)))
        else:
            asset = ASSET_IDS[where % len(ASSET_IDS)] if where < 19 else UNKNOWN_ASSET
            cmd = (C.deposit if kind == "deposit" else C.withdraw)(
                user, asset, _pick(value, AMOUNTS))
        out.append(cmd)
    return out


@st.composite
def scenarios(draw):
    """A config (symbols, capacity) and a command stream over it."""
    stp_1 = draw(st.sampled_from(["expire_taker", "expire_maker", "expire_both"]))
    maker_ppm = draw(st.sampled_from([0, 1000, 250_000]))
    taker_ppm = draw(st.sampled_from([1, 2500, 500_000]))
    symbols = [
        Symbol(id=0, name="BTC_USDT", base_asset_id=1, quote_asset_id=2, price_decimals=0,
               price_display_decimals=0, maker_fee_ppm=maker_ppm, taker_fee_ppm=taker_ppm,
               fee_user_id=FEE_USERS[0]),
        Symbol(id=1, name="ETH_USDT", base_asset_id=3, quote_asset_id=2, price_decimals=0,
               price_display_decimals=0, stp=stp_1),
    ]
    if draw(st.booleans()):
        symbols.append(Symbol(
            id=2, name="ETH_BTC", base_asset_id=3, quote_asset_id=1, price_decimals=2,
            price_display_decimals=2, maker_fee_ppm=draw(st.sampled_from([0, 100_000])),
            taker_fee_ppm=draw(st.sampled_from([0, 3000])), fee_user_id=FEE_USERS[1],
            stp=draw(st.sampled_from(list(R.STP_NAMES.values())))))
    n_fee = len({s.fee_user_id for s in symbols})
    n_users = draw(st.integers(3, 6))
    users = list(range(1, n_users + 1))
    tight = draw(st.integers(0, 9))             # 1 in 10: small user or order capacity
    # Small tables otherwise too: the numba Core allocates its tables per
    # instance, and the defaults (2^16 users, 4096 price buckets) cost it ~100 ms
    # per example. 64 buckets are ample for the prices drawn here (the reference
    # does not model bucket capacity).
    capacity = Capacity(
        max_users=(n_fee + n_users - 1) if tight == 9 else 256,
        max_orders=(2, 4)[draw(st.booleans())] if tight == 8 else 1 << 10,
        max_buckets=64)
    # Opening deposits, so most places pass the balance check (some do not).
    opening = [C.deposit(u, a, _pick(draw(st.integers(0, 9)), OPENING, rare_from=7))
               for u in users for a in ASSET_IDS]
    # min_size sets hypothesis's average list length (about 2 x 12 here).
    stream = draw(st.lists(COMMAND, min_size=12, max_size=60))
    return {"symbols": symbols, "capacity": capacity,
            "cmds": opening + _resolve(stream, users, [s.id for s in symbols])}


SETTINGS = settings(deadline=None, max_examples=200, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DUST = pytest.mark.parametrize("dust", [R.DUST_RELEASE, R.DUST_KEEP], ids=["release", "keep"])


def _describe(cmd: np.ndarray) -> str:
    c = {name: int(cmd[name]) for name in ("order_id", "user_id", "symbol", "side",
                                           "order_type", "tif", "price", "qty", "amount")}
    return f"{R.CMD_NAMES.get(int(cmd['kind']), cmd['kind'])} {c}"


def run_differential(make_left, make_right, scenario) -> None:
    """Feed both sides one command at a time; events and state must be identical.

    Then a fresh left side gets the whole stream in one `apply` call and must
    emit the concatenation of the right side's per-command events.
    """
    cmds = C.batch(scenario["cmds"])
    left, right = make_left(), make_right()
    per_command = []
    for i in range(len(cmds)):
        context = f"after command #{i} (seq {i + 1}) {_describe(cmds[i])}:\n"
        ev_left = left.apply(cmds[i:i + 1])
        ev_right = right.apply(cmds[i:i + 1])
        assert_same_events(ev_left, ev_right, context)
        assert_same_state(left, right, context)
        per_command.append(ev_right)
    whole = make_left().apply(cmds)
    assert_same_events(whole, concat(per_command), "the stream applied in one call:\n")


@pytest.mark.slow
@DUST
@SETTINGS
@given(scenario=scenarios())
def test_numba_core_matches_reference(dust, scenario):
    args = (ASSETS, scenario["symbols"])
    run_differential(lambda: Core(*args, dust=dust, capacity=scenario["capacity"]),
                     lambda: Reference(*args, dust=dust, capacity=scenario["capacity"]),
                     scenario)


@pytest.mark.slow
@DUST
@settings(SETTINGS, max_examples=100)
@given(scenario=scenarios())
def test_reference_is_deterministic(dust, scenario):
    args = (ASSETS, scenario["symbols"])
    make = lambda: Reference(*args, dust=dust, capacity=scenario["capacity"])  # noqa: E731
    run_differential(make, make, scenario)


@pytest.mark.slow
@DUST
@SETTINGS
@given(scenario=scenarios())
def test_reference_keeps_the_invariants(dust, scenario):
    ref = Reference(ASSETS, scenario["symbols"], dust=dust, capacity=scenario["capacity"])
    cmds = C.batch(scenario["cmds"])
    flows, versions = Flows(), {}
    for i in range(len(cmds)):
        ev = ref.apply(cmds[i:i + 1])
        flows.observe(ev)
        try:
            check_balance_events(ref, ev, versions)
            check_invariants(ref, scenario["symbols"], dust, flows)
        except AssertionError as e:
            raise AssertionError(f"after command #{i} {_describe(cmds[i])}: {e}") from None


def _rejected_only(ev) -> bool:
    """The command's events say it was refused: one order event `rejected`, or
    one refused deposit/withdraw, and nothing else."""
    if len(ev.trades):
        return False
    if len(ev.orders) == 1 and not len(ev.balances):
        return ev.orders[0]["status"] == R.ST_REJECTED
    if len(ev.balances) == 1 and not len(ev.orders):
        return ev.balances[0]["reason"] != R.R_NONE
    return False


@DUST
@settings(SETTINGS, max_examples=30)
@given(scenario=scenarios())
def test_a_rejected_command_changes_no_state(dust, scenario):
    """Balances, versions and the books are byte-identical before and after any
    rejected command (only the sequence number moves: a rejection is a final
    state of a sequenced command)."""
    core = Core(ASSETS, scenario["symbols"], dust=dust, capacity=scenario["capacity"])
    cmds = C.batch(scenario["cmds"])
    rejected = 0
    for i in range(len(cmds)):
        before = (core.balances().tobytes(), core.open_orders().tobytes(), core.counters())
        ev = core.apply(cmds[i:i + 1])
        if _rejected_only(ev):
            rejected += 1
            after = (core.balances().tobytes(), core.open_orders().tobytes(), core.counters())
            assert after[:2] == before[:2], f"command #{i} {_describe(cmds[i])} was rejected but changed state"
            assert after[2]["next_seq"] == before[2]["next_seq"] + 1
            assert after[2]["next_trade_id"] == before[2]["next_trade_id"]
