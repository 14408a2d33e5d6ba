"""Load a dataset directory into commands: the input side of every pipeline.

A dataset directory holds four CSV files (formats in shared/golden/README.md):

- ``assets_config.csv``   ``asset_id,asset,decimals,display_decimals``
- ``symbols_config.csv``  ``symbol_id,symbol,base_asset_id,quote_asset_id,price_decimal,
  price_display_decimal`` optionally followed by ``maker_fee_ppm,taker_fee_ppm,fee_user_id,stp``
- ``balances_init.csv``   ``user_id,asset_id,avail,frozen,version`` (raw integer units;
  each row becomes a deposit of ``avail``; ``frozen`` and ``version`` are ignored)
- ``orders.csv`` in one of three layouts, chosen by its header:
  5 columns ``order_id,user_id,side,price,qty`` (every row a limit GTC place on the
  first symbol), 6 columns ``order_id,user_id,action,side,price,qty`` (place|cancel),
  or the extended ``order_id,user_id,action,side,price,qty,order_type,tif,amount,symbol``
  (place|cancel|reduce|move|deposit|withdraw; the field rules are below).

Invariants of the result:

- ``Dataset.commands`` has exactly one ``R.CMD`` record per orders.csv data row, in
  file order, with ``seq = ts = 0``, ``ref = -1`` and zero ``reserved`` bytes;
  ``Dataset.deposits`` one CMD_DEPOSIT per balances_init.csv row, in file order.
- Decimal fields are parsed exactly (engine/money.py grammar): a price in the
  symbol's ``price_decimal``, a qty in the base asset's decimals, a market-buy
  budget in the quote asset's decimals, a deposit/withdraw amount in its asset's.
- Any bad row stops the load with ``DatasetError("<file>:<line>: <reason>")``,
  ``line`` being the 1-based line number in that file. Business-level problems
  (a zero price, an unknown user, ...) are not load errors: they reach the core
  and are rejected there, as the core's contract says.

Field rules of orders.csv (an empty field is ``""``; fields not listed for a
row's action must be empty):

- place: order_id, user_id, side (buy|sell); order_type limit|market (empty:
  limit); tif gtc|ioc (empty: gtc); symbol (empty: the first symbol of
  symbols_config.csv). A limit needs price and qty; a market sell needs qty; a
  market buy needs amount (its quote budget) and may give qty (empty: 0, no cap).
- cancel: order_id, user_id, symbol. reduce: also qty (the reduce-by quantity).
  move: also price (the new price).
- deposit / withdraw: user_id, symbol = an ASSET name, amount in that asset's
  decimals; order_id optional (empty: 0). CMD.symbol holds the asset id.
- Keywords and names are matched exactly (lowercase keywords, case-sensitive
  names); no quoting, no spaces around fields.

orders.csv and balances_init.csv are parsed from their raw bytes by numba kernels
(1.3M rows in about 0.2 s once the kernels are compiled and cached); they stop
at the first bad row and report (code, line, column, field span), and Python
turns that into the message. A bad decimal's message comes from
``engine.money.parse_decimal`` run on the same text, so both parsers must agree.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import pathlib

import numpy as np
from numba import njit

from xinfinity.config import Asset, Symbol
from xinfinity.engine import money
from xinfinity.engine import records as R

MAX_ID = 0xFFFF              # asset and symbol ids travel in the u2 `symbol` field of CMD
MAX_FEE_PPM = 1_000_000

ORDERS_5 = ("order_id", "user_id", "side", "price", "qty")
ORDERS_6 = ("order_id", "user_id", "action", "side", "price", "qty")
ORDERS_EXT = ("order_id", "user_id", "action", "side", "price", "qty",
              "order_type", "tif", "amount", "symbol")
BALANCES = ("user_id", "asset_id", "avail", "frozen", "version")
ASSETS = ("asset_id", "asset", "decimals", "display_decimals")
SYMBOLS = ("symbol_id", "symbol", "base_asset_id", "quote_asset_id", "price_decimal",
           "price_display_decimal")
SYMBOL_FEES = ("maker_fee_ppm", "taker_fee_ppm", "fee_user_id", "stp")

# Logical column numbers used by the kernel (position in ORDERS_EXT).
C_ORDER_ID, C_USER_ID, C_ACTION, C_SIDE, C_PRICE, C_QTY, C_TYPE, C_TIF, C_AMOUNT, C_SYMBOL = range(10)

# Kernel status codes.
E_OK = 0
E_COLUMNS = 1        # aux: number of fields found
E_EMPTY = 2          # a required field is empty
E_INT = 3            # not a non-negative integer
E_INT_OVERFLOW = 4   # integer >= 2**63
E_DECIMAL = 5        # aux: decimals; the message comes from money.parse_decimal
E_ACTION = 6
E_SIDE = 7
E_TYPE = 8
E_TIF = 9
E_SYMBOL = 10
E_ASSET = 11
E_NOT_EMPTY = 12     # aux: the command kind that forbids this field
E_BLANK_LINE = 13
E_END = 14           # only line ends remain: the table is over (not an error)

# Decimal / integer parse statuses (shared with the property tests).
D_OK, D_EMPTY, D_BAD, D_FRACTION, D_OVERFLOW = 0, 1, 2, 3, 4

_INT64_MAX = 2**63 - 1


class DatasetError(ValueError):
    """A dataset file is malformed; the message starts with ``file:line:``."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    path: pathlib.Path
    assets: list[Asset]
    symbols: list[Symbol]
    deposits: np.ndarray       # R.CMD, kind CMD_DEPOSIT, one per balances_init.csv row
    commands: np.ndarray       # R.CMD, one per orders.csv row
    rows: int                  # len(commands)


