"""The matching engine (ME): price-time matching of accepted commands.

The ME never sees a balance. UBSCore has already sequenced, checked and locked
each command it forwards (place, move), and found the order that a cancel,
reduce or move names (`cmd.ref`, UBSCore's slot for it; the ME keeps a dense
ref -> slot table, so it needs no order-id index). In the multi-process
pipeline an order UBSCore still holds may already have left the ME (its
release is in flight): the ME then rejects with `Order not found`, as ST
would. The ME emits order and trade events, and settle messages telling UBSCore what to move: trades to
settle, locks to release when an order leaves the book, locks to shrink when an
order is reduced. The rules are docs/ENGINE.md's.

Entry point: `apply_command(me, out, cmd, seq)`, for a command UBSCore
accepted. A taker's matching pauses when an output buffer runs low: its state
lives in its order slot, `counters[ME_PAUSED_TAKER]` names it, and `resume`
carries on after the caller has flushed. So one command may produce any
number of fills without any buffer having to hold them all; the room a
command needs to start is declared below (`COMMAND_*`), and every caller's
check derives from it (engine/driver.py).
"""
from .jit import kernel

from . import records as R
from .bits import prefetch
from .arith import add_u128, affordable_qty, cost, fee
from .book import (ME_PAUSED_TAKER, ME_PAUSED_KIND, ME_PAUSED_SEQ, ME_LAST_TRADE_ID, alloc_order,
                   best_level, free_order, rest_order, unlink_order)
from .emit import N_ORDER_EVENTS, N_SETTLES, N_TRADE_EVENTS, emit_order, emit_rejected, emit_settle, emit_trade

# Output of one fill, checked before each (the taker pauses when short): order
# events (maker and taker, or a maker expired by self-trade prevention), the
# trade, settle messages (the trade, the maker's release).
FILL_ORDER_EVENTS = 3
FILL_TRADE_EVENTS = 1
FILL_SETTLES = 2
# Finishing a taker, checked before it: an `expired` event and its release.
FINISH_ORDER_EVENTS = 1
FINISH_SETTLES = 1
# Room a command needs to start (apply_command): what it emits before the
# first check above (its own accepted/moved/cancelled/reduced/rejected event;
# a cancel's release or a reduce's settle message; a mark's echo), plus one
# fill, so that it does not pause at once. The rest is bounded by the checks.
COMMAND_ORDER_EVENTS = 1 + FILL_ORDER_EVENTS
COMMAND_TRADE_EVENTS = FILL_TRADE_EVENTS
COMMAND_SETTLES = 1 + FILL_SETTLES


@kernel(inline="always")
def _room(out, order_events, trade_events, settles):
    return (out.n[N_ORDER_EVENTS] + order_events <= len(out.order_events)
            and out.n[N_TRADE_EVENTS] + trade_events <= len(out.trade_events)
            and out.n[N_SETTLES] + settles <= len(out.settles))


@kernel(inline="always")
def _is_done(o):
    """A taker is done when its qty is filled, or a market buy's budget is spent."""
    return o.filled == o.qty or (o.order_type == R.TYPE_MARKET and o.side == R.SIDE_BUY
                                 and o.budget == 0)


@kernel(inline="always")
def _release(me, out, slot, seq):
    """The order left the book: tell UBSCore to release its lock, free the slot."""
    o = me.orders[slot]
    emit_settle(out, R.SETTLE_RELEASE, seq, 0, o.price, o.qty - o.filled, 0, 0, 0,
                o.ref, -1, o.side, o.symbol)
    free_order(me, slot)


