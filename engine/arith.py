"""Exact integer money arithmetic for the numba core.

Amounts are int64 >= 0. Products such as price * qty may exceed 2^63, so they
are taken as 128-bit (hi, lo) uint64 pairs and divided exactly. Every function
returns -1 when the true result does not fit int64: the caller rejects, it never
wraps or saturates. The fast path (product fits int64) is one multiply and one
divide; the 128-bit path is rare (huge quantities) and bit-serial.

numba note: mixing int64 and uint64 operands yields float64, so every uint64
expression here casts both sides explicitly.
"""
import numpy as np
from .jit import kernel

I64_MAX = 9223372036854775807
_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_ONE = np.uint64(1)


@kernel(inline="always")
def mul_u128(a, b):
    """a * b for int64 a, b >= 0, as (hi, lo) uint64."""
    ua = np.uint64(a)
    ub = np.uint64(b)
    a0 = ua & _M32
    a1 = ua >> _S32
    b0 = ub & _M32
    b1 = ub >> _S32
    p00 = a0 * b0
    p01 = a0 * b1
    p10 = a1 * b0
    p11 = a1 * b1
    mid = (p00 >> _S32) + (p01 & _M32) + (p10 & _M32)
    lo = (p00 & _M32) | ((mid & _M32) << _S32)
    hi = p11 + (p01 >> _S32) + (p10 >> _S32) + (mid >> _S32)
    return hi, lo


@kernel()
def div_u128(hi, lo, d):
    """floor((hi, lo) / d) for int64 d > 0; -1 if the quotient exceeds int64."""
    ud = np.uint64(d)
    if hi == np.uint64(0):
        q = lo // ud
        if q > np.uint64(I64_MAX):
            return -1
        return np.int64(q)
    if hi >= ud:
        return -1
    r = hi
    q = np.uint64(0)
    for i in range(63, -1, -1):
        bit = (lo >> np.uint64(i)) & _ONE
        r = (r << _ONE) | bit          # r < d < 2^63, so this cannot overflow
        q = q << _ONE
        if r >= ud:
            r -= ud
            q |= _ONE
    if q > np.uint64(I64_MAX):
        return -1
    return np.int64(q)


@kernel(inline="always")
def muldiv(a, b, d):
    """floor(a * b / d) for a, b >= 0, d > 0; -1 if it does not fit int64."""
    if a == 0 or b == 0:
        return 0
    if a <= I64_MAX // b:
        return (a * b) // d
    hi, lo = mul_u128(a, b)
    return div_u128(hi, lo, d)


@kernel(inline="always")
def cost(price, qty, num, den):
    """Quote cost of qty at price: floor(price * qty * num / den); -1 on overflow."""
    r = muldiv(price, qty, den)
    if num == 1 or r <= 0:
        return r
    if r > I64_MAX // num:
        return -1
    return r * num


@kernel(inline="always")
def fee(amount, ppm):
    """floor(amount * ppm / 10^6), at least 1 when amount > 0 and ppm > 0."""
    if amount == 0 or ppm == 0:
        return 0
    f = muldiv(amount, ppm, 1000000)
    return f if f > 0 else 1


@kernel()
def affordable_qty(budget, price, num, den):
    """Largest q with cost(price, q) <= budget (capped at int64 max)."""
    if den == 1:
        if price > I64_MAX // num:
            return 0
        return budget // (price * num)
    # q <= ((budget + 1) * den - 1) // price, computed in 128 bits.
    hi, lo = mul_u128(budget + 1, den)
    if lo == np.uint64(0):
        hi -= _ONE
    lo -= _ONE
    q = div_u128(hi, lo, price)
    return I64_MAX if q < 0 else q


@kernel(inline="always")
def add_u128(hi, lo, a, b):
    """(hi, lo) + a * b, for the running notional sum(price * qty) of an order."""
    phi, plo = mul_u128(a, b)
    nlo = lo + plo
    carry = np.uint64(1) if nlo < lo else np.uint64(0)
    return hi + phi + carry, nlo