# -- numba kernels -------------------------------------------------------------
#
# Calls between numba functions that pass arrays cost tens of nanoseconds each
# (they are not inlined, and reference-count their arrays): at 1.3M rows with a
# dozen fields that was most of the load time. So the helpers are
# inline="always", each called from one place (to bound compile time), and the
# orders kernel runs with _nrt=False on caller-provided scratch arrays.

_MAX_TENTH = _INT64_MAX // 10          # v*10 + d overflows iff v > this, or v == this and d > 7


@njit(inline="always")
def _uint(buf, s, e):
    """Digits only, below 2**63. Returns (value, D_* status)."""
    if s == e:
        return 0, D_EMPTY
    v = 0
    for i in range(s, e):
        d = np.int64(buf[i]) - 48
        if d < 0 or d > 9:
            return 0, D_BAD
        if v >= _MAX_TENTH and (v > _MAX_TENTH or d > 7):
            return 0, D_OVERFLOW
        v = v * 10 + d
    return v, D_OK


@njit(inline="always")
def _dec(buf, s, e, decimals):
    """The numba twin of money.parse_decimal. Returns (units, D_* status).

    Failures in the same precedence as the Python version: empty; then a bad
    character, a second '.', or no digit at all; then too many fractional
    digits; then overflow.
    """
    if s == e:
        return 0, D_EMPTY
    v = 0
    frac = -1          # fractional digits seen; -1 before the '.'
    digits = 0
    overflow = False
    for i in range(s, e):
        d = np.int64(buf[i]) - 48
        if d == -2:                    # '.'
            if frac >= 0:
                return 0, D_BAD
            frac = 0
            continue
        if d < 0 or d > 9:
            return 0, D_BAD
        digits += 1
        if frac >= 0:
            frac += 1
        if v >= _MAX_TENTH and (v > _MAX_TENTH or d > 7):
            overflow = True
        elif not overflow:
            v = v * 10 + d
    if digits == 0:
        return 0, D_BAD
    if frac > decimals:
        return 0, D_FRACTION
    for _ in range(decimals - max(frac, 0)):
        if v > _MAX_TENTH:
            overflow = True
            break
        v *= 10
    if overflow:
        return 0, D_OVERFLOW
    return v, D_OK


@njit(cache=True)
def _parse_decimal(buf, s, e, decimals):
    """_dec as a callable kernel (for tests and one-off use)."""
    return _dec(buf, s, e, decimals)


@njit(inline="always")
def _word(buf, s, e, names, lens, first, count):
    """k such that buf[s:e] equals names[first + k] (0 <= k < count), or -1."""
    n = e - s
    for k in range(count):
        r = first + k
        if lens[r] == n:
            j = 0
            while j < n and names[r, j] == buf[s + j]:
                j += 1
            if j == n:
                return k
    return -1