@kernel(inline="always")
def _match(me, out, slot, seq, kind):
    """Match taker `slot` against the opposite book. Returns True if it paused."""
    orders = me.orders
    t = orders[slot]
    sym = me.symbols[t.symbol]
    opp = t.symbol * 2 + (1 - t.side)
    is_buy = t.side == R.SIDE_BUY
    is_market = t.order_type == R.TYPE_MARKET
    while t.filled < t.qty and t.stp_expired == 0:
        if not _room(out, FILL_ORDER_EVENTS, FILL_TRADE_EVENTS, FILL_SETTLES):
            return True
        level = best_level(me, opp)
        if level < 0:
            break
        best = me.levels[level].price
        if not is_market and ((is_buy and best > t.price) or (not is_buy and best < t.price)):
            break
        m_slot = me.levels[level].head
        m = orders[m_slot]
        if m.next >= 0:
            prefetch(orders, m.next)        # the maker after this one, if this one fills
        if m.user_id == t.user_id and sym.stp != R.STP_NONE:
            if sym.stp == R.STP_EXPIRE_TAKER:
                t.stp_expired = 1
                break
            emit_order(out, m, seq, kind, R.ST_EXPIRED, R.R_SELF_TRADE, 0, 0, 0)
            unlink_order(me, m_slot)
            _release(me, out, m_slot, seq)
            if sym.stp == R.STP_EXPIRE_BOTH:
                t.stp_expired = 1
                break
            continue
        q = min(t.qty - t.filled, m.qty - m.filled)
        if is_market and is_buy:
            q = min(q, affordable_qty(t.budget, best, sym.cost_num, sym.cost_den))
            if q == 0:
                break
        c = cost(best, q, sym.cost_num, sym.cost_den)
        me.counters[ME_LAST_TRADE_ID] += 1
        trade_id = me.counters[ME_LAST_TRADE_ID]
        if is_buy:
            b, s = t, m
            b_fee = fee(q, sym.taker_fee_ppm)
            s_fee = fee(c, sym.maker_fee_ppm)
        else:
            b, s = m, t
            b_fee = fee(q, sym.maker_fee_ppm)
            s_fee = fee(c, sym.taker_fee_ppm)
        emit_trade(out, trade_id, seq, best, q, c, b, s, b_fee, s_fee, t.symbol, t.side)
        emit_settle(out, R.SETTLE_TRADE, seq, trade_id, best, q, c, b_fee, s_fee,
                    b.ref, s.ref, t.side, t.symbol)
        m.filled += q
        m.notional_hi, m.notional_lo = add_u128(m.notional_hi, m.notional_lo, best, q)
        me.levels[level].total_qty -= q
        t.filled += q
        t.notional_hi, t.notional_lo = add_u128(t.notional_hi, t.notional_lo, best, q)
        if is_market and is_buy:
            t.budget -= c
        m_done = m.filled == m.qty
        emit_order(out, m, seq, kind, R.ST_FILLED if m_done else R.ST_PARTIALLY_FILLED,
                   R.R_NONE, q, best, trade_id)
        emit_order(out, t, seq, kind, R.ST_FILLED if _is_done(t) else R.ST_PARTIALLY_FILLED,
                   R.R_NONE, q, best, trade_id)
        if m_done:
            unlink_order(me, m_slot)
            _release(me, out, m_slot, seq)
        if is_market and is_buy and t.budget == 0:
            break
    return False


@kernel(inline="always")
def _match_and_finish(me, out, slot, seq, kind):
    """Match, then rest or end the taker. Returns True if it paused."""
    if _match(me, out, slot, seq, kind) or not _room(out, FINISH_ORDER_EVENTS, 0, FINISH_SETTLES):
        me.counters[ME_PAUSED_TAKER] = slot
        me.counters[ME_PAUSED_SEQ] = seq
        me.counters[ME_PAUSED_KIND] = kind
        return True
    me.counters[ME_PAUSED_TAKER] = -1
    t = me.orders[slot]
    if _is_done(t):
        _release(me, out, slot, seq)
    elif t.order_type == R.TYPE_MARKET or t.tif == R.TIF_IOC or t.stp_expired:
        reason = R.R_SELF_TRADE if t.stp_expired else R.R_NONE
        emit_order(out, t, seq, kind, R.ST_EXPIRED, reason, 0, 0, 0)
        _release(me, out, slot, seq)
    elif not rest_order(me, slot):
        emit_order(out, t, seq, kind, R.ST_EXPIRED, R.R_BOOK_CAPACITY, 0, 0, 0)
        _release(me, out, slot, seq)
    return False


@kernel()
def resume(me, out):
    """Carry on the paused taker, if any. Returns True if it paused again."""
    slot = me.counters[ME_PAUSED_TAKER]
    if slot < 0:
        return False
    return _match_and_finish(me, out, slot, me.counters[ME_PAUSED_SEQ], me.counters[ME_PAUSED_KIND])


