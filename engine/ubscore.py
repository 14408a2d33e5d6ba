"""UBSCore: the sequencer's state machine: users, balances, order locks.

Sole writer of balances. For each command it decides accept or reject and
locks funds (place, move), moves money for deposits and withdrawals, and later
applies the ME's settle messages: trades, releases of locks of orders that
left the book, shrinking of locks of reduced orders. The rules are
docs/ENGINE.md's.

Invariants (checked by the tests after every command):
- per asset, sum(avail + frozen) over all slots == `asset_total`
  (deposits - withdrawals), which never exceeds 2^63-1, so no credit overflows;
- under the `release` dust policy, frozen of a slot == sum of `lock` of that
  user's open orders on that asset;
- nothing is negative.
"""
from collections import namedtuple

import numpy as np
from .jit import kernel

from . import records as R
from .arith import I64_MAX, cost
from .emit import N_BEV, emit_balance, emit_rejected
from .freelist import pop, push
from .bits import prefetch
from .hashmap import hm_del, hm_get, hm_home, hm_put, new_map

# u.ctr slots
U_SEQ = 0        # last seq given
U_USERS = 1      # user slots in use
U_LOCK_FREE = 2  # free lock slots on the stack
U_DUST = 3       # dust policy

UbsState = namedtuple("UbsState", [
    "bal", "user_ids", "usr_map",
    "locks", "lck_map", "lck_free",
    "asset_total", "asset_ok", "syms", "ctr",
])


def new_ubs_state(syms, assets_ok, max_users, max_orders, dust) -> UbsState:
    usr_map = new_map(max_users)
    lck_map = new_map(max_orders)
    ctr = np.zeros(8, np.int64)
    ctr[U_LOCK_FREE] = max_orders
    ctr[U_DUST] = dust
    return UbsState(
        np.zeros((max_users, len(assets_ok)), R.BALANCE), np.zeros(max_users, np.int64),
        usr_map,
        np.zeros(max_orders, R.ORDER_LOCK), lck_map,
        np.arange(max_orders - 1, -1, -1, dtype=np.int32),
        np.zeros(len(assets_ok), np.int64), assets_ok, syms, ctr,
    )


@kernel(inline="always")
def user_slot(u, user_id, create):
    """Slot of user_id; with create, a new slot if absent (-2 when full)."""
    s = hm_get(u.usr_map, user_id, 0)
    if s >= 0 or not create:
        return s
    n = u.ctr[U_USERS]
    if n == len(u.user_ids):
        return -2
    u.user_ids[n] = user_id
    hm_put(u.usr_map, user_id, 0, n)
    u.ctr[U_USERS] = n + 1
    return n


@kernel(inline="always")
def _asset_known(u, asset):
    return asset < len(u.asset_ok) and u.asset_ok[asset] != 0


# -- balance operations: change the slot, bump its version, emit the event --

@kernel(inline="always")
def _op(u, out, seq, trade_id, us, asset, op, amount, d_avail, d_frozen):
    b = u.bal[us, asset]
    b.avail += d_avail
    b.frozen += d_frozen
    b.version += 1
    emit_balance(out, seq, trade_id, u.user_ids[us], asset, op, R.R_NONE, amount, b)


@kernel()
def _refuse(u, out, seq, cmd, us, op, reason):
    """Balance event for a refused deposit/withdraw: nothing changes."""
    asset = cmd.symbol
    e = out.bev[out.n[N_BEV]]
    out.n[N_BEV] += 1
    e.seq = seq
    e.trade_id = 0
    e.user_id = cmd.user_id
    e.amount = cmd.amount
    e.asset = asset
    e.op = op
    e.reason = reason
    if us >= 0 and _asset_known(u, asset):
        b = u.bal[us, asset]
        e.avail = b.avail
        e.frozen = b.frozen
        e.version = b.version
    else:
        e.avail = 0
        e.frozen = 0
        e.version = 0


@kernel()
def ubs_deposit(u, out, cmd, seq):
    asset = cmd.symbol
    x = cmd.amount
    if x < 0:
        _refuse(u, out, seq, cmd, user_slot(u, cmd.user_id, False), R.OP_DEPOSIT, R.R_INVALID_QUANTITY)
    elif not _asset_known(u, asset):
        _refuse(u, out, seq, cmd, user_slot(u, cmd.user_id, False), R.OP_DEPOSIT, R.R_ASSET_NOT_FOUND)
    elif x > I64_MAX - u.asset_total[asset]:
        _refuse(u, out, seq, cmd, user_slot(u, cmd.user_id, False), R.OP_DEPOSIT, R.R_OVERFLOW)
    else:
        us = user_slot(u, cmd.user_id, True)
        if us < 0:
            _refuse(u, out, seq, cmd, -1, R.OP_DEPOSIT, R.R_USER_CAPACITY)
            return
        u.asset_total[asset] += x
        _op(u, out, seq, 0, us, asset, R.OP_DEPOSIT, x, x, 0)


