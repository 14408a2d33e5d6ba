"""UBSCore: the sequencer's state machine: users, balances, order locks.

Sole writer of balances. Two entry points, one per kind of record it takes:
- `apply_command(ubs, out, cmd)`: decide accept or reject, lock funds (place,
  move), move money (deposit, withdraw). Returns the order's ref (its slot in
  `locks`) when the command goes on to the ME, else -1.
- `apply_settle(ubs, out, settle)`: apply one of the ME's settle messages
  (a trade, the release of an order that left the book, a reduce).
Worst-case output of each is declared below (`COMMAND_*`, `SETTLE_*`); every
caller's room check derives from those (engine/driver.py). The rules are
docs/ENGINE.md's.

Which rejections in-flight settles can change is declared here too
(`TIMING_DEPENDENT_REASONS`), beside the checks that produce them: the
multi-process pipeline retries exactly those once every earlier seq is
settled (engine/stages.py).

Invariants (checked by the tests after every command):
- per asset, sum(avail + frozen) over all slots == `asset_total`
  (deposits - withdrawals), which never exceeds 2^63-1, so no credit overflows;
- under the `release` dust policy, frozen of a slot == sum of `lock` of that
  user's open orders on that asset;
- nothing is negative;
- `ref_by_order_id` holds exactly the order ids of the `locks` in use, and
  `ref_by_cid` the `cid_key` of each of them that has one.
"""
from collections import namedtuple

import numpy as np
from .jit import kernel

from . import records as R
from .arith import I64_MAX, cost
from .emit import N_BALANCE_EVENTS, emit_balance, emit_rejected
from .freelist import pop, push
from .bits import prefetch
from .hashmap import map_delete, map_get, map_home_row, map_put, new_map

# Worst-case output of one command (apply_command): a rejection, or one
# balance event (lock, move's lock/unlock, deposit, withdraw, or a refusal).
COMMAND_ORDER_EVENTS = 1
COMMAND_BALANCE_EVENTS = 1
# Worst-case output of one settle message (apply_settle): a trade's buyer
# spend + credit, seller spend + credit, two fees, the price-improvement unlock.
SETTLE_BALANCE_EVENTS = 7

# Rejections that settles still in flight could turn into acceptances: they
# only add to avail, remove order ids from the lock index and free lock
# slots. Every other reason is final whatever is in flight. Every R_* code of
# records.py is in exactly one of the two (tests/unit/test_stages.py).
TIMING_DEPENDENT_REASONS = (R.R_INSUFFICIENT_BALANCE, R.R_DUPLICATE_ORDER_ID, R.R_ORDER_CAPACITY,
                            R.R_DUPLICATE_CID)
FINAL_REASONS = (
    R.R_NONE,                   # not a rejection
    R.R_INVALID_PRICE, R.R_INVALID_QUANTITY, R.R_INVALID_COMMAND,    # the command alone decides
    R.R_USER_NOT_FOUND,         # settles never create users
    R.R_ASSET_NOT_FOUND,        # the config decides
    R.R_USER_CAPACITY,          # settles never free user slots
    R.R_OVERFLOW,               # asset totals change only with deposits and withdrawals
    R.R_ORDER_NOT_FOUND,        # a settle only removes orders (the ME decides the stale case)
    R.R_SELF_TRADE,             # the ME's, never UBSCore's
    R.R_BOOK_CAPACITY,          # the ME's, never UBSCore's
)


_TIMING_DEPENDENT = np.zeros(256, np.uint8)       # by reason code (a u1 field)
_TIMING_DEPENDENT[list(TIMING_DEPENDENT_REASONS)] = 1


@kernel(inline="always")
def is_timing_dependent(reason):
    """A rejection for `reason` may become an acceptance once in-flight settles land."""
    return _TIMING_DEPENDENT[reason] != 0


# ubs.counters indices
UBS_LAST_SEQ = 0        # last seq given
UBS_USERS = 1           # user slots in use
UBS_FREE_LOCKS = 2      # free lock slots on the stack
UBS_DUST_POLICY = 3     # R.DUST_*