@njit(inline="always")
def _split_line(buf, pos, n, fs, fe):
    """Split the line starting at pos on ','. Returns (fields, end of content, next line)."""
    nf = 0
    s = pos
    i = pos
    cap = fs.shape[0]
    while i < n:
        c = buf[i]
        if c == 10:
            break
        if c == 44:
            if nf < cap:
                fs[nf] = s
                fe[nf] = i
            nf += 1
            s = i + 1
        i += 1
    end = i
    if end > s and buf[end - 1] == 13:
        end -= 1
    if nf < cap:
        fs[nf] = s
        fe[nf] = end
    return nf + 1, end, i + 1


@njit(inline="always")
def _blank_tail(buf, pos, n):
    """True when nothing but line ends remains from pos."""
    for i in range(pos, n):
        if buf[i] != 10 and buf[i] != 13:
            return False
    return True


@njit(inline="always")
def _next_line(buf, pos, n, ncols, fs, fe):
    """Split the line at pos and judge its shape: (code, aux, end, next line).
    code is E_OK for a line of ncols fields, E_BLANK_LINE / E_COLUMNS (aux = fields
    found) for a line that cannot be a row, and E_END when only line ends remain."""
    nf, end, nxt = _split_line(buf, pos, n, fs, fe)
    if nf == 1 and end == pos:
        if _blank_tail(buf, pos, n):
            return E_END, 0, end, nxt
        return E_BLANK_LINE, 0, end, nxt
    if nf != ncols:
        return E_COLUMNS, nf, end, nxt
    return E_OK, 0, end, nxt


@njit(inline="always")
def _set_err(err, code, line, col, s, e, aux):
    err[0] = code
    err[1] = line
    err[2] = col
    err[3] = s
    err[4] = e
    err[5] = aux


@njit(inline="always")
def _first_set(ls, le, mask):
    """The first logical column in `mask` (a bit per column) that is not empty, or -1."""
    for c in range(10):
        if (mask >> c) & 1 and le[c] > ls[c]:
            return c
    return -1


@njit(inline="always")
def _int_code(st):
    return E_EMPTY if st == D_EMPTY else (E_INT if st == D_BAD else E_INT_OVERFLOW)


@njit(inline="always")
def _dec_code(st):
    return E_EMPTY if st == D_EMPTY else E_DECIMAL


# Name tables, flattened into one (rows, width) uint8 array: table t is rows
# table_start[t] .. table_start[t] + table_len[t] - 1.
T_ACTION, T_SIDE, T_TYPE, T_TIF, T_ASSET, T_SYMBOL = range(6)

_BIT_SIDE_TYPE_TIF = (1 << C_SIDE) | (1 << C_TYPE) | (1 << C_TIF)


