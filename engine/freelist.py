"""Free stacks of slot indices: every pool of the engine (order slots, levels,
ladder buckets, UBSCore's order locks) hands out and takes back slots here.

A stack is an int32 array plus a count kept in the owner's `ctr` array at
index `top`. LIFO reuse keeps recently freed (cache-warm) slots in use.
"""
from .jit import kernel


@kernel(inline="always")
def pop(stack, ctr, top):
    """Take a free slot; the caller has checked ctr[top] > 0."""
    n = ctr[top] - 1
    ctr[top] = n
    return stack[n]


@kernel(inline="always")
def push(stack, ctr, top, slot):
    """Give a slot back."""
    n = ctr[top]
    stack[n] = slot
    ctr[top] = n + 1