UbsState = namedtuple("UbsState", [
    "balances",             # [user slot, asset] R.BALANCE
    "user_ids",             # user id of each user slot
    "slot_by_user_id",      # hash map user id -> user slot
    "locks",                # R.ORDER_LOCK per ref: what each open order holds
    "ref_by_order_id",      # hash map order id -> ref (its slot in locks)
    "ref_by_cid",           # hash map cid_key(user id, cid) -> ref, the open orders with a client order id
    "free_locks",           # free stack of refs (top: counters[UBS_FREE_LOCKS])
    "asset_total",          # per asset: deposits - withdrawals
    "asset_ok",             # per asset id: 1 if configured
    "symbols",              # R.SYMBOL per symbol id
    "counters",             # int64, indices UBS_*
])


def new_ubs_state(symbols, assets_ok, max_users, max_orders, dust) -> UbsState:
    counters = np.zeros(8, np.int64)
    counters[UBS_FREE_LOCKS] = max_orders
    counters[UBS_DUST_POLICY] = dust
    return UbsState(
        np.zeros((max_users, len(assets_ok)), R.BALANCE), np.zeros(max_users, np.int64),
        new_map(max_users),
        np.zeros(max_orders, R.ORDER_LOCK), new_map(max_orders), new_map(max_orders),
        np.arange(max_orders - 1, -1, -1, dtype=np.int32),
        np.zeros(len(assets_ok), np.int64), assets_ok, symbols, counters,
    )


@kernel(inline="always")
def user_slot(ubs, user_id, create):
    """Slot of user_id; with create, a new slot if absent (-2 when full)."""
    s = map_get(ubs.slot_by_user_id, user_id)
    if s >= 0 or not create:
        return s
    n = ubs.counters[UBS_USERS]
    if n == len(ubs.user_ids):
        return -2
    ubs.user_ids[n] = user_id
    map_put(ubs.slot_by_user_id, user_id, n)
    ubs.counters[UBS_USERS] = n + 1
    return n


@kernel(inline="always")
def _asset_known(ubs, asset):
    return asset < len(ubs.asset_ok) and ubs.asset_ok[asset] != 0


# -- balance operations: change the slot, bump its version, emit the event --

@kernel(inline="always")
def _op(ubs, out, seq, trade_id, us, asset, op, amount, d_avail, d_frozen):
    b = ubs.balances[us, asset]
    b.avail += d_avail
    b.frozen += d_frozen
    b.version += 1
    emit_balance(out, seq, trade_id, ubs.user_ids[us], asset, op, R.R_NONE, amount, b)


@kernel()
def _refuse(ubs, out, seq, cmd, us, op, reason):
    """Balance event for a refused deposit/withdraw: nothing changes."""
    asset = cmd.symbol
    e = out.balance_events[out.n[N_BALANCE_EVENTS]]
    out.n[N_BALANCE_EVENTS] += 1
    e.seq = seq
    e.trade_id = 0
    e.user_id = cmd.user_id
    e.amount = cmd.amount
    e.asset = asset
    e.op = op
    e.reason = reason
    if us >= 0 and _asset_known(ubs, asset):
        b = ubs.balances[us, asset]
        e.avail = b.avail
        e.frozen = b.frozen
        e.version = b.version
    else:
        e.avail = 0
        e.frozen = 0
        e.version = 0


@kernel()
def deposit(ubs, out, cmd, seq):
    asset = cmd.symbol
    x = cmd.amount
    if x < 0:
        _refuse(ubs, out, seq, cmd, user_slot(ubs, cmd.user_id, False), R.OP_DEPOSIT, R.R_INVALID_QUANTITY)
    elif not _asset_known(ubs, asset):
        _refuse(ubs, out, seq, cmd, user_slot(ubs, cmd.user_id, False), R.OP_DEPOSIT, R.R_ASSET_NOT_FOUND)
    elif x > I64_MAX - ubs.asset_total[asset]:
        _refuse(ubs, out, seq, cmd, user_slot(ubs, cmd.user_id, False), R.OP_DEPOSIT, R.R_OVERFLOW)
    else:
        us = user_slot(ubs, cmd.user_id, True)
        if us < 0:
            _refuse(ubs, out, seq, cmd, -1, R.OP_DEPOSIT, R.R_USER_CAPACITY)
            return
        ubs.asset_total[asset] += x
        _op(ubs, out, seq, 0, us, asset, R.OP_DEPOSIT, x, x, 0)