@njit(inline="always")
def _parse_row(buf, ls, le, has_action, names, lens, table_start, table_len, sym_ids, price_decimals, base_decimals, quote_decimals,
               asset_ids, asset_dec, vals, codes):
    """One orders.csv row into vals (order_id, user_id, price, qty, amount) and codes
    (kind, side, order_type, tif, symbol). Returns (E_* code, column, aux).

    Each helper is called from one place only: the kernel inlines them, and
    fewer copies keep the compile time down.
    """
    for k in range(5):
        vals[k] = 0
        codes[k] = 0
    kind = R.CMD_PLACE
    if has_action:
        k = _word(buf, ls[C_ACTION], le[C_ACTION], names, lens, table_start[T_ACTION], table_len[T_ACTION])
        if k < 0:
            return (E_EMPTY if le[C_ACTION] == ls[C_ACTION] else E_ACTION), C_ACTION, 0
        kind = k + 1                     # the table follows the CMD_* codes
    codes[0] = kind
    funds = kind == R.CMD_DEPOSIT or kind == R.CMD_WITHDRAW
    for c in range(C_USER_ID, C_ORDER_ID - 1, -1):     # user_id, then order_id
        if c == C_ORDER_ID and funds and le[c] == ls[c]:
            continue                     # a deposit/withdraw needs no order id
        v, st = _uint(buf, ls[c], le[c])
        if st:
            return _int_code(st), c, 0
        vals[c] = v                      # vals[0] order_id, vals[1] user_id
    # The symbol column: a symbol name (empty: the first), or a deposit/withdraw's asset.
    t = T_ASSET if funds else T_SYMBOL
    idx = 0
    if le[C_SYMBOL] > ls[C_SYMBOL]:
        idx = _word(buf, ls[C_SYMBOL], le[C_SYMBOL], names, lens, table_start[t], table_len[t])
        if idx < 0:
            return (E_ASSET if funds else E_SYMBOL), C_SYMBOL, 0
    elif funds:
        return E_EMPTY, C_SYMBOL, 0
    codes[4] = asset_ids[idx] if funds else sym_ids[idx]
    if kind == R.CMD_PLACE:              # side (required), order_type, tif (empty: 0)
        for i in range(3):
            c = C_SIDE if i == 0 else C_TYPE + i - 1
            if le[c] == ls[c]:
                if i == 0:
                    return E_EMPTY, c, 0
                continue
            k = _word(buf, ls[c], le[c], names, lens, table_start[T_SIDE + i], table_len[T_SIDE + i])
            if k < 0:
                return E_SIDE + i, c, 0
            codes[1 + i] = k
    market_buy = kind == R.CMD_PLACE and codes[2] == R.TYPE_MARKET and codes[1] == R.SIDE_BUY
    # Decimal fields: 0 must be empty, 1 required, 2 optional (a market buy's qty cap).
    need_price = 1 if (kind == R.CMD_PLACE and codes[2] == R.TYPE_LIMIT) or kind == R.CMD_MOVE else 0
    need_qty = (2 if market_buy else 1) if kind == R.CMD_PLACE or kind == R.CMD_REDUCE else 0
    need_amount = 1 if market_buy or funds else 0
    mask = 0 if kind == R.CMD_PLACE else _BIT_SIDE_TYPE_TIF
    mask |= (0 if need_price else 1 << C_PRICE) | (0 if need_qty else 1 << C_QTY)
    mask |= 0 if need_amount else 1 << C_AMOUNT
    c = _first_set(ls, le, mask)
    if c >= 0:
        return E_NOT_EMPTY, c, kind
    for i in range(3):                   # price, qty, amount -> vals[2], vals[3], vals[4]
        need = need_price if i == 0 else (need_qty if i == 1 else need_amount)
        c = C_PRICE if i == 0 else (C_QTY if i == 1 else C_AMOUNT)
        if need == 0 or (need == 2 and le[c] == ls[c]):
            continue
        if i == 0:
            d = price_decimals[idx]
        elif i == 1:
            d = base_decimals[idx]
        else:
            d = asset_dec[idx] if funds else quote_decimals[idx]
        v, st = _dec(buf, ls[c], le[c], d)
        if st:
            return _dec_code(st), c, d
        vals[2 + i] = v
    return E_OK, 0, 0


@njit(cache=True, _nrt=False)
def _parse_orders(buf, pos, ncols, colmap, names, lens, table_start, table_len, sym_ids, price_decimals, base_decimals, quote_decimals,
                  asset_ids, asset_dec, o_order_id, o_user_id, o_price, o_qty, o_amount,
                  o_kind, o_side, o_type, o_tif, o_symbol, err, scratch):
    """Parse every data row of orders.csv from byte `pos` (just after the header).

    Fills the output columns and returns the number of rows. On the first bad
    row it stops with err = (code, line, logical column, field start, field end, aux).
    scratch: a (6, 16) int64 work array; the kernel allocates nothing, so it
    runs without numba's reference counting (which costs more than the parsing).
    """
    n = buf.shape[0]
    fs, fe, ls, le = scratch[0], scratch[1], scratch[2, :10], scratch[3, :10]
    vals, codes = scratch[4, :5], scratch[5, :5]
    has_action = colmap[C_ACTION] >= 0
    row = 0
    line = 2
    while pos < n:
        code, aux, end, nxt = _next_line(buf, pos, n, ncols, fs, fe)
        col = 0
        if code == E_END:
            break
        if code == E_OK:
            for c in range(10):
                k = colmap[c]
                ls[c] = fs[k] if k >= 0 else 0
                le[c] = fe[k] if k >= 0 else 0
            code, col, aux = _parse_row(buf, ls, le, has_action, names, lens, table_start, table_len, sym_ids,
                                        price_decimals, base_decimals, quote_decimals, asset_ids, asset_dec, vals, codes)
        if code != E_OK:
            whole_line = code == E_BLANK_LINE or code == E_COLUMNS
            _set_err(err, code, line, col, pos if whole_line else ls[col],
                     end if whole_line else le[col], aux)
            return row
        o_order_id[row] = vals[0]
        o_user_id[row] = vals[1]
        o_price[row] = vals[2]
        o_qty[row] = vals[3]
        o_amount[row] = vals[4]
        o_kind[row] = codes[0]
        o_side[row] = codes[1]
        o_type[row] = codes[2]
        o_tif[row] = codes[3]
        o_symbol[row] = codes[4]
        row += 1
        line += 1
        pos = nxt
    return row


