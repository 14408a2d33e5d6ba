"""Free stacks of slot indices: every pool of the engine (order slots, levels,
ladder buckets, UBSCore's order locks) hands out and takes back slots here.

A stack is an int32 array plus a count kept in the owner's `counters` array at
index `top`. LIFO reuse keeps recently freed (cache-warm) slots in use.
"""
from .jit import kernel


@kernel(inline="always")
def pop(stack, counters, top):
    """Take a free slot; the caller has checked counters[top] > 0."""
    n = counters[top] - 1
    counters[top] = n
    return stack[n]


@kernel(inline="always")
def push(stack, counters, top, slot):
    """Give a slot back."""
    n = counters[top]
    stack[n] = slot
    counters[top] = n + 1
