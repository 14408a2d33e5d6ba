"""The ME's order books: price ladder, price levels, order slots.

One book per (symbol, side), numbered `symbol * 2 + side` (bids are side 0).

Price ladder. Prices are grouped in buckets of 4096 ticks (`price >> 12`); a
bucket is a 64-word bitmap with a one-word summary of its non-empty words, so
the best price inside a bucket is two bit scans. Each book keeps its non-empty
buckets in an array sorted so that the best bucket is last (bids by key
ascending, asks by key descending, stored as `-key`): finding the best price is
O(1), and adding or dropping a bucket moves only the buckets better than it,
of which there are few (a bucket spans 4096 ticks). Buckets come from one pool
shared by all books; when the pool is empty a new price cannot rest (the order
expires with `Price level capacity exceeded`).

Levels. A level is a FIFO doubly linked list of order slots at one price of one
book. Each bucket also holds the level ids of its 4096 prices
(`bucket_levels`), so a price's level is found by the same bucket search that
the ladder does, in memory next to its neighbours' (prices cluster), with no
hash table. Order slots and levels come from free stacks sized at start.

Orders are found by UBSCore's slot for them (`ref`, which UBSCore looks up by
order id once): `ref_slot[ref]` is the ME's slot, -1 when the order is not in
the ME. Invariants: a level exists iff it holds at least one order iff its
ladder bit is set; `book_orders[b]` counts the orders resting in book b.
"""
from collections import namedtuple

import numpy as np
from .jit import kernel

from . import records as R
from .bits import clz64, ctz64
from .freelist import pop, push

BUCKET_SHIFT = 12
BUCKET_TICKS = 1 << BUCKET_SHIFT

# me.ctr slots
C_TRADE_ID = 0      # last trade id given
C_ORD_FREE = 1      # free order slots on the stack
C_LVL_FREE = 2      # free levels on the stack
C_BKT_FREE = 3      # free buckets on the stack
C_PENDING = 4       # taker slot whose matching was paused for output space, or -1
C_PENDING_SEQ = 5
C_PENDING_KIND = 6

MeState = namedtuple("MeState", [
    "orders", "ref_slot", "ord_free",
    "levels", "lvl_free",
    "bk_skeys", "bk_ids", "bk_n", "book_orders",
    "words", "summary", "bucket_levels", "bkt_free", "syms", "ctr",
])


def new_me_state(syms: np.ndarray, max_orders: int, max_buckets: int) -> MeState:
    n_books = 2 * len(syms)
    n_slots = max_orders + 1            # + the taker being matched
    ctr = np.zeros(8, np.int64)
    ctr[C_ORD_FREE] = n_slots
    ctr[C_LVL_FREE] = n_slots
    ctr[C_BKT_FREE] = max_buckets
    ctr[C_PENDING] = -1
    # Free stacks pop from the end: slot 0 is handed out first.
    return MeState(
        np.zeros(n_slots, R.ORDER_SLOT), np.full(max_orders, -1, np.int32),
        np.arange(n_slots - 1, -1, -1, dtype=np.int32),
        np.zeros(n_slots, R.LEVEL), np.arange(n_slots - 1, -1, -1, dtype=np.int32),
        np.zeros((n_books, max_buckets), np.int64), np.zeros((n_books, max_buckets), np.int32),
        np.zeros(n_books, np.int64), np.zeros(n_books, np.int64),
        np.zeros((max_buckets, 64), np.uint64), np.zeros(max_buckets, np.uint64),
        np.full((max_buckets, BUCKET_TICKS), -1, np.int32),
        np.arange(max_buckets - 1, -1, -1, dtype=np.int32), syms, ctr,
    )


# -- ladder ------------------------------------------------------------------

@kernel(inline="always")
def _skey(book, price):
    key = price >> BUCKET_SHIFT
    return key if (book & 1) == R.SIDE_BUY else -key


@kernel(inline="always")
def _find_bucket(me, book, skey):
    """Position of skey in the book's sorted bucket array, or where it would go."""
    lo = 0
    hi = me.bk_n[book]
    keys = me.bk_skeys[book]
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < skey:
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel(inline="always")
def best_level(me, book):
    """Level id of the book's best price, or -1 if the book is empty."""
    n = me.bk_n[book]
    if n == 0:
        return -1
    b = me.bk_ids[book, n - 1]
    summ = me.summary[b]
    if (book & 1) == R.SIDE_BUY:
        w = 63 - clz64(summ)
        bit = 63 - clz64(me.words[b, w])
    else:
        w = ctz64(summ)
        bit = ctz64(me.words[b, w])
    return me.bucket_levels[b, (w << 6) | bit]


@kernel(inline="always")
def _bucket_of(me, book, price):
    """Bucket id holding price in the book, or -1."""
    skey = _skey(book, price)
    pos = _find_bucket(me, book, skey)
    if pos < me.bk_n[book] and me.bk_skeys[book, pos] == skey:
        return me.bk_ids[book, pos]
    return -1