@kernel(inline="always")
def place(me, out, cmd, seq):
    """An accepted place (cmd.ref = UBSCore's slot). Returns True if it paused."""
    slot = alloc_order(me, cmd.ref)
    o = me.orders[slot]
    o.order_id = cmd.order_id
    o.user_id = cmd.user_id
    o.seq = seq
    o.price = cmd.price if cmd.order_type == R.TYPE_LIMIT else 0
    o.qty = cmd.qty
    o.budget = 0
    if cmd.order_type == R.TYPE_MARKET and cmd.side == R.SIDE_BUY:
        o.budget = cmd.amount
        if cmd.qty == 0:
            o.qty = R.QTY_UNLIMITED
    o.filled = 0
    o.notional_hi = 0
    o.notional_lo = 0
    o.next = -1
    o.prev = -1
    o.level = -1
    o.symbol = cmd.symbol
    o.side = cmd.side
    o.order_type = cmd.order_type
    o.tif = cmd.tif
    o.stp_expired = 0
    emit_order(out, o, seq, R.CMD_PLACE, R.ST_ACCEPTED, R.R_NONE, 0, 0, 0)
    return _match_and_finish(me, out, slot, seq, R.CMD_PLACE)


@kernel(inline="always")
def _find(me, cmd):
    """The ME's slot of the order UBSCore found for cmd, or -1 if it has left."""
    slot = me.slot_of_ref[cmd.ref]
    if slot >= 0 and me.orders[slot].order_id != cmd.order_id:
        return -1
    return slot


@kernel(inline="always")
def _cancel_slot(me, out, slot, seq, kind):
    emit_order(out, me.orders[slot], seq, kind, R.ST_CANCELLED, R.R_NONE, 0, 0, 0)
    unlink_order(me, slot)
    _release(me, out, slot, seq)


@kernel(inline="always")
def cancel(me, out, cmd, seq):
    slot = _find(me, cmd)
    if slot < 0:
        emit_rejected(out, cmd, seq, R.R_ORDER_NOT_FOUND)
    else:
        _cancel_slot(me, out, slot, seq, R.CMD_CANCEL)


@kernel()
def reduce(me, out, cmd, seq):
    slot = _find(me, cmd)
    if slot < 0:
        emit_rejected(out, cmd, seq, R.R_ORDER_NOT_FOUND)
        return
    o = me.orders[slot]
    if cmd.qty >= o.qty - o.filled:
        _cancel_slot(me, out, slot, seq, R.CMD_REDUCE)
        return
    o.qty -= cmd.qty
    me.levels[o.level].total_qty -= cmd.qty
    emit_order(out, o, seq, R.CMD_REDUCE, R.ST_REDUCED, R.R_NONE, cmd.qty, 0, 0)
    emit_settle(out, R.SETTLE_REDUCE, seq, 0, o.price, o.qty - o.filled, 0, 0, 0,
                o.ref, -1, o.side, o.symbol)


@kernel()
def move(me, out, cmd, seq):
    """A move UBSCore accepted (and re-locked for). Returns True if it paused."""
    slot = _find(me, cmd)
    if slot < 0:
        emit_rejected(out, cmd, seq, R.R_ORDER_NOT_FOUND)
        return False
    unlink_order(me, slot)
    o = me.orders[slot]
    o.price = cmd.price
    emit_order(out, o, seq, R.CMD_MOVE, R.ST_MOVED, R.R_NONE, 0, 0, 0)
    return _match_and_finish(me, out, slot, seq, R.CMD_MOVE)


@kernel(inline="always")
def apply_command(me, out, cmd, seq):
    """The ME's entry point: a command UBSCore accepted (cmd.ref set), with
    COMMAND_* room free. Returns True if a taker paused for output space
    (resume carries it on)."""
    kind = cmd.kind
    if kind == R.CMD_PLACE:
        return place(me, out, cmd, seq)
    if kind == R.CMD_CANCEL:
        cancel(me, out, cmd, seq)
    elif kind == R.CMD_REDUCE:
        reduce(me, out, cmd, seq)
    elif kind == R.CMD_MOVE:
        return move(me, out, cmd, seq)
    return False


@kernel(inline="always")
def prefetch_order(me, ref):
    """Start loading the order slot of ref (a cancel/reduce/move a few commands ahead)."""
    slot = me.slot_of_ref[ref]
    if slot >= 0:
        prefetch(me.orders, slot)


@kernel(inline="always")
def prefetch_links(me, ref):
    """Start loading the order's neighbours and level (unlinking touches them)."""
    slot = me.slot_of_ref[ref]
    if slot >= 0:
        o = me.orders[slot]
        if o.prev >= 0:
            prefetch(me.orders, o.prev)
        if o.next >= 0:
            prefetch(me.orders, o.next)
        if o.level >= 0:
            prefetch(me.levels, o.level)
