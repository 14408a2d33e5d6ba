"""Bit scans for numba: count trailing / leading zeros of a uint64.

numba exposes no ctz/clz; these emit LLVM's cttz/ctlz, which compile to one
instruction (tzcnt/lzcnt or bsf/bsr). The price ladder uses them to find the
best price in a 64x64-bit bucket in two scans.
"""
from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def ctz64(typingctx, x):
    """Index of the lowest set bit of a non-zero uint64."""
    sig = types.int64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return sig, codegen


@intrinsic
def clz64(typingctx, x):
    """Number of zero bits above the highest set bit of a non-zero uint64."""
    sig = types.int64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctlz(args[0], ir.Constant(ir.IntType(1), 1))

    return sig, codegen