@njit(cache=True)
def _parse_int_table(buf, pos, out, err):
    """Parse a CSV of non-negative integers (out.shape[1] columns) from byte `pos`."""
    n = buf.shape[0]
    ncols = out.shape[1]
    fs = np.zeros(16, np.int64)
    fe = np.zeros(16, np.int64)
    row = 0
    line = 2
    while pos < n:
        code, aux, end, nxt = _next_line(buf, pos, n, ncols, fs, fe)
        col, s, e = 0, pos, end
        if code == E_END:
            break
        if code == E_OK:
            for c in range(ncols):
                v, st = _uint(buf, fs[c], fe[c])
                if st:
                    code, col, s, e = _int_code(st), c, fs[c], fe[c]
                    break
                out[row, c] = v
        if code != E_OK:
            _set_err(err, code, line, col, s, e, aux)
            return row
        row += 1
        line += 1
        pos = nxt
    return row


def parse_decimal_bytes(text: bytes, decimals: int) -> tuple[int, int]:
    """The numba decimal parser on a bytes string: (units, D_* status). For tests."""
    buf = np.frombuffer(text, np.uint8).copy() if text else np.zeros(0, np.uint8)
    v, st = _parse_decimal(buf, 0, len(text), decimals)
    return int(v), int(st)


# -- Python side ---------------------------------------------------------------

def _word_tables(assets: list[Asset], symbols: list[Symbol]):
    """The kernel's name tables (T_ACTION .. T_SYMBOL) flattened into one uint8 array.

    Returns (names, lens, table_start, table_len, lists): table t is rows table_start[t] .. table_start[t] +
    table_len[t] - 1 of names, lens gives each row's length; lists are the Python names.
    """
    lists = [
        [R.CMD_NAMES[k] for k in sorted(R.CMD_NAMES)],
        [R.SIDE_NAMES[k] for k in sorted(R.SIDE_NAMES)],
        [R.TYPE_NAMES[k] for k in sorted(R.TYPE_NAMES)],
        [R.TIF_NAMES[k] for k in sorted(R.TIF_NAMES)],
        [a.name for a in assets],
        [s.name for s in symbols],
    ]
    assert sorted(R.CMD_NAMES) == list(range(1, 7)), "the action table must follow CMD_* codes"
    assert [sorted(d) for d in (R.SIDE_NAMES, R.TYPE_NAMES, R.TIF_NAMES)] == [[0, 1]] * 3
    raw = [name.encode() for names in lists for name in names]
    names = np.zeros((max(len(raw), 1), max([len(b) for b in raw] + [1])), np.uint8)
    lens = np.zeros(names.shape[0], np.int64)
    for k, b in enumerate(raw):
        names[k, :len(b)] = np.frombuffer(b, np.uint8)
        lens[k] = len(b)
    table_len = np.array([len(names_) for names_ in lists], np.int64)
    table_start = np.concatenate([[0], np.cumsum(table_len)[:-1]]).astype(np.int64)
    return names, lens, table_start, table_len, lists


def _read_bytes(path: pathlib.Path) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"{path}: missing file")
    return np.fromfile(path, dtype=np.uint8)


