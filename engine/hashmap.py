"""Open-addressing hash map (int64, int64) -> int32 for numba, preallocated.

Linear probing with backward-shift deletion, so there are no tombstones and a
lookup's cost stays bounded by the load factor (kept <= 1/2 by sizing the table
at twice the capacity of what it indexes). The hash is a fixed multiplicative
mix: iteration order never matters (nothing iterates the table), and the same
inserts always give the same layout.

A map is three arrays of one power-of-two length: keys, keys2, vals (-1 = empty).
"""
import numpy as np
from numba import njit

_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xC2B2AE3D27D4EB4F)
_S = np.uint64(29)


def new_map(entries: int):
    """Arrays for a map holding up to `entries` keys at load <= 1/2."""
    cap = 1
    while cap < 2 * max(entries, 1):
        cap <<= 1
    return (np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.full(cap, -1, np.int32))


@njit(cache=True, inline="always")
def _home(k, k2, mask):
    h = np.uint64(k) * _K1 ^ np.uint64(k2) * _K2
    h ^= h >> _S
    return np.int64(h & np.uint64(mask))


@njit(cache=True)
def hm_get(keys, keys2, vals, k, k2):
    """Value stored for (k, k2), or -1."""
    mask = len(vals) - 1
    i = _home(k, k2, mask)
    while True:
        v = vals[i]
        if v < 0:
            return -1
        if keys[i] == k and keys2[i] == k2:
            return v
        i = (i + 1) & mask


@njit(cache=True)
def hm_put(keys, keys2, vals, k, k2, v):
    """Insert (k, k2) -> v; the key must be absent."""
    mask = len(vals) - 1
    i = _home(k, k2, mask)
    while vals[i] >= 0:
        i = (i + 1) & mask
    keys[i] = k
    keys2[i] = k2
    vals[i] = v


@njit(cache=True)
def hm_del(keys, keys2, vals, k, k2):
    """Remove (k, k2) if present; later entries of its probe run shift back."""
    mask = len(vals) - 1
    i = _home(k, k2, mask)
    while True:
        if vals[i] < 0:
            return
        if keys[i] == k and keys2[i] == k2:
            break
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        if vals[j] < 0:
            break
        h = _home(keys[j], keys2[j], mask)
        # Entry j may fill the hole at i only if its home is not in (i, j].
        if i <= j:
            if i < h <= j:
                continue
        elif h > i or h <= j:
            continue
        keys[i] = keys[j]
        keys2[i] = keys2[j]
        vals[i] = vals[j]
        i = j
    vals[i] = -1
