"""Output buffers and the functions that append events to them.

`Out` holds one preallocated array per stream and `n`, the number of records
written to each. Kernels check free space before a command (or before a fill)
and hand control back to the caller to flush when it runs low; nothing here
ever grows or wraps. Reserved bytes are never written, so they stay zero.
"""
from collections import namedtuple

import numpy as np
from .jit import kernel

from . import records as R
from .arith import div_u128

Out = namedtuple("Out", ["oev", "tev", "bev", "settle", "n"])
N_OEV, N_TEV, N_BEV, N_SETTLE = 0, 1, 2, 3


def new_out(oev_cap=1 << 13, tev_cap=1 << 12, bev_cap=1 << 14, settle_cap=1 << 9) -> Out:
    return Out(np.zeros(oev_cap, R.ORDER_EVENT), np.zeros(tev_cap, R.TRADE_EVENT),
               np.zeros(bev_cap, R.BALANCE_EVENT), np.zeros(settle_cap, R.SETTLE),
               np.zeros(4, np.int64))


@kernel(inline="always")
def emit_rejected(out, cmd, seq, reason):
    """Order event `rejected` copying the command's fields."""
    e = out.oev[out.n[N_OEV]]
    out.n[N_OEV] += 1
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
    e = out.oev[out.n[N_OEV]]
    out.n[N_OEV] += 1
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
    e = out.bev[out.n[N_BEV]]
    out.n[N_BEV] += 1
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
    e = out.tev[out.n[N_TEV]]
    out.n[N_TEV] += 1
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
    s = out.settle[out.n[N_SETTLE]]
    out.n[N_SETTLE] += 1
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