def _header(buf: np.ndarray, path: pathlib.Path) -> tuple[tuple[str, ...], int]:
    """The header's column names and the byte offset of the first data row."""
    start = 3 if buf[:3].tobytes() == b"\xef\xbb\xbf" else 0
    nl = np.flatnonzero(buf[start:start + 4096] == 10)
    end = start + int(nl[0]) if nl.size else min(buf.shape[0], start + 4096)
    text = buf[start:end].tobytes().decode("utf-8", "replace").rstrip("\r")
    if not text:
        raise DatasetError(f"{path}:1: missing header row")
    return tuple(text.split(",")), end + 1


def _text(buf, s, e) -> str:
    return buf[s:e].tobytes().decode("utf-8", "replace")


def _error(path, buf, err, header, names, lists) -> DatasetError:
    """Turn a kernel error record into DatasetError('file:line: reason').

    header: the file's columns; names: the kernel's logical column numbers to names.
    """
    code, line, col, s, e, aux = (int(x) for x in err)
    text = _text(buf, s, e)
    name = names[col] if col < len(names) else f"column {col + 1}"
    if code == E_COLUMNS:
        reason = f"wrong column count: expected {len(header)} ({','.join(header)}), found {aux}"
    elif code == E_BLANK_LINE:
        reason = "empty line"
    elif code == E_EMPTY:
        reason = f"missing field: {name} is empty"
    elif code == E_INT:
        reason = f"non-numeric {name} {text!r}: expected a non-negative integer"
    elif code == E_INT_OVERFLOW:
        reason = f"{name} {text!r} overflows: not below 2**63"
    elif code == E_DECIMAL:
        try:
            money.parse_decimal(text, aux, name)
        except ValueError as exc:
            reason = str(exc)
        else:   # the two parsers disagree: a bug, never a data problem
            raise AssertionError(f"numba parser refused {text!r} ({aux} decimals), money accepts it")
    elif code == E_NOT_EMPTY:
        reason = f"{name} must be empty for a {R.CMD_NAMES[aux]} row, got {text!r}"
    else:
        table = {E_ACTION: 0, E_SIDE: 1, E_TYPE: 2, E_TIF: 3, E_ASSET: 4, E_SYMBOL: 5}[code]
        what = {E_ACTION: "action", E_SIDE: "side", E_TYPE: "order_type", E_TIF: "tif",
                E_ASSET: "asset", E_SYMBOL: "symbol"}[code]
        known = "|".join(lists[table]) or "none configured"
        reason = f"unknown {what} {text!r} in column {name} (expected {known})"
    return DatasetError(f"{path}:{line}: {reason}")


def _csv_rows(path: pathlib.Path, expected: tuple[str, ...], optional: tuple[str, ...] = ()):
    """Rows of a small config CSV as dicts, with their line numbers; checks the header."""
    if not path.is_file():
        raise DatasetError(f"{path}: missing file")
    text = path.read_bytes().decode("utf-8-sig", "replace")
    lines = [line.rstrip("\r") for line in text.split("\n")]
    if not lines or not lines[0].strip():
        raise DatasetError(f"{path}:1: missing header row")
    header = tuple(lines[0].split(","))
    if header not in (expected, expected + optional):
        want = ",".join(expected) + (f"[,{','.join(optional)}]" if optional else "")
        raise DatasetError(f"{path}:1: unexpected header {lines[0]!r}, expected {want}")
    out = []
    for lineno, line in enumerate(lines[1:], 2):
        if not line:
            if any(rest for rest in lines[lineno - 1:]):
                raise DatasetError(f"{path}:{lineno}: empty line")
            break
        fields = next(csv.reader(io.StringIO(line)))
        if len(fields) != len(header):
            raise DatasetError(f"{path}:{lineno}: wrong column count: expected {len(header)} "
                               f"({','.join(header)}), found {len(fields)}")
        out.append((lineno, dict(zip(header, fields))))
    return out


def _int_field(path, lineno, row, col, lo=0, hi=_INT64_MAX, default=None) -> int:
    text = row.get(col, "")
    if text == "" and default is not None:
        return default
    if text == "":
        raise DatasetError(f"{path}:{lineno}: missing field: {col} is empty")
    neg = text.startswith("-") and lo < 0
    digits = text[1:] if neg else text
    if not digits or not all(c in "0123456789" for c in digits):
        raise DatasetError(f"{path}:{lineno}: non-numeric {col} {text!r}: expected an integer")
    value = -int(digits) if neg else int(digits)
    if not lo <= value <= hi:
        raise DatasetError(f"{path}:{lineno}: {col} {text!r} out of range {lo}..{hi}")
    return value


