"""LLVM intrinsics numba does not expose: bit scans and a prefetch hint.

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


@intrinsic
def prefetch(typingctx, table, row):
    """Hint the CPU to load the cache line holding table[row] (its first element
    if the array has more dimensions).

    Batched kernels call this a few commands ahead, so the hash-table row a
    later command needs arrives while the current one is processed (a miss
    costs ~140 ns here; several run in parallel)."""
    sig = types.void(table, types.intp)

    def codegen(context, builder, signature, args):
        from numba.core import cgutils
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, value=args[0])
        zero = ir.Constant(ir.IntType(64), 0)
        idx = [args[1]] + [zero] * (aryty.ndim - 1)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, idx)
        i8p = ir.IntType(8).as_pointer()
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, ir.IntType(32), ir.IntType(32), ir.IntType(32)]),
            "llvm.prefetch.p0")
        i32 = ir.IntType(32)
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen
