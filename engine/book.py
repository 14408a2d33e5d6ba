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
order id once): `slot_of_ref[ref]` is the ME's slot, -1 when the order is not in
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

# me.counters indices
ME_LAST_TRADE_ID = 0    # last trade id given
ME_FREE_ORDERS = 1      # free order slots on the stack
ME_FREE_LEVELS = 2      # free levels on the stack
ME_FREE_BUCKETS = 3     # free buckets on the stack
ME_PAUSED_TAKER = 4     # order slot of the taker whose matching paused for output space, or -1
ME_PAUSED_SEQ = 5       # its seq
ME_PAUSED_KIND = 6      # the kind of the command it is matching for

MeState = namedtuple("MeState", [
    "orders",               # R.ORDER_SLOT per order slot
    "slot_of_ref",          # UBSCore's ref -> order slot, -1 when not in the ME
    "free_orders",          # free stack of order slots (top: counters[ME_FREE_ORDERS])
    "levels",               # R.LEVEL per level id
    "free_levels",          # free stack of level ids
    "book_sort_keys",       # [book, i] bucket key, sorted so the best bucket is last (asks: -key)
    "book_buckets",         # [book, i] bucket id of book_sort_keys[book, i]
    "book_bucket_count",    # [book] buckets in use
    "book_orders",          # [book] orders resting
    "bucket_words",         # [bucket, 64] bit per price of the bucket with a level
    "bucket_summary",       # [bucket] bit per non-empty word
    "bucket_levels",        # [bucket, 4096] level id per price, -1: none
    "free_buckets",         # free stack of bucket ids
    "symbols",              # R.SYMBOL per symbol id
    "counters",             # int64, indices ME_*
])


def new_me_state(symbols: np.ndarray, max_orders: int, max_buckets: int) -> MeState:
    n_books = 2 * len(symbols)
    n_slots = max_orders + 1            # + the taker being matched
    counters = np.zeros(8, np.int64)
    counters[ME_FREE_ORDERS] = n_slots
    counters[ME_FREE_LEVELS] = n_slots
    counters[ME_FREE_BUCKETS] = max_buckets
    counters[ME_PAUSED_TAKER] = -1
    # Free stacks pop from the end: slot 0 is handed out first.
    return MeState(
        np.zeros(n_slots, R.ORDER_SLOT), np.full(max_orders, -1, np.int32),
        np.arange(n_slots - 1, -1, -1, dtype=np.int32),
        np.zeros(n_slots, R.LEVEL), np.arange(n_slots - 1, -1, -1, dtype=np.int32),
        np.zeros((n_books, max_buckets), np.int64), np.zeros((n_books, max_buckets), np.int32),
        np.zeros(n_books, np.int64), np.zeros(n_books, np.int64),
        np.zeros((max_buckets, 64), np.uint64), np.zeros(max_buckets, np.uint64),
        np.full((max_buckets, BUCKET_TICKS), -1, np.int32),
        np.arange(max_buckets - 1, -1, -1, dtype=np.int32), symbols, counters,
    )


# -- ladder ------------------------------------------------------------------

@kernel(inline="always")
def _sort_key(book, price):
    key = price >> BUCKET_SHIFT
    return key if (book & 1) == R.SIDE_BUY else -key


@kernel(inline="always")
def _find_bucket(me, book, sort_key):
    """Position of sort_key in the book's sorted bucket array, or where it would go."""
    lo = 0
    hi = me.book_bucket_count[book]
    keys = me.book_sort_keys[book]
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < sort_key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel(inline="always")
def best_level(me, book):
    """Level id of the book's best price, or -1 if the book is empty."""
    n = me.book_bucket_count[book]
    if n == 0:
        return -1
    b = me.book_buckets[book, n - 1]
    summ = me.bucket_summary[b]
    if (book & 1) == R.SIDE_BUY:
        w = 63 - clz64(summ)
        bit = 63 - clz64(me.bucket_words[b, w])
    else:
        w = ctz64(summ)
        bit = ctz64(me.bucket_words[b, w])
    return me.bucket_levels[b, (w << 6) | bit]


@kernel(inline="always")
def _bucket_of(me, book, price):
    """Bucket id holding price in the book, or -1."""
    sort_key = _sort_key(book, price)
    pos = _find_bucket(me, book, sort_key)
    if pos < me.book_bucket_count[book] and me.book_sort_keys[book, pos] == sort_key:
        return me.book_buckets[book, pos]
    return -1