@kernel()
def ubs_withdraw(u, out, cmd, seq):
    asset = cmd.symbol
    x = cmd.amount
    us = user_slot(u, cmd.user_id, False)
    if x < 0:
        _refuse(u, out, seq, cmd, us, R.OP_WITHDRAW, R.R_INVALID_QUANTITY)
    elif us < 0:
        _refuse(u, out, seq, cmd, us, R.OP_WITHDRAW, R.R_USER_NOT_FOUND)
    elif not _asset_known(u, asset):
        _refuse(u, out, seq, cmd, us, R.OP_WITHDRAW, R.R_ASSET_NOT_FOUND)
    elif u.bal[us, asset].avail < x:
        _refuse(u, out, seq, cmd, us, R.OP_WITHDRAW, R.R_INSUFFICIENT_BALANCE)
    else:
        u.asset_total[asset] -= x
        _op(u, out, seq, 0, us, asset, R.OP_WITHDRAW, x, -x, 0)


@kernel(inline="always")
def ubs_place(u, out, cmd, seq):
    """Check and lock a place. Returns UBSCore's lock slot (the order's `ref`),
    or -1 after emitting the rejection."""
    if cmd.side > R.SIDE_SELL or cmd.order_type > R.TYPE_MARKET or cmd.tif > R.TIF_IOC:
        emit_rejected(out, cmd, seq, R.R_INVALID_COMMAND)
        return -1
    is_mbuy = cmd.order_type == R.TYPE_MARKET and cmd.side == R.SIDE_BUY
    if cmd.order_type == R.TYPE_LIMIT and cmd.price <= 0:
        emit_rejected(out, cmd, seq, R.R_INVALID_PRICE)
        return -1
    if (cmd.amount <= 0 or cmd.qty < 0) if is_mbuy else cmd.qty <= 0:
        emit_rejected(out, cmd, seq, R.R_INVALID_QUANTITY)
        return -1
    us = user_slot(u, cmd.user_id, False)
    if us < 0:
        emit_rejected(out, cmd, seq, R.R_USER_NOT_FOUND)
        return -1
    known = cmd.symbol < len(u.syms) and u.syms[cmd.symbol].active != 0
    if not known:
        emit_rejected(out, cmd, seq, R.R_ASSET_NOT_FOUND)
        return -1
    sym = u.syms[cmd.symbol]
    if cmd.side == R.SIDE_SELL:
        lock, asset = cmd.qty, sym.base_asset
    elif is_mbuy:
        lock, asset = cmd.amount, sym.quote_asset
    else:
        lock, asset = cost(cmd.price, cmd.qty, sym.cost_num, sym.cost_den), sym.quote_asset
        if lock < 0:
            emit_rejected(out, cmd, seq, R.R_INVALID_QUANTITY)
            return -1
    if hm_get(u.lck_map, cmd.order_id, 0) >= 0:
        emit_rejected(out, cmd, seq, R.R_DUPLICATE_ORDER_ID)
        return -1
    if u.ctr[U_LOCK_FREE] == 0:
        emit_rejected(out, cmd, seq, R.R_ORDER_CAPACITY)
        return -1
    if u.bal[us, asset].avail < lock:
        emit_rejected(out, cmd, seq, R.R_INSUFFICIENT_BALANCE)
        return -1
    _op(u, out, seq, 0, us, asset, R.OP_LOCK, lock, -lock, lock)
    ref = pop(u.lck_free, u.ctr, U_LOCK_FREE)
    k = u.locks[ref]
    k.order_id = cmd.order_id
    k.user_id = cmd.user_id
    k.price = cmd.price if cmd.order_type == R.TYPE_LIMIT else 0
    k.remaining = R.QTY_UNLIMITED if (is_mbuy and cmd.qty == 0) else cmd.qty
    k.lock = lock
    k.user_slot = us
    k.symbol = cmd.symbol
    k.lock_asset = asset
    k.side = cmd.side
    k.order_type = cmd.order_type
    k.in_use = 1
    hm_put(u.lck_map, cmd.order_id, 0, ref)
    return ref


