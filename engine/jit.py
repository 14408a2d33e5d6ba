"""The one numba decorator of the engine's kernels.

`cache=True` so a second start loads machine code instead of compiling.
`_nrt=False` because the kernels take namedtuples of many arrays: with numba's
runtime on, every call boundary increfs and decrefs each array (thousands of
atomic operations in the ST kernel, most of a command's cost). The kernels
never allocate, so they do not need the runtime; callers pass every array in.
"""
from numba import njit


def kernel(inline: str = "never"):
    return njit(cache=True, _nrt=False, inline=inline)