@kernel(inline="always")
def ladder_add(me, book, price):
    """Mark price as non-empty in the book; returns its bucket, -1 if none is left."""
    skey = _skey(book, price)
    pos = _find_bucket(me, book, skey)
    n = me.bk_n[book]
    if pos < n and me.bk_skeys[book, pos] == skey:
        b = me.bk_ids[book, pos]
    else:
        if me.ctr[C_BKT_FREE] == 0:
            return -1
        b = pop(me.bkt_free, me.ctr, C_BKT_FREE)
        for i in range(n, pos, -1):
            me.bk_skeys[book, i] = me.bk_skeys[book, i - 1]
            me.bk_ids[book, i] = me.bk_ids[book, i - 1]
        me.bk_skeys[book, pos] = skey
        me.bk_ids[book, pos] = b
        me.bk_n[book] = n + 1
    idx = price & (BUCKET_TICKS - 1)
    w = idx >> 6
    me.words[b, w] |= np.uint64(1) << np.uint64(idx & 63)
    me.summary[b] |= np.uint64(1) << np.uint64(w)
    return b


@kernel(inline="always")
def ladder_remove(me, book, price, b):
    """Mark price (in bucket b) as empty; drop the bucket when it empties."""
    idx = price & (BUCKET_TICKS - 1)
    w = idx >> 6
    me.bucket_levels[b, idx] = -1
    me.words[b, w] &= ~(np.uint64(1) << np.uint64(idx & 63))
    if me.words[b, w] == np.uint64(0):
        me.summary[b] &= ~(np.uint64(1) << np.uint64(w))
        if me.summary[b] == np.uint64(0):
            pos = _find_bucket(me, book, _skey(book, price))
            n = me.bk_n[book]
            for i in range(pos, n - 1):
                me.bk_skeys[book, i] = me.bk_skeys[book, i + 1]
                me.bk_ids[book, i] = me.bk_ids[book, i + 1]
            me.bk_n[book] = n - 1
            push(me.bkt_free, me.ctr, C_BKT_FREE, b)


# -- order slots -------------------------------------------------------------

@kernel(inline="always")
def alloc_order(me, ref):
    """A slot for the order UBSCore knows as `ref`."""
    slot = pop(me.ord_free, me.ctr, C_ORD_FREE)
    me.orders[slot].in_use = 1
    me.orders[slot].ref = ref
    me.ref_slot[ref] = slot
    return slot


@kernel(inline="always")
def free_order(me, slot):
    me.orders[slot].in_use = 0
    me.ref_slot[me.orders[slot].ref] = -1
    push(me.ord_free, me.ctr, C_ORD_FREE, slot)


# -- levels ------------------------------------------------------------------

@kernel(inline="always")
def rest_order(me, slot):
    """Append the order at the tail of its price level; False if no bucket is left."""
    o = me.orders[slot]
    book = o.symbol * 2 + o.side
    idx = o.price & (BUCKET_TICKS - 1)
    b = _bucket_of(me, book, o.price)
    lv = me.bucket_levels[b, idx] if b >= 0 else -1
    if lv < 0:
        b = ladder_add(me, book, o.price)
        if b < 0:
            return False
        lv = pop(me.lvl_free, me.ctr, C_LVL_FREE)
        L = me.levels[lv]
        L.price = o.price
        L.total_qty = 0
        L.head = -1
        L.tail = -1
        L.count = 0
        L.book = book
        L.bucket = b
        me.bucket_levels[b, idx] = lv
    L = me.levels[lv]
    o.level = lv
    o.next = -1
    o.prev = L.tail
    if L.tail >= 0:
        me.orders[L.tail].next = slot
    else:
        L.head = slot
    L.tail = slot
    L.count += 1
    L.total_qty += o.qty - o.filled
    me.book_orders[book] += 1
    return True


@kernel(inline="always")
def unlink_order(me, slot):
    """Take a resting order out of its level (and the level out of the ladder if
    it empties). The slot itself stays allocated."""
    o = me.orders[slot]
    lv = o.level
    L = me.levels[lv]
    if o.prev >= 0:
        me.orders[o.prev].next = o.next
    else:
        L.head = o.next
    if o.next >= 0:
        me.orders[o.next].prev = o.prev
    else:
        L.tail = o.prev
    L.count -= 1
    L.total_qty -= o.qty - o.filled
    me.book_orders[L.book] -= 1
    o.level = -1
    if L.count == 0:
        ladder_remove(me, L.book, L.price, L.bucket)
        push(me.lvl_free, me.ctr, C_LVL_FREE, lv)


@kernel()
def book_levels(me, book, levels):
    """Fill `levels` with the book's level ids, best first; returns how many."""
    n = 0
    cap = len(levels)
    is_bid = (book & 1) == R.SIDE_BUY
    for i in range(me.bk_n[book] - 1, -1, -1):
        b = me.bk_ids[book, i]
        for wi in range(64):
            w = 63 - wi if is_bid else wi
            word = me.words[b, w]
            while word != np.uint64(0) and n < cap:
                if is_bid:
                    bit = 63 - clz64(word)
                else:
                    bit = ctz64(word)
                word &= ~(np.uint64(1) << np.uint64(bit))
                levels[n] = me.bucket_levels[b, (w << 6) | bit]
                n += 1
    return n