@kernel()
def withdraw(ubs, out, cmd, seq):
    asset = cmd.symbol
    x = cmd.amount
    us = user_slot(ubs, cmd.user_id, False)
    if x < 0:
        _refuse(ubs, out, seq, cmd, us, R.OP_WITHDRAW, R.R_INVALID_QUANTITY)
    elif us < 0:
        _refuse(ubs, out, seq, cmd, us, R.OP_WITHDRAW, R.R_USER_NOT_FOUND)
    elif not _asset_known(ubs, asset):
        _refuse(ubs, out, seq, cmd, us, R.OP_WITHDRAW, R.R_ASSET_NOT_FOUND)
    elif ubs.balances[us, asset].avail < x:
        _refuse(ubs, out, seq, cmd, us, R.OP_WITHDRAW, R.R_INSUFFICIENT_BALANCE)
    else:
        ubs.asset_total[asset] -= x
        _op(ubs, out, seq, 0, us, asset, R.OP_WITHDRAW, x, -x, 0)


_CID_MIX = np.uint64(0x9E3779B97F4A7C15)


@kernel(inline="always")
def cid_key(user_id, cid):
    """One int64 for (user, client order id hash): the ref_by_cid key (never 0 for a cid != 0
    unless by a 2^-64 chance, which only costs that order its duplicate check)."""
    return np.int64(np.uint64(user_id) * _CID_MIX ^ np.uint64(cid))


@kernel(inline="always")
def place(ubs, out, cmd, seq):
    """Check and lock a place. Returns UBSCore's lock slot (the order's `ref`),
    or -1 after emitting the rejection. An order id of 0 becomes the seq."""
    if cmd.order_id == 0:
        cmd.order_id = seq
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
    us = user_slot(ubs, cmd.user_id, False)
    if us < 0:
        emit_rejected(out, cmd, seq, R.R_USER_NOT_FOUND)
        return -1
    known = cmd.symbol < len(ubs.symbols) and ubs.symbols[cmd.symbol].active != 0
    if not known:
        emit_rejected(out, cmd, seq, R.R_ASSET_NOT_FOUND)
        return -1
    sym = ubs.symbols[cmd.symbol]
    if cmd.side == R.SIDE_SELL:
        lock, asset = cmd.qty, sym.base_asset
    elif is_mbuy:
        lock, asset = cmd.amount, sym.quote_asset
    else:
        lock, asset = cost(cmd.price, cmd.qty, sym.cost_num, sym.cost_den), sym.quote_asset
        if lock < 0:
            emit_rejected(out, cmd, seq, R.R_INVALID_QUANTITY)
            return -1
    if map_get(ubs.ref_by_order_id, cmd.order_id) >= 0:
        emit_rejected(out, cmd, seq, R.R_DUPLICATE_ORDER_ID)
        return -1
    ck = cid_key(cmd.user_id, cmd.cid) if cmd.cid != 0 else np.int64(0)
    if ck != 0 and map_get(ubs.ref_by_cid, ck) >= 0:
        emit_rejected(out, cmd, seq, R.R_DUPLICATE_CID)
        return -1
    if ubs.counters[UBS_FREE_LOCKS] == 0:
        emit_rejected(out, cmd, seq, R.R_ORDER_CAPACITY)
        return -1
    if ubs.balances[us, asset].avail < lock:
        emit_rejected(out, cmd, seq, R.R_INSUFFICIENT_BALANCE)
        return -1
    _op(ubs, out, seq, 0, us, asset, R.OP_LOCK, lock, -lock, lock)
    ref = pop(ubs.free_locks, ubs.counters, UBS_FREE_LOCKS)
    k = ubs.locks[ref]
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
    k.cid_key = ck
    map_put(ubs.ref_by_order_id, cmd.order_id, ref)
    if ck != 0:
        map_put(ubs.ref_by_cid, ck, ref)
    return ref


