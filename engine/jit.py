"""The one numba decorator of the engine's kernels.

`cache=True` so a second start loads machine code instead of compiling.
`_nrt=False` because the kernels take namedtuples of many arrays: with numba's
runtime on, every call boundary increfs and decrefs each array (thousands of
atomic operations in the ST kernel, most of a command's cost). The kernels
never allocate, so they do not need the runtime; callers pass every array in.

`inline="always"` on everything a command's hot path calls: numba passes a
namedtuple of arrays as ~7 scalars per array, so a call taking the ME's and
UBSCore's state copies over a kilobyte of arguments. Inlining the hot path
into the batch kernel took the 1.3M-row benchmark from ~1.4M to ~3M
commands/s. Rare paths (move, reduce, deposit, withdraw, resume after a pause)
stay calls, so the matching loop is compiled once, not once per caller.
"""
from numba import njit


def kernel(inline: str = "never"):
    return njit(cache=True, _nrt=False, inline=inline)
