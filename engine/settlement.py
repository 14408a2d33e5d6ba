"""Settlement's state machine: the MT event streams back in ST order.

In MT, events reach settlement on separate rings, each in seq order:
UBSCore's rejections, the ME's order events, the ME's trades, UBSCore's balance
events of commands (locks, deposits, withdrawals) and UBSCore's balance events
of settle messages. ST emits, for each seq, the command's own events first and
then those of its fills. `merge_upto` rebuilds that order for every seq up to
the one all streams have passed.

A balance event carries the slot's values after it (avail, frozen, version).
UBSCore's values depend on timing: it may apply seq N+1's lock before seq N's
fills. `Ledger` replays every balance event in ST order on its own table and
rewrites those values, which then are ST's exactly (the same operations in the
same order from the same zero state); its table is also the final balances.
"""
from collections import namedtuple

import numpy as np
from .jit import kernel

from . import records as R
from .hashmap import hm_get, hm_put, new_map

Ledger = namedtuple("Ledger", ["bal", "user_ids", "usr_map", "ctr"])


def new_ledger(max_users: int, n_assets: int) -> Ledger:
    return Ledger(np.zeros((max_users, n_assets), R.BALANCE), np.zeros(max_users, np.int64),
                  new_map(max_users), np.zeros(1, np.int64))


@kernel()
def merge_upto(a, ia, na, b, ib, nb, upto, dst):
    """Merge the rows (uint64 words, seq in word 0) of a[ia:na] and b[ib:nb],
    both in seq order, into dst while seq <= upto; `a` first on equal seqs.
    Returns (rows merged, new ia, new ib)."""
    i = ia
    j = ib
    k = 0
    width = a.shape[1]
    while True:
        ta = i < na and np.int64(a[i, 0]) <= upto
        tb = j < nb and np.int64(b[j, 0]) <= upto
        if ta and (not tb or np.int64(a[i, 0]) <= np.int64(b[j, 0])):
            for w in range(width):
                dst[k, w] = a[i, w]
            i += 1
        elif tb:
            for w in range(width):
                dst[k, w] = b[j, w]
            j += 1
        else:
            break
        k += 1
    return k, i, j


@kernel()
def ledger_apply(led, ev, n):
    """Replay balance events ev[:n] (in ST order) and set their after-values."""
    ncol = led.bal.shape[1]
    for i in range(n):
        e = ev[i]
        s = hm_get(led.usr_map, e.user_id, 0)
        if e.reason != R.R_NONE:                   # refused: nothing changed
            if s >= 0 and e.asset < ncol:
                b = led.bal[s, e.asset]
                e.avail = b.avail
                e.frozen = b.frozen
                e.version = b.version
            else:
                e.avail = 0
                e.frozen = 0
                e.version = 0
            continue
        if s < 0:
            s = led.ctr[0]
            led.ctr[0] = s + 1
            led.user_ids[s] = e.user_id
            hm_put(led.usr_map, e.user_id, 0, s)
        b = led.bal[s, e.asset]
        x = e.amount
        op = e.op
        if op == R.OP_LOCK:
            b.avail -= x
            b.frozen += x
        elif op == R.OP_UNLOCK:
            b.avail += x
            b.frozen -= x
        elif op == R.OP_SPEND:
            b.frozen -= x
        elif op == R.OP_WITHDRAW:
            b.avail -= x
        else:                                      # deposit, credit, fee
            b.avail += x
        b.version += 1
        e.avail = b.avail
        e.frozen = b.frozen
        e.version = b.version