@kernel(inline="always")
def find_order(ubs, out, cmd, seq):
    """The lock slot (ref) of the open order a cancel/reduce names, or -1 after
    emitting the rejection (a reduce by <= 0 is `Invalid quantity`)."""
    if cmd.kind == R.CMD_REDUCE and cmd.qty <= 0:
        emit_rejected(out, cmd, seq, R.R_INVALID_QUANTITY)
        return -1
    return _own_order(ubs, out, cmd, seq)


@kernel(inline="always")
def _own_order(ubs, out, cmd, seq):
    """Ref of cmd's order if it is open and the user's, else -1 after `Order not found`."""
    ref = map_get(ubs.ref_by_order_id, cmd.order_id)
    if ref < 0 or ubs.locks[ref].user_id != cmd.user_id:
        emit_rejected(out, cmd, seq, R.R_ORDER_NOT_FOUND)
        return -1
    return ref


@kernel(inline="always")
def apply_command(ubs, out, cmd, seq):
    """UBSCore's entry point for a command: check, lock, move money (at most
    COMMAND_ORDER_EVENTS order events and COMMAND_BALANCE_EVENTS balance
    events). Returns the order's ref when the command goes on to the ME, else
    -1 (its events are out)."""
    kind = cmd.kind
    if kind == R.CMD_PLACE:
        return place(ubs, out, cmd, seq)
    if kind == R.CMD_CANCEL or kind == R.CMD_REDUCE:
        return find_order(ubs, out, cmd, seq)
    if kind == R.CMD_MOVE:
        return move(ubs, out, cmd, seq)
    if kind == R.CMD_DEPOSIT:
        deposit(ubs, out, cmd, seq)
    elif kind == R.CMD_WITHDRAW:
        withdraw(ubs, out, cmd, seq)
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
def prefetch_command(ubs, cmds, i, stop):
    """Fetch ahead what cmds[i + PREFETCH_FAR] and cmds[i + PREFETCH_NEAR]
    will touch; returns the ref of the latter when it names an open order
    (so the ME can fetch its slot too), else -1."""
    if i + PREFETCH_FAR < stop:
        prefetch(ubs.ref_by_order_id, map_home_row(ubs.ref_by_order_id, cmds[i + PREFETCH_FAR].order_id))
    if i + PREFETCH_NEAR < stop and names_order(cmds[i + PREFETCH_NEAR]):
        ref = map_get(ubs.ref_by_order_id, cmds[i + PREFETCH_NEAR].order_id)
        if ref >= 0:
            prefetch(ubs.locks, ref)
        return ref
    return -1


@kernel(inline="always")
def prefetch_settle(ubs, s):
    """Fetch the lock records a settle message will change."""
    if s.kind != R.SETTLE_MARK:
        prefetch(ubs.locks, s.buyer_ref)
        if s.seller_ref >= 0:
            prefetch(ubs.locks, s.seller_ref)


@kernel(inline="always")
def _keep_share(ubs, k, remaining):
    """What the `keep` policy counts as this order's lock for `remaining`:
    cost(P, remaining) for a limit buy; for anything else the lock is exact."""
    sym = ubs.symbols[k.symbol]
    return cost(k.price, remaining, sym.cost_num, sym.cost_den)


@kernel()
def move(ubs, out, cmd, seq):
    """Check and re-lock a move. Returns the order's ref, or -1 after the rejection."""
    if cmd.price <= 0:
        emit_rejected(out, cmd, seq, R.R_INVALID_PRICE)
        return -1
    ref = _own_order(ubs, out, cmd, seq)
    if ref < 0:
        return -1
    k = ubs.locks[ref]
    keep = ubs.counters[UBS_DUST_POLICY] == R.DUST_KEEP
    if k.side == R.SIDE_BUY:
        sym = ubs.symbols[k.symbol]
        need = cost(cmd.price, k.remaining, sym.cost_num, sym.cost_den)
        if need < 0:
            emit_rejected(out, cmd, seq, R.R_INVALID_QUANTITY)
            return -1
        have = _keep_share(ubs, k, k.remaining) if keep else k.lock
    else:
        need = k.remaining
        have = k.remaining if keep else k.lock
    d = need - have
    us = k.user_slot
    if d > 0 and ubs.balances[us, k.lock_asset].avail < d:
        emit_rejected(out, cmd, seq, R.R_INSUFFICIENT_BALANCE)
        return -1
    if d > 0:
        _op(ubs, out, seq, 0, us, k.lock_asset, R.OP_LOCK, d, -d, d)
    elif d < 0:
        _op(ubs, out, seq, 0, us, k.lock_asset, R.OP_UNLOCK, -d, -d, d)
    k.lock += d
    k.price = cmd.price
    return ref


