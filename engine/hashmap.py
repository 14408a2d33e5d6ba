"""Open-addressing hash map (int64, int64) -> int64 for numba, preallocated.

Linear probing with backward-shift deletion, so there are no tombstones and a
lookup's cost stays bounded by the load factor (kept <= 1/2 by sizing the table
at twice the capacity of what it indexes). Nothing iterates the table, so its
layout never shows in any output; the same inserts always give the same layout.

A map is one (cap, 4) int64 array of rows [key, key2, value, 0], value -1 for
an empty row: a probe touches one cache line, not three.

The home row is a multiplicative (Fibonacci) mix of both keys. It must spread
keys that arrive in sequence (order ids, neighbouring prices): an identity-like
hash would pack them into one long probe run, and backward-shift deletion
walks the run to its end (measured: cancels fell to 1.5k/s).
"""
import numpy as np

from .jit import kernel

_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xC2B2AE3D27D4EB4F)
_S = np.uint64(29)
KEY, KEY2, VAL = 0, 1, 2


def new_map(entries: int) -> np.ndarray:
    """A map holding up to `entries` keys at load <= 1/2."""
    cap = 1
    while cap < 2 * max(entries, 1):
        cap <<= 1
    table = np.zeros((cap, 4), np.int64)
    table[:, VAL] = -1
    return table


@kernel(inline="always")
def _home(k, k2, mask):
    h = np.uint64(k) * _K1 ^ np.uint64(k2) * _K2
    h ^= h >> _S
    return np.int64(h & np.uint64(mask))


@kernel(inline="always")
def hm_home(t, k, k2):
    """Row where the probe for (k, k2) starts (to prefetch it ahead of use)."""
    return _home(k, k2, len(t) - 1)


@kernel()
def hm_get(t, k, k2):
    """Value stored for (k, k2), or -1."""
    mask = len(t) - 1
    i = _home(k, k2, mask)
    while True:
        v = t[i, VAL]
        if v < 0:
            return -1
        if t[i, KEY] == k and t[i, KEY2] == k2:
            return v
        i = (i + 1) & mask


@kernel()
def hm_put(t, k, k2, v):
    """Insert (k, k2) -> v; the key must be absent."""
    mask = len(t) - 1
    i = _home(k, k2, mask)
    while t[i, VAL] >= 0:
        i = (i + 1) & mask
    t[i, KEY] = k
    t[i, KEY2] = k2
    t[i, VAL] = v


@kernel()
def hm_del(t, k, k2):
    """Remove (k, k2) if present; later entries of its probe run shift back."""
    mask = len(t) - 1
    i = _home(k, k2, mask)
    while True:
        if t[i, VAL] < 0:
            return
        if t[i, KEY] == k and t[i, KEY2] == k2:
            break
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        if t[j, VAL] < 0:
            break
        h = _home(t[j, KEY], t[j, KEY2], mask)
        # Entry j may fill the hole at i only if its home is not in (i, j].
        if i <= j:
            if i < h <= j:
                continue
        elif h > i or h <= j:
            continue
        t[i, KEY] = t[j, KEY]
        t[i, KEY2] = t[j, KEY2]
        t[i, VAL] = t[j, VAL]
        i = j
    t[i, VAL] = -1
