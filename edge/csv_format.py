"""The fast CSV formatter of the output files: rows are never formatted by Python.

The integer columns of a chunk of rows are copied into an int64 matrix (one
numpy copy per column), and one numba kernel writes the digits, separators and
the short names of code columns (op, side, status...) into a preallocated uint8
buffer that is written out as is. ASCII, LF line endings, integers in plain
decimal (``-`` for negatives, no padding).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from numba import njit

ROWS_PER_CALL = 1 << 16          # rows formatted per kernel call
_INT_WIDTH = 20           # len("-9223372036854775808")

# ---------------------------------------------------------------------------
# The formatting kernel
# ---------------------------------------------------------------------------

_POW10 = np.array([10 ** k for k in range(20)], dtype=np.uint64)
_DIGITS2 = np.frombuffer("".join(f"{i:02d}" for i in range(100)).encode(), np.uint8).copy()


@njit(cache=True, inline="always")
def put_int(out, pos, v):
    """Write int64 ``v`` in decimal at out[pos:]; return the position after it.

    The magnitude is taken as uint64 (so -2**63 needs no special case) and
    written two digits at a time, right to left, after counting its digits.
    """
    if v < 0:
        out[pos] = 45  # '-'
        pos += 1
        u = np.uint64(-(v + 1)) + np.uint64(1)
    else:
        u = np.uint64(v)
    n = 1
    while n < 20 and u >= _POW10[n]:
        n += 1
    end = pos + n
    p = end
    one, two, ten, hundred = np.uint64(1), np.uint64(2), np.uint64(10), np.uint64(100)
    while u >= hundred:
        q = u // hundred
        r = (u - q * hundred) * two
        p -= 2
        out[p] = _DIGITS2[r]
        out[p + 1] = _DIGITS2[r + one]
        u = q
    if u >= ten:
        r = u * two
        out[p - 2] = _DIGITS2[r]
        out[p - 1] = _DIGITS2[r + one]
    else:
        out[p - 1] = np.uint8(48) + np.uint8(u)
    return end


@njit(cache=True)
def _format_rows(cols, nrows, is_code, name_start, name_len, name_bytes, out):
    """Format rows 0..nrows-1 of ``cols`` (int64[ncols, >= nrows]) as CSV lines into ``out``.

    A column c with is_code[c] != 0 whose value v has a name (0 <= v <
    name_len.shape[1] and name_len[c, v] >= 0) is written as the bytes
    name_bytes[name_start[c, v] : + name_len[c, v]]; every other value as an
    integer. Returns the number of bytes written.
    """
    ncols = cols.shape[0]
    ncodes = name_len.shape[1]
    last = ncols - 1
    pos = 0
    # (This shape, with the separator written in both branches, compiles to
    # code about 2.5x faster than an if/else joining before the separator.)
    for i in range(nrows):
        for c in range(ncols):
            v = cols[c, i]
            if is_code[c] != 0 and v >= 0 and v < ncodes and name_len[c, v] >= 0:
                s = name_start[c, v]
                ln = name_len[c, v]
                j = 0
                while j < ln:
                    out[pos + j] = name_bytes[s + j]
                    j += 1
                pos += ln
                out[pos] = 44 if c < last else 10  # ',' or '\n'
                pos += 1
                continue
            pos = put_int(out, pos, v)
            out[pos] = 44 if c < last else 10
            pos += 1
    return pos


class Layout:
    """A CSV table: header and, per column, either None (integer) or {code: name}."""

    def __init__(self, header: Sequence[str], codes: Sequence[dict | None]):
        assert len(header) == len(codes)
        self.header = (",".join(header) + "\n").encode("ascii")
        self.ncols = len(codes)
        ncodes = max([max(d) + 1 for d in codes if d] + [1])
        self.is_code = np.array([1 if d else 0 for d in codes], dtype=np.int64)
        self.name_start = np.zeros((self.ncols, ncodes), dtype=np.int64)
        self.name_len = np.full((self.ncols, ncodes), -1, dtype=np.int64)
        blob = bytearray()
        width = 0
        for c, d in enumerate(codes):
            cw = _INT_WIDTH  # an unnamed code is written as an integer
            for code, name in (d or {}).items():
                b = name.encode("ascii")
                if any(ch in b for ch in b',"\r\n'):
                    raise ValueError(f"name {name!r} needs CSV quoting")
                self.name_start[c, code] = len(blob)
                self.name_len[c, code] = len(b)
                blob += b
                cw = max(cw, len(b))
            width += cw + 1
        self.name_bytes = np.frombuffer(bytes(blob) or b"\0", dtype=np.uint8).copy()
        self.row_width = width  # upper bound of one formatted row, newline included

    def formatter(self) -> "Formatter":
        return Formatter(self)


class Formatter:
    """Per-writer buffers for one layout (not shared between threads)."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.cap = 0
        self.mat = None
        self.buf = None

    def _reserve(self, n):
        if n > self.cap:
            self.cap = n
            self.mat = np.empty((self.layout.ncols, n), dtype=np.int64)
            self.buf = np.empty(n * self.layout.row_width, dtype=np.uint8)

    def write(self, f, columns: Sequence[np.ndarray]) -> int:
        """Write rows given as equal-length integer columns (any int dtype, any strides)."""
        lay = self.layout
        assert len(columns) == lay.ncols
        n = len(columns[0])
        for start in range(0, n, ROWS_PER_CALL):
            m = min(ROWS_PER_CALL, n - start)
            self._reserve(m)
            mat = self.mat
            for c, col in enumerate(columns):
                mat[c, :m] = col[start:start + m]
            nb = _format_rows(mat, m, lay.is_code, lay.name_start, lay.name_len,
                              lay.name_bytes, self.buf)
            f.write(self.buf[:nb].data)
        return n