def _check_new(where: str, kind: str, id_: int, name: str, seen_ids: set, seen_names: set) -> None:
    """An asset's or symbol's name is a word, and neither its id nor its name was seen before."""
    if not name or not all(c.isascii() and (c.isalnum() or c == "_") for c in name):
        raise DatasetError(f"{where}: {kind} name {name!r} must be letters, digits or '_'")
    if id_ in seen_ids:
        raise DatasetError(f"{where}: duplicate {kind}_id {id_}")
    if name in seen_names:
        raise DatasetError(f"{where}: duplicate {kind} {name!r}")
    seen_ids.add(id_)
    seen_names.add(name)


def load_assets(path: pathlib.Path) -> list[Asset]:
    assets, seen_ids, seen_names = [], set(), set()
    for lineno, row in _csv_rows(path, ASSETS):
        aid = _int_field(path, lineno, row, "asset_id", 0, MAX_ID)
        name = row["asset"]
        dec = _int_field(path, lineno, row, "decimals", 0, money.MAX_DECIMALS)
        disp = _int_field(path, lineno, row, "display_decimals", 0, money.MAX_DECIMALS)
        _check_new(f"{path}:{lineno}", "asset", aid, name, seen_ids, seen_names)
        assets.append(Asset(id=aid, name=name, decimals=dec, display_decimals=disp))
    return assets


def load_symbols(path: pathlib.Path, assets: list[Asset]) -> list[Symbol]:
    by_id = {a.id: a for a in assets}
    stp_names = set(R.STP_NAMES.values())
    symbols, seen_ids, seen_names = [], set(), set()
    for lineno, row in _csv_rows(path, SYMBOLS, SYMBOL_FEES):
        sid = _int_field(path, lineno, row, "symbol_id", 0, MAX_ID)
        name = row["symbol"]
        base = _int_field(path, lineno, row, "base_asset_id", 0, MAX_ID)
        quote = _int_field(path, lineno, row, "quote_asset_id", 0, MAX_ID)
        price_decimals = _int_field(path, lineno, row, "price_decimal", 0, money.MAX_DECIMALS)
        display_decimals = _int_field(path, lineno, row, "price_display_decimal", 0, money.MAX_DECIMALS)
        maker = _int_field(path, lineno, row, "maker_fee_ppm", 0, MAX_FEE_PPM, default=0)
        taker = _int_field(path, lineno, row, "taker_fee_ppm", 0, MAX_FEE_PPM, default=0)
        fee_user = _int_field(path, lineno, row, "fee_user_id", -1, _INT64_MAX, default=-1)
        stp = row.get("stp", "") or "none"
        where = f"{path}:{lineno}"
        _check_new(where, "symbol", sid, name, seen_ids, seen_names)
        for col, aid in (("base_asset_id", base), ("quote_asset_id", quote)):
            if aid not in by_id:
                raise DatasetError(f"{where}: unknown asset {aid} in {col}")
        if base == quote:
            raise DatasetError(f"{where}: base_asset_id and quote_asset_id are both {base}")
        # cost() scales by 10**(qd - pd - bd); keep that factor within int64.
        shift = price_decimals + by_id[base].decimals - by_id[quote].decimals
        if not -18 <= shift <= 18:
            raise DatasetError(f"{where}: price_decimal + base decimals - quote decimals = {shift}, "
                               "must be within -18..18")
        if stp not in stp_names:
            raise DatasetError(f"{where}: unknown stp {stp!r} (expected {'|'.join(R.STP_NAMES.values())})")
        if (maker or taker) and fee_user < 0:
            raise DatasetError(f"{where}: fee rates need a fee_user_id >= 0")
        symbols.append(Symbol(id=sid, name=name, base_asset_id=base, quote_asset_id=quote,
                              price_decimals=price_decimals, price_display_decimals=display_decimals,
                              maker_fee_ppm=maker, taker_fee_ppm=taker, fee_user_id=fee_user, stp=stp))
    if not symbols:
        raise DatasetError(f"{path}: no symbols configured")
    return symbols


