"""Random trading traffic on two symbols through the real (numba) core, step by
step, for the market data property tests.

A scenario is a list of steps; a step is a few commands run as one batch (one
settlement step) at an entry time that moves on by a drawn jump, now and then
backwards (several gateway clocks). Generation is flat, as in
tests/property/test_differential.py: each command is a tuple of small draws
decoded by `_resolve`, cross references are relative ("the k-th most recent
place"), so hypothesis shrinks each field alone. Prices sit on a small grid so
that orders cross, partially fill and self-trade often; symbol 1 expires a
self-trading taker, so GTC takers also expire after a partial fill; a
capacity of 2 price buckets for 4 books makes some GTC remainders expire
for want of a level.
"""
from __future__ import annotations

from typing import Iterator, NamedTuple

import numpy as np
from hypothesis import strategies as st

from xinfinity.config import Asset, Capacity, Symbol
from xinfinity.engine.core import Core
from xinfinity.engine.events import Events

from tests import cmds as C

ASSETS = [Asset(1, "BTC", 3, 3), Asset(2, "USDT", 2, 2), Asset(3, "ETH", 1, 1)]
SYMBOLS = [Symbol(0, "BTC_USDT", 1, 2, 0, 0),
           Symbol(1, "ETH_USDT", 3, 2, 0, 0, stp="expire_taker")]
USERS = (1, 2, 3, 4)
T0_MS = 1_700_000_000_000
DAY_MS = 86_400_000

KINDS = ["limit"] * 6 + ["ioc"] * 2 + ["market_buy", "market_sell", "cancel", "cancel", "reduce", "move", "move"]
PRICES = [100, 101, 99, 102, 98, 100, 101, 103, 97]
QTYS = [1, 2, 3, 5, 8, 12, 4, 7]
BUDGETS = [50, 200, 1000, 5]
# ms an entry time moves on before a step: mostly a little, sometimes over a candle or a day, or back
TIME_JUMPS = [0, 1, 7, 999, 20_000, 60_000, 61_001, 180_000, 3_600_000, 14_400_000, DAY_MS - 1, DAY_MS, -1, -60_000]
COMMAND = st.tuples(st.integers(0, len(KINDS) - 1), st.integers(0, 7), st.integers(0, len(USERS) - 1),
                    st.booleans(), st.integers(0, len(PRICES) - 1), st.integers(0, len(QTYS) - 1),
                    st.booleans())
STEP = st.tuples(st.integers(0, len(TIME_JUMPS) - 1), st.lists(COMMAND, min_size=1, max_size=6))
SCENARIO = st.tuples(st.sampled_from([2, 64]), st.lists(STEP, min_size=1, max_size=40))


class Step(NamedTuple):
    cmds: np.ndarray            # R.CMD, seq and ts set
    events: Events
    ts_ns: dict[int, int]       # seq -> entry time


def _resolve(draws: list[tuple], placed: list[tuple[int, int, int]], reuse_ids: bool) -> list[dict]:
    """Command dicts from flat draws (kind, ref, user, sell, price, qty, symbol);
    placed: (order id, user, symbol) of the places so far, appended to."""
    out = []
    for kind_i, ref, user_i, sell, price_i, qty_i, symbol_1 in draws:
        kind, user, symbol = KINDS[kind_i], USERS[user_i], int(symbol_1)
        side, price, qty = ("sell" if sell else "buy"), PRICES[price_i], QTYS[qty_i]
        if kind in ("cancel", "reduce", "move"):
            if not placed:
                continue
            order_id, owner, symbol = placed[-1 - ref % len(placed)]
            user = owner if ref < 6 else user          # now and then another user's order: refused
            out.append(C.cancel(order_id, user, symbol) if kind == "cancel" else
                       C.reduce(order_id, user, qty, symbol) if kind == "reduce" else
                       C.move(order_id, user, price, symbol))
            continue
        # a fresh order id, or now and then a recent one (refused while that order is open)
        order_id = placed[-1][0] if reuse_ids and ref == 7 and placed else len(placed) + 1
        if kind == "limit":
            cmd = C.limit(order_id, user, side, price, qty, symbol)
        elif kind == "ioc":
            cmd = C.ioc(order_id, user, side, price, qty, symbol)
        elif kind == "market_buy":
            cmd = C.market_buy(order_id, user, BUDGETS[qty_i % len(BUDGETS)], (0, qty)[sell], symbol)
        else:
            cmd = C.market_sell(order_id, user, qty, symbol)
        placed.append((order_id, user, symbol))
        out.append(cmd)
    return out


def run(scenario, reuse_ids: bool = True) -> Iterator[tuple[Step, Core]]:
    """Deposits, then every drawn step through a fresh core; yields each step and the core after it.
    reuse_ids False: every place has an order id of its own, as the gateway's do (the order
    store keeps one row per id: a place reusing a closed order's id would overwrite its row)."""
    max_buckets, steps = scenario
    core = Core(ASSETS, SYMBOLS, capacity=Capacity(max_users=16, max_orders=256, max_buckets=max_buckets),
                prefault=False)
    opening = [C.deposit(u, a.id, 10**9) for u in USERS for a in ASSETS]
    placed: list[tuple[int, int, int]] = []
    now_ms = T0_MS
    for jump_i, draws in [(0, None)] + steps:
        now_ms += TIME_JUMPS[jump_i]
        cmds = C.batch(opening if draws is None else _resolve(draws, placed, reuse_ids))
        if not len(cmds):
            continue
        first = core.counters()["next_seq"]
        cmds["seq"] = np.arange(first, first + len(cmds))
        cmds["ts"] = (now_ms + np.arange(len(cmds))) * 1_000_000 + 123
        events = core.apply(cmds)
        yield Step(cmds, events, dict(zip(cmds["seq"].tolist(), cmds["ts"].tolist()))), core