@kernel(inline="always")
def ladder_add(me, book, price):
    """Mark price as non-empty in the book; returns its bucket, -1 if none is left."""
    sort_key = _sort_key(book, price)
    pos = _find_bucket(me, book, sort_key)
    n = me.book_bucket_count[book]
    if pos < n and me.book_sort_keys[book, pos] == sort_key:
        b = me.book_buckets[book, pos]
    else:
        if me.counters[ME_FREE_BUCKETS] == 0:
            return -1
        b = pop(me.free_buckets, me.counters, ME_FREE_BUCKETS)
        for i in range(n, pos, -1):
            me.book_sort_keys[book, i] = me.book_sort_keys[book, i - 1]
            me.book_buckets[book, i] = me.book_buckets[book, i - 1]
        me.book_sort_keys[book, pos] = sort_key
        me.book_buckets[book, pos] = b
        me.book_bucket_count[book] = n + 1
    idx = price & (BUCKET_TICKS - 1)
    w = idx >> 6
    me.bucket_words[b, w] |= np.uint64(1) << np.uint64(idx & 63)
    me.bucket_summary[b] |= np.uint64(1) << np.uint64(w)
    return b


@kernel(inline="always")
def ladder_remove(me, book, price, b):
    """Mark price (in bucket b) as empty; drop the bucket when it empties."""
    idx = price & (BUCKET_TICKS - 1)
    w = idx >> 6
    me.bucket_levels[b, idx] = -1
    me.bucket_words[b, w] &= ~(np.uint64(1) << np.uint64(idx & 63))
    if me.bucket_words[b, w] == np.uint64(0):
        me.bucket_summary[b] &= ~(np.uint64(1) << np.uint64(w))
        if me.bucket_summary[b] == np.uint64(0):
            pos = _find_bucket(me, book, _sort_key(book, price))
            n = me.book_bucket_count[book]
            for i in range(pos, n - 1):
                me.book_sort_keys[book, i] = me.book_sort_keys[book, i + 1]
                me.book_buckets[book, i] = me.book_buckets[book, i + 1]
            me.book_bucket_count[book] = n - 1
            push(me.free_buckets, me.counters, ME_FREE_BUCKETS, b)


# -- order slots -------------------------------------------------------------

@kernel(inline="always")
def alloc_order(me, ref):
    """A slot for the order UBSCore knows as `ref`."""
    slot = pop(me.free_orders, me.counters, ME_FREE_ORDERS)
    me.orders[slot].in_use = 1
    me.orders[slot].ref = ref
    me.slot_of_ref[ref] = slot
    return slot


@kernel(inline="always")
def free_order(me, slot):
    me.orders[slot].in_use = 0
    me.slot_of_ref[me.orders[slot].ref] = -1
    push(me.free_orders, me.counters, ME_FREE_ORDERS, slot)


# -- levels ------------------------------------------------------------------

@kernel(inline="always")
def rest_order(me, slot):
    """Append the order at the tail of its price level; False if no bucket is left."""
    o = me.orders[slot]
    book = o.symbol * 2 + o.side
    idx = o.price & (BUCKET_TICKS - 1)
    b = _bucket_of(me, book, o.price)
    level = me.bucket_levels[b, idx] if b >= 0 else -1
    if level < 0:
        b = ladder_add(me, book, o.price)
        if b < 0:
            return False
        level = pop(me.free_levels, me.counters, ME_FREE_LEVELS)
        row = me.levels[level]
        row.price = o.price
        row.total_qty = 0
        row.head = -1
        row.tail = -1
        row.count = 0
        row.book = book
        row.bucket = b
        me.bucket_levels[b, idx] = level
    row = me.levels[level]
    o.level = level
    o.next = -1
    o.prev = row.tail
    if row.tail >= 0:
        me.orders[row.tail].next = slot
    else:
        row.head = slot
    row.tail = slot
    row.count += 1
    row.total_qty += o.qty - o.filled
    me.book_orders[book] += 1
    return True


@kernel(inline="always")
def unlink_order(me, slot):
    """Take a resting order out of its level (and the level out of the ladder if
    it empties). The slot itself stays allocated."""
    o = me.orders[slot]
    level = o.level
    row = me.levels[level]
    if o.prev >= 0:
        me.orders[o.prev].next = o.next
    else:
        row.head = o.next
    if o.next >= 0:
        me.orders[o.next].prev = o.prev
    else:
        row.tail = o.prev
    row.count -= 1
    row.total_qty -= o.qty - o.filled
    me.book_orders[row.book] -= 1
    o.level = -1
    if row.count == 0:
        ladder_remove(me, row.book, row.price, row.bucket)
        push(me.free_levels, me.counters, ME_FREE_LEVELS, level)


@kernel()
def book_levels(me, book, levels):
    """Fill `levels` with the book's level ids, best first; returns how many."""
    n = 0
    cap = len(levels)
    is_bid = (book & 1) == R.SIDE_BUY
    for i in range(me.book_bucket_count[book] - 1, -1, -1):
        b = me.book_buckets[book, i]
        for wi in range(64):
            w = 63 - wi if is_bid else wi
            word = me.bucket_words[b, w]
            while word != np.uint64(0) and n < cap:
                if is_bid:
                    bit = 63 - clz64(word)
                else:
                    bit = ctz64(word)
                word &= ~(np.uint64(1) << np.uint64(bit))
                levels[n] = me.bucket_levels[b, (w << 6) | bit]
                n += 1
    return n