def load_deposits(path: pathlib.Path, assets: list[Asset]) -> np.ndarray:
    buf = _read_bytes(path)
    columns, pos = _header(buf, path)
    if columns != BALANCES:
        raise DatasetError(f"{path}:1: unexpected header {','.join(columns)!r}, "
                           f"expected {','.join(BALANCES)}")
    cap = int(np.count_nonzero(buf == 10)) + 1
    table = np.zeros((cap, len(BALANCES)), np.int64)
    err = np.zeros(6, np.int64)
    n = _parse_int_table(buf, pos, table, err)
    if err[0]:
        raise _error(path, buf, err, BALANCES, BALANCES, [])
    table = table[:n]
    known = np.array(sorted(a.id for a in assets), np.int64)
    bad = np.flatnonzero(~np.isin(table[:, 1], known))
    if bad.size:
        k = int(bad[0])
        raise DatasetError(f"{path}:{k + 2}: unknown asset {int(table[k, 1])} in column asset_id")
    deposits = np.zeros(n, R.CMD)
    deposits["user_id"] = table[:, 0]
    deposits["symbol"] = table[:, 1]
    deposits["amount"] = table[:, 2]
    deposits["kind"] = R.CMD_DEPOSIT
    deposits["ref"] = -1
    return deposits


def load_orders(path: pathlib.Path, assets: list[Asset], symbols: list[Symbol]) -> np.ndarray:
    buf = _read_bytes(path)
    columns, pos = _header(buf, path)
    if columns not in (ORDERS_5, ORDERS_6, ORDERS_EXT):
        raise DatasetError(f"{path}:1: unexpected header {','.join(columns)!r}, expected "
                           f"{','.join(ORDERS_5)} or {','.join(ORDERS_6)} or {','.join(ORDERS_EXT)}")
    colmap = np.array([columns.index(c) if c in columns else -1 for c in ORDERS_EXT], np.int64)
    by_id = {a.id: a for a in assets}
    names, lens, table_start, table_len, lists = _word_tables(assets, symbols)
    sym_ids = np.array([s.id for s in symbols], np.int64)
    symbol_price_decimals = np.array([s.price_decimals for s in symbols], np.int64)
    symbol_base_decimals = np.array([by_id[s.base_asset_id].decimals for s in symbols], np.int64)
    symbol_quote_decimals = np.array([by_id[s.quote_asset_id].decimals for s in symbols], np.int64)
    asset_ids = np.array([a.id for a in assets] or [0], np.int64)
    asset_dec = np.array([a.decimals for a in assets] or [0], np.int64)
    cap = int(np.count_nonzero(buf == 10)) + 1
    cmds = np.zeros(cap, R.CMD)
    err = np.zeros(6, np.int64)
    n = _parse_orders(buf, pos, len(columns), colmap, names, lens, table_start, table_len, sym_ids, symbol_price_decimals, symbol_base_decimals,
                      symbol_quote_decimals, asset_ids, asset_dec, cmds["order_id"], cmds["user_id"],
                      cmds["price"], cmds["qty"], cmds["amount"], cmds["kind"], cmds["side"],
                      cmds["order_type"], cmds["tif"], cmds["symbol"], err,
                      np.zeros((6, 16), np.int64))
    if err[0]:
        raise _error(path, buf, err, columns, ORDERS_EXT, lists)
    cmds = cmds[:n]
    cmds["ref"] = -1
    return cmds


def load_dataset(path: str | pathlib.Path) -> Dataset:
    """Load a dataset directory; raises DatasetError('file:line: reason') on bad input."""
    path = pathlib.Path(path)
    if not path.is_dir():
        raise DatasetError(f"{path}: not a dataset directory")
    assets = load_assets(path / "assets_config.csv")
    symbols = load_symbols(path / "symbols_config.csv", assets)
    deposits = load_deposits(path / "balances_init.csv", assets)
    commands = load_orders(path / "orders.csv", assets, symbols)
    return Dataset(path=path, assets=assets, symbols=symbols, deposits=deposits,
                   commands=commands, rows=int(commands.shape[0]))