@kernel(inline="always")
def ubs_find(u, out, cmd, seq):
    """The lock slot (ref) of the open order a cancel/reduce names, or -1 after
    emitting the rejection (a reduce by <= 0 is `Invalid quantity`)."""
    if cmd.kind == R.CMD_REDUCE and cmd.qty <= 0:
        emit_rejected(out, cmd, seq, R.R_INVALID_QUANTITY)
        return -1
    return _own_order(u, out, cmd, seq)


@kernel(inline="always")
def _own_order(u, out, cmd, seq):
    """Ref of cmd's order if it is open and the user's, else -1 after `Order not found`."""
    ref = hm_get(u.lck_map, cmd.order_id, 0)
    if ref < 0 or u.locks[ref].user_id != cmd.user_id:
        emit_rejected(out, cmd, seq, R.R_ORDER_NOT_FOUND)
        return -1
    return ref


@kernel(inline="always")
def ubs_command(u, out, cmd, seq):
    """UBSCore's part of any command: check, lock, move money. Returns the
    order's ref when the command goes on to the ME, else -1 (its events are out)."""
    kind = cmd.kind
    if kind == R.CMD_PLACE:
        return ubs_place(u, out, cmd, seq)
    if kind == R.CMD_CANCEL or kind == R.CMD_REDUCE:
        return ubs_find(u, out, cmd, seq)
    if kind == R.CMD_MOVE:
        return ubs_move(u, out, cmd, seq)
    if kind == R.CMD_DEPOSIT:
        ubs_deposit(u, out, cmd, seq)
    elif kind == R.CMD_WITHDRAW:
        ubs_withdraw(u, out, cmd, seq)
    else:
        emit_rejected(out, cmd, seq, R.R_INVALID_COMMAND)
    return -1


@kernel(inline="always")
def names_order(cmd):
    """A command that names an existing order (UBSCore looks its ref up)."""
    return cmd.kind == R.CMD_CANCEL or cmd.kind == R.CMD_REDUCE or cmd.kind == R.CMD_MOVE


# Software pipeline over a batch of commands: the order-id hash row of the
# command PREFETCH_FAR ahead is fetched; by the time the command PREFETCH_NEAR
# ahead comes up for its second stage that row is in cache, so its lookup is
# cheap, and the order records it points to are fetched next (the ME's third
# stage, PREFETCH_NEXT ahead, fetches the order's neighbours and level).
PREFETCH_FAR = 16
PREFETCH_NEAR = 6
PREFETCH_NEXT = 2


@kernel(inline="always")
def ubs_prefetch(u, cmds, i, stop):
    """Fetch ahead what cmds[i + PREFETCH_FAR] and cmds[i + PREFETCH_NEAR]
    will touch; returns the ref of the latter when it names an open order
    (so the ME can fetch its slot too), else -1."""
    if i + PREFETCH_FAR < stop:
        prefetch(u.lck_map, hm_home(u.lck_map, cmds[i + PREFETCH_FAR].order_id, 0))
    if i + PREFETCH_NEAR < stop and names_order(cmds[i + PREFETCH_NEAR]):
        ref = hm_get(u.lck_map, cmds[i + PREFETCH_NEAR].order_id, 0)
        if ref >= 0:
            prefetch(u.locks, ref)
        return ref
    return -1


@kernel(inline="always")
def ubs_prefetch_settle(u, s):
    """Fetch the lock records a settle message will change."""
    if s.kind != R.SETTLE_MARK:
        prefetch(u.locks, s.buyer_ref)
        if s.seller_ref >= 0:
            prefetch(u.locks, s.seller_ref)


@kernel(inline="always")
def _keep_share(u, k, remaining):
    """What the `keep` policy counts as this order's lock for `remaining`:
    cost(P, remaining) for a limit buy; for anything else the lock is exact."""
    sym = u.syms[k.symbol]
    return cost(k.price, remaining, sym.cost_num, sym.cost_den)