@kernel(inline="always")
def _settle_trade(ubs, out, s):
    sym = ubs.symbols[s.symbol]
    b = ubs.locks[s.buyer_ref]
    k = ubs.locks[s.seller_ref]
    base = sym.base_asset
    quote = sym.quote_asset
    p, q, c, tid, seq = s.price, s.qty, s.quote_qty, s.trade_id, s.seq
    _op(ubs, out, seq, tid, b.user_slot, quote, R.OP_SPEND, c, 0, -c)
    _op(ubs, out, seq, tid, b.user_slot, base, R.OP_CREDIT, q - s.buyer_fee, q - s.buyer_fee, 0)
    _op(ubs, out, seq, tid, k.user_slot, base, R.OP_SPEND, q, 0, -q)
    _op(ubs, out, seq, tid, k.user_slot, quote, R.OP_CREDIT, c - s.seller_fee, c - s.seller_fee, 0)
    if s.buyer_fee > 0:
        _op(ubs, out, seq, tid, sym.fee_user_slot, base, R.OP_FEE, s.buyer_fee, s.buyer_fee, 0)
    if s.seller_fee > 0:
        _op(ubs, out, seq, tid, sym.fee_user_slot, quote, R.OP_FEE, s.seller_fee, s.seller_fee, 0)
    b.lock -= c
    b.remaining -= q
    k.lock -= q
    k.remaining -= q
    if s.taker_side == R.SIDE_BUY and b.order_type == R.TYPE_LIMIT and b.price > p:
        r = cost(b.price - p, q, sym.cost_num, sym.cost_den)
        if r > 0:
            _op(ubs, out, seq, tid, b.user_slot, quote, R.OP_UNLOCK, r, r, -r)
            b.lock -= r


@kernel(inline="always")
def _settle_release(ubs, out, s):
    ref = s.buyer_ref
    k = ubs.locks[ref]
    x = k.lock
    if (ubs.counters[UBS_DUST_POLICY] == R.DUST_KEEP and k.side == R.SIDE_BUY
            and k.order_type == R.TYPE_LIMIT):
        x = min(x, _keep_share(ubs, k, k.remaining))
    if x > 0:
        _op(ubs, out, s.seq, 0, k.user_slot, k.lock_asset, R.OP_UNLOCK, x, x, -x)
    k.in_use = 0
    map_delete(ubs.ref_by_order_id, k.order_id)
    if k.cid_key != 0:
        map_delete(ubs.ref_by_cid, k.cid_key)
    push(ubs.free_locks, ubs.counters, UBS_FREE_LOCKS, ref)


@kernel()
def _settle_reduce(ubs, out, s):
    k = ubs.locks[s.buyer_ref]
    new_rem = s.qty
    if k.side == R.SIDE_SELL:
        x = k.remaining - new_rem
    elif ubs.counters[UBS_DUST_POLICY] == R.DUST_KEEP:
        x = _keep_share(ubs, k, k.remaining) - _keep_share(ubs, k, new_rem)
    else:
        x = k.lock - _keep_share(ubs, k, new_rem)
    k.remaining = new_rem
    if x > 0:
        k.lock -= x
        _op(ubs, out, s.seq, 0, k.user_slot, k.lock_asset, R.OP_UNLOCK, x, x, -x)


@kernel(inline="always")
def apply_settle(ubs, out, s):
    """UBSCore's entry point for a settle message (not a mark): at most
    SETTLE_BALANCE_EVENTS balance events."""
    if s.kind == R.SETTLE_TRADE:
        _settle_trade(ubs, out, s)
    elif s.kind == R.SETTLE_RELEASE:
        _settle_release(ubs, out, s)
    else:
        _settle_reduce(ubs, out, s)
