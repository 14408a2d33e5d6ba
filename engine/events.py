"""What one `apply(cmds)` call of the core returns, shared by every implementation.

`Events` holds the three event streams a batch of commands produced, each in
emission order, as numpy structured arrays of the layouts in `records.py`
(`ORDER_EVENT`, `TRADE_EVENT`, `BALANCE_EVENT`; `reserved` bytes zero).

`BALANCE_ROW` and `OPEN_ORDER_ROW` are the row layouts of the state views
`balances()` and `open_orders()` of docs/ENGINE.md ("Python API"). They are
views for tests and tools, not wire records, so they are packed but carry no
size contract; implementations should return exactly these dtypes so that
state can be compared array to array.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from xinfinity.engine import records as R

# One balance slot, as returned by `balances()`: by user id, then asset id.
BALANCE_ROW = np.dtype([
    ("user_id", "<i8"), ("asset", "<u2"), ("avail", "<i8"), ("frozen", "<i8"),
    ("version", "<i8"),
])

# One resting order, as returned by `open_orders()`: symbol ascending, bids best
# first, then asks best first, FIFO within a level. `lock` is the amount of the
# lock asset still frozen for the order (quote for a buy, base for a sell).
OPEN_ORDER_ROW = np.dtype([
    ("symbol", "<u2"), ("side", "u1"), ("price", "<i8"), ("order_id", "<i8"),
    ("user_id", "<i8"), ("qty", "<i8"), ("filled", "<i8"), ("lock", "<i8"),
])


class Events(NamedTuple):
    """The events of one `apply` call: three arrays, each in emission order."""

    orders: np.ndarray      # R.ORDER_EVENT
    trades: np.ndarray      # R.TRADE_EVENT
    balances: np.ndarray    # R.BALANCE_EVENT

    @classmethod
    def empty(cls) -> "Events":
        """Zero-length arrays of the three event layouts."""
        return cls(np.zeros(0, R.ORDER_EVENT), np.zeros(0, R.TRADE_EVENT),
                   np.zeros(0, R.BALANCE_EVENT))


def concat(events: Sequence[Events]) -> Events:
    """Join the events of consecutive `apply` calls into one `Events`, in order."""
    if not events:
        return Events.empty()
    return Events(
        np.concatenate([e.orders for e in events]).astype(R.ORDER_EVENT, copy=False),
        np.concatenate([e.trades for e in events]).astype(R.TRADE_EVENT, copy=False),
        np.concatenate([e.balances for e in events]).astype(R.BALANCE_EVENT, copy=False),
    )


def records(dtype: np.dtype, rows: Sequence[tuple], names: Sequence[str]) -> np.ndarray:
    """Build a zeroed array of `dtype` from tuples holding the fields `names`.

    Fields not named (the `reserved` bytes) stay zero. Used by the plain-Python
    reference and by tests that spell out expected events.
    """
    out = np.zeros(len(rows), dtype)
    if rows:
        # Every field value fits an int64; one 2-D array is much faster to build
        # than assigning Python columns field by field.
        table = np.array(rows, dtype=np.int64).reshape(len(rows), len(names))
        for i, name in enumerate(names):
            out[name] = table[:, i]
    return out