@kernel()
def ubs_move(u, out, cmd, seq):
    """Check and re-lock a move. Returns the order's ref, or -1 after the rejection."""
    if cmd.price <= 0:
        emit_rejected(out, cmd, seq, R.R_INVALID_PRICE)
        return -1
    ref = _own_order(u, out, cmd, seq)
    if ref < 0:
        return -1
    k = u.locks[ref]
    keep = u.ctr[U_DUST] == R.DUST_KEEP
    if k.side == R.SIDE_BUY:
        sym = u.syms[k.symbol]
        need = cost(cmd.price, k.remaining, sym.cost_num, sym.cost_den)
        if need < 0:
            emit_rejected(out, cmd, seq, R.R_INVALID_QUANTITY)
            return -1
        have = _keep_share(u, k, k.remaining) if keep else k.lock
    else:
        need = k.remaining
        have = k.remaining if keep else k.lock
    d = need - have
    us = k.user_slot
    if d > 0 and u.bal[us, k.lock_asset].avail < d:
        emit_rejected(out, cmd, seq, R.R_INSUFFICIENT_BALANCE)
        return -1
    if d > 0:
        _op(u, out, seq, 0, us, k.lock_asset, R.OP_LOCK, d, -d, d)
    elif d < 0:
        _op(u, out, seq, 0, us, k.lock_asset, R.OP_UNLOCK, -d, -d, d)
    k.lock += d
    k.price = cmd.price
    return ref


@kernel(inline="always")
def _settle_trade(u, out, s):
    sym = u.syms[s.symbol]
    b = u.locks[s.buyer_ref]
    k = u.locks[s.seller_ref]
    base = sym.base_asset
    quote = sym.quote_asset
    p, q, c, tid, seq = s.price, s.qty, s.quote_qty, s.trade_id, s.seq
    _op(u, out, seq, tid, b.user_slot, quote, R.OP_SPEND, c, 0, -c)
    _op(u, out, seq, tid, b.user_slot, base, R.OP_CREDIT, q - s.buyer_fee, q - s.buyer_fee, 0)
    _op(u, out, seq, tid, k.user_slot, base, R.OP_SPEND, q, 0, -q)
    _op(u, out, seq, tid, k.user_slot, quote, R.OP_CREDIT, c - s.seller_fee, c - s.seller_fee, 0)
    if s.buyer_fee > 0:
        _op(u, out, seq, tid, sym.fee_user_slot, base, R.OP_FEE, s.buyer_fee, s.buyer_fee, 0)
    if s.seller_fee > 0:
        _op(u, out, seq, tid, sym.fee_user_slot, quote, R.OP_FEE, s.seller_fee, s.seller_fee, 0)
    b.lock -= c
    b.remaining -= q
    k.lock -= q
    k.remaining -= q
    if s.taker_side == R.SIDE_BUY and b.order_type == R.TYPE_LIMIT and b.price > p:
        r = cost(b.price - p, q, sym.cost_num, sym.cost_den)
        if r > 0:
            _op(u, out, seq, tid, b.user_slot, quote, R.OP_UNLOCK, r, r, -r)
            b.lock -= r


@kernel(inline="always")
def _settle_release(u, out, s):
    ref = s.buyer_ref
    k = u.locks[ref]
    x = k.lock
    if (u.ctr[U_DUST] == R.DUST_KEEP and k.side == R.SIDE_BUY
            and k.order_type == R.TYPE_LIMIT):
        x = min(x, _keep_share(u, k, k.remaining))
    if x > 0:
        _op(u, out, s.seq, 0, k.user_slot, k.lock_asset, R.OP_UNLOCK, x, x, -x)
    k.in_use = 0
    hm_del(u.lck_map, k.order_id, 0)
    push(u.lck_free, u.ctr, U_LOCK_FREE, ref)


@kernel()
def _settle_reduce(u, out, s):
    k = u.locks[s.buyer_ref]
    new_rem = s.qty
    if k.side == R.SIDE_SELL:
        x = k.remaining - new_rem
    elif u.ctr[U_DUST] == R.DUST_KEEP:
        x = _keep_share(u, k, k.remaining) - _keep_share(u, k, new_rem)
    else:
        x = k.lock - _keep_share(u, k, new_rem)
    k.remaining = new_rem
    if x > 0:
        k.lock -= x
        _op(u, out, s.seq, 0, k.user_slot, k.lock_asset, R.OP_UNLOCK, x, x, -x)


@kernel(inline="always")
def ubs_settle_one(u, out, s):
    """Apply one settle message (at most 7 balance events)."""
    if s.kind == R.SETTLE_TRADE:
        _settle_trade(u, out, s)
    elif s.kind == R.SETTLE_RELEASE:
        _settle_release(u, out, s)
    else:
        _settle_reduce(u, out, s)


@kernel(inline="always")
def ubs_settle(u, out, settle, n):
    """Apply settle messages settle[0:n] in order."""
    for i in range(n):
        ubs_settle_one(u, out, settle[i])
