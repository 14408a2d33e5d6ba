"""Hand-made core events for market data tests, one readable call per event.

    md.apply(*batch(10, accepted(10, 1, "buy", 100, 5)))

`batch(seq, *events)` gives `apply`'s arguments: the order and trade events
(dicts from the helpers below) as records, and an entry time for every seq
from the first event's through `seq` (by default seq * 1 ms, or `ms`).
"""
from __future__ import annotations

import numpy as np

from xinfinity.config import Symbol
from xinfinity.engine import records as R
from xinfinity.engine.events import records
from xinfinity.engine.reference import ORDER_FIELDS, TRADE_FIELDS

SYMBOLS = [Symbol(0, "BTC_USDT", 1, 2, 2, 2), Symbol(1, "ETH_USDT", 3, 2, 2, 2)]
_SIDES = {"buy": R.SIDE_BUY, "sell": R.SIDE_SELL}


def order(seq: int, order_id: int, side: str, price: int, qty: int, status: int, filled: int = 0,
          symbol: int = 0, kind: int = R.CMD_PLACE, order_type: int = R.TYPE_LIMIT, tif: int = R.TIF_GTC,
          user: int = 1) -> dict:
    return dict(seq=seq, order_id=order_id, user_id=user, price=price, qty=qty, filled_qty=filled,
                symbol=symbol, kind=kind, status=status, side=_SIDES[side], order_type=order_type, tif=tif)


def accepted(seq: int, order_id: int, side: str, price: int, qty: int, **kw) -> dict:
    return order(seq, order_id, side, price, qty, R.ST_ACCEPTED, **kw)


def trade(seq: int, trade_id: int, price: int, qty: int, taker: str, buyer: int = 1, seller: int = 2,
          symbol: int = 0) -> dict:
    """A trade of `qty` at `price`; quote qty price * qty; `taker`: the side that took."""
    return dict(trade_id=trade_id, seq=seq, price=price, qty=qty, quote_qty=price * qty, buyer_order_id=buyer,
                seller_order_id=seller, symbol=symbol, taker_side=_SIDES[taker])


def batch(seq: int, *events: dict, ms: int | None = None):
    """(orders, trades, ts_ns) of one batch ending at `seq`; every seq's entry time `ms`
    if given, else seq ms."""
    order_rows = [e for e in events if "status" in e]
    trade_rows = [e for e in events if "trade_id" in e]
    first = min([e["seq"] for e in events], default=seq)
    ts_ns = {s: (s if ms is None else ms) * 1_000_000 for s in range(first, seq + 1)}
    return (_records(R.ORDER_EVENT, order_rows, ORDER_FIELDS), _records(R.TRADE_EVENT, trade_rows, TRADE_FIELDS),
            ts_ns)


def _records(dtype: np.dtype, rows: list[dict], fields: tuple[str, ...]) -> np.ndarray:
    return records(dtype, [tuple(r.get(f, 0) for f in fields) for r in rows], fields)
