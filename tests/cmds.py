"""Build command records (R.CMD) for tests, one readable call per command.

    from tests.cmds import batch, deposit, place, cancel
    cmds = batch(deposit(1, QUOTE, 10_000), place(7, 1, "buy", 100, 5))

Each helper returns a plain dict of CMD fields; `batch(*cmds)` turns any mix of
dicts (and lists of dicts) into one zeroed np.ndarray of R.CMD, `seq` left 0
(the core assigns it). Sides, types and tifs may be given as the R.* codes or
as their names ("buy", "market", "ioc").
"""
from __future__ import annotations

import numpy as np

from xinfinity.engine import records as R

_SIDES = {name: code for code, name in R.SIDE_NAMES.items()}
_TYPES = {name: code for code, name in R.TYPE_NAMES.items()}
_TIFS = {name: code for code, name in R.TIF_NAMES.items()}


def _code(value, names: dict) -> int:
    return names[value] if isinstance(value, str) else int(value)


def place(order_id: int, user: int, side, price: int, qty: int, symbol: int = 0,
          order_type=R.TYPE_LIMIT, tif=R.TIF_GTC, budget: int = 0) -> dict:
    """A place command. A market buy's quote budget goes in `budget` (qty 0 = unlimited)."""
    return dict(kind=R.CMD_PLACE, order_id=order_id, user_id=user, side=_code(side, _SIDES),
                price=price, qty=qty, symbol=symbol, order_type=_code(order_type, _TYPES),
                tif=_code(tif, _TIFS), amount=budget)


def limit(order_id: int, user: int, side, price: int, qty: int, symbol: int = 0,
          tif=R.TIF_GTC) -> dict:
    return place(order_id, user, side, price, qty, symbol, R.TYPE_LIMIT, tif)


def ioc(order_id: int, user: int, side, price: int, qty: int, symbol: int = 0) -> dict:
    return place(order_id, user, side, price, qty, symbol, R.TYPE_LIMIT, R.TIF_IOC)


def market_buy(order_id: int, user: int, budget: int, qty: int = 0, symbol: int = 0) -> dict:
    return place(order_id, user, R.SIDE_BUY, 0, qty, symbol, R.TYPE_MARKET, R.TIF_IOC, budget)


def market_sell(order_id: int, user: int, qty: int, symbol: int = 0) -> dict:
    return place(order_id, user, R.SIDE_SELL, 0, qty, symbol, R.TYPE_MARKET, R.TIF_IOC)


def cancel(order_id: int, user: int, symbol: int = 0) -> dict:
    return dict(kind=R.CMD_CANCEL, order_id=order_id, user_id=user, symbol=symbol)


def reduce(order_id: int, user: int, qty: int, symbol: int = 0) -> dict:
    """Reduce the order's quantity by `qty`."""
    return dict(kind=R.CMD_REDUCE, order_id=order_id, user_id=user, qty=qty, symbol=symbol)


def move(order_id: int, user: int, price: int, symbol: int = 0) -> dict:
    """Move the order to the new limit price `price`."""
    return dict(kind=R.CMD_MOVE, order_id=order_id, user_id=user, price=price, symbol=symbol)


def deposit(user: int, asset: int, amount: int) -> dict:
    return dict(kind=R.CMD_DEPOSIT, user_id=user, symbol=asset, amount=amount)


def withdraw(user: int, asset: int, amount: int) -> dict:
    return dict(kind=R.CMD_WITHDRAW, user_id=user, symbol=asset, amount=amount)


def batch(*cmds) -> np.ndarray:
    """One R.CMD array from command dicts (or lists of them), in order."""
    flat: list[dict] = []
    for c in cmds:
        if isinstance(c, dict):
            flat.append(c)
        else:
            flat.extend(c)
    out = np.zeros(len(flat), R.CMD)
    for i, c in enumerate(flat):
        for name, value in c.items():
            out[i][name] = value
    return out
