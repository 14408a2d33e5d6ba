"""Output buffers and the functions that append events to them.

`Out` holds one preallocated array per stream and `n`, the number of records
written to each (indices N_*). Kernels check free space before a command (or before a fill)
and hand control back to the caller to flush when it runs low; nothing here
ever grows or wraps. Reserved bytes are never written, so they stay zero.
"""
from collections import namedtuple

import numpy as np
from .jit import kernel

from . import records as R
from .arith import div_u128

Out = namedtuple("Out", ["order_events", "trade_events", "balance_events", "settles", "n"])
# out.n indices: records written to each stream
N_ORDER_EVENTS, N_TRADE_EVENTS, N_BALANCE_EVENTS, N_SETTLES = 0, 1, 2, 3


def new_out(order_events=1 << 13, trade_events=1 << 12, balance_events=1 << 14, settles=1 << 9) -> Out:
    """Empty buffers holding that many records of each stream."""
    return Out(np.zeros(order_events, R.ORDER_EVENT), np.zeros(trade_events, R.TRADE_EVENT),
               np.zeros(balance_events, R.BALANCE_EVENT), np.zeros(settles, R.SETTLE),
               np.zeros(4, np.int64))


@kernel(inline="always")
def emit_rejected(out, cmd, seq, reason):
    """Order event `rejected` copying the command's fields."""
    e = out.order_events[out.n[N_ORDER_EVENTS]]
    out.n[N_ORDER_EVENTS] += 1
    e.seq = seq
    e.order_id = cmd.order_id
    e.user_id = cmd.user_id
    e.price = cmd.price
    e.qty = cmd.qty
    e.filled_qty = 0
    e.avg_price = 0
    e.last_qty = 0
    e.last_price = 0
    e.trade_id = 0
    e.symbol = cmd.symbol
    e.kind = cmd.kind
    e.status = R.ST_REJECTED
    e.reason = reason
    e.side = cmd.side
    e.order_type = cmd.order_type
    e.tif = cmd.tif


@kernel(inline="always")
def emit_order(out, o, seq, kind, status, reason, last_qty, last_price, trade_id):
    """Order event from the ME's order slot `o` (its fields after the change)."""
    e = out.order_events[out.n[N_ORDER_EVENTS]]
    out.n[N_ORDER_EVENTS] += 1
    e.seq = seq
    e.order_id = o.order_id
    e.user_id = o.user_id
    e.price = o.price
    e.qty = o.qty
    e.filled_qty = o.filled
    e.avg_price = div_u128(o.notional_hi, o.notional_lo, o.filled) if o.filled > 0 else 0
    e.last_qty = last_qty
    e.last_price = last_price
    e.trade_id = trade_id
    e.symbol = o.symbol
    e.kind = kind
    e.status = status
    e.reason = reason
    e.side = o.side
    e.order_type = o.order_type
    e.tif = o.tif


@kernel(inline="always")
def emit_balance(out, seq, trade_id, user_id, asset, op, reason, amount, b):
    """Balance event with the slot `b` as it is now."""
    e = out.balance_events[out.n[N_BALANCE_EVENTS]]
    out.n[N_BALANCE_EVENTS] += 1
    e.seq = seq
    e.trade_id = trade_id
    e.user_id = user_id
    e.amount = amount
    e.avail = b.avail
    e.frozen = b.frozen
    e.version = b.version
    e.asset = asset
    e.op = op
    e.reason = reason


@kernel(inline="always")
def emit_trade(out, trade_id, seq, price, qty, quote_qty, b, s, b_fee, s_fee, symbol, taker_side):
    """Trade event between buyer slot `b` and seller slot `s` (ME order slots)."""
    e = out.trade_events[out.n[N_TRADE_EVENTS]]
    out.n[N_TRADE_EVENTS] += 1
    e.trade_id = trade_id
    e.seq = seq
    e.price = price
    e.qty = qty
    e.quote_qty = quote_qty
    e.buyer_order_id = b.order_id
    e.seller_order_id = s.order_id
    e.buyer_user_id = b.user_id
    e.seller_user_id = s.user_id
    e.buyer_fee = b_fee
    e.seller_fee = s_fee
    e.symbol = symbol
    e.taker_side = taker_side


@kernel(inline="always")
def emit_settle(out, kind, seq, trade_id, price, qty, quote_qty, buyer_fee, seller_fee,
                buyer_ref, seller_ref, taker_side, symbol):
    s = out.settles[out.n[N_SETTLES]]
    out.n[N_SETTLES] += 1
    s.seq = seq
    s.trade_id = trade_id
    s.price = price
    s.qty = qty
    s.quote_qty = quote_qty
    s.buyer_fee = buyer_fee
    s.seller_fee = seller_fee
    s.buyer_ref = buyer_ref
    s.seller_ref = seller_ref
    s.kind = kind
    s.taker_side = taker_side
    s.symbol = symbol
