"""Acquire loads and release stores for numba: the one place memory ordering lives.

numba has no atomics API. A ring cursor read with a plain load lets LLVM keep
the value in a register and hoist it out of a spin loop (the consumer would
never see the producer's progress and hang), and lets the CPU or compiler
reorder the slot writes after the cursor store (the consumer could read a
torn record). These intrinsics emit LLVM `load atomic ... acquire` and
`store atomic ... release` on an aligned int64 element:

- the producer writes its slots, then `store_release`s its cursor: no slot
  write can move after that store;
- the consumer `load_acquire`s the cursor, then reads slots: no slot read can
  move before that load.

On x86-64 both compile to plain MOVs (its memory model is already TSO); what
they buy is that the compiler may neither cache nor reorder them. On ARM they
become LDAR/STLR.
"""
import time

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ..engine.jit import kernel


def _element_ptr(context, builder, aryty, ary_value, idx):
    ary = context.make_array(aryty)(context, builder, value=ary_value)
    return cgutils.get_item_pointer(context, builder, aryty, ary, [idx])


@intrinsic
def load_acquire(typingctx, arr, idx):
    """arr[idx] (an int64 array) read with acquire ordering."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64 and arr.ndim == 1):
        return None
    sig = types.int64(arr, types.intp)

    def codegen(context, builder, signature, args):
        ptr = _element_ptr(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "acquire", 8)

    return sig, codegen


@intrinsic
def store_release(typingctx, arr, idx, value):
    """arr[idx] = value (an int64 array) with release ordering."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64 and arr.ndim == 1):
        return None
    sig = types.void(arr, types.intp, types.int64)

    def codegen(context, builder, signature, args):
        ptr = _element_ptr(context, builder, signature.args[0], args[0], args[1])
        builder.store_atomic(args[2], ptr, "release", 8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def fence(typingctx):
    """A full (sequentially consistent) memory fence.

    The blocking wait strategy is a Dekker handshake: the consumer stores
    "I am waiting" then loads the producer cursor; the producer stores its
    cursor then loads "waiting". x86 may reorder a store with a later load,
    so each side needs a full fence between its store and its load, or both
    could miss each other (a lost wake-up)."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def cycles(typingctx):
    """The CPU's cycle counter (rdtsc on x86-64): for latency benchmarks only,
    never inside a state machine. Convert with a rate calibrated against the
    OS clock; the TSC is invariant and shared by all cores on current x86."""
    sig = types.int64()

    def codegen(context, builder, signature, args):
        from llvmlite import ir
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(64), []),
                                            "llvm.readcyclecounter")
        return builder.call(fn, [])

    return sig, codegen


@kernel()
def now_cycles():
    return cycles()


def cycles_per_ns(seconds: float = 0.05) -> float:
    """The cycle counter's rate, measured against the OS clock."""
    c0, t0 = now_cycles(), time.perf_counter_ns()
    time.sleep(seconds)
    return (now_cycles() - c0) / (time.perf_counter_ns() - t0)
