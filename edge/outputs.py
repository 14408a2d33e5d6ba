"""Writers (and checkers) of the pipeline's output files.

Files, formats and rules are those of docs/ENGINE.md "Outputs" and the golden
data (../shared/golden/README.md):

- ``t2_ledger.csv``          ``LedgerWriter``: one row per trade spend/credit balance event
- ``t2_balances_final.csv``  ``write_balances``
- ``t2_orderbook.csv``       ``write_orderbook``
- ``summary.txt``            ``write_summary`` / ``read_summary``
- ``events_*.bin``           ``EventWriter``: raw little-endian records, described
                             by ``events_format.txt``; ``read_events``, ``dump_csv``

All CSV output is ASCII with LF line endings, a header line and a trailing
newline, integers in plain decimal; edge/csv_format.py formats the rows.
Each file can be cut back after a crash to what is surely whole (`cut_events`,
`cut_ledger`), so that recovery appends without writing anything twice.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Mapping

import numpy as np
from numba import njit

from xinfinity.engine import records as R

from . import csv_format
from .csv_format import Layout

__all__ = [
    "LedgerWriter", "EventWriter", "read_events", "dump_csv", "write_balances",
    "write_orderbook", "write_summary", "read_summary", "cut_events", "cut_ledger",
    "LEDGER_FILE", "BALANCES_FILE", "ORDERBOOK_FILE", "SUMMARY_FILE", "GOLDEN_FILES",
    "EVENT_FILES", "EVENTS_FORMAT_FILE",
]


LEDGER_FILE = "t2_ledger.csv"
BALANCES_FILE = "t2_balances_final.csv"
ORDERBOOK_FILE = "t2_orderbook.csv"
SUMMARY_FILE = "summary.txt"
GOLDEN_FILES = (LEDGER_FILE, BALANCES_FILE, ORDERBOOK_FILE, SUMMARY_FILE)

LEDGER_HEADER = "trade_id,user_id,asset_id,op,delta,balance_after"
BALANCES_HEADER = "user_id,asset_id,avail,frozen,version"
ORDERBOOK_HEADER = "order_id,user_id,side,order_type,price,qty,filled_qty,status"

# event stream -> (file name, dtype)
EVENT_FILES = {
    "orders": ("events_order.bin", R.ORDER_EVENT),
    "trades": ("events_trade.bin", R.TRADE_EVENT),
    "balances": ("events_balance.bin", R.BALANCE_EVENT),
}
EVENTS_FORMAT_FILE = "events_format.txt"

# Names of the code fields of each event record, for events_format.txt and dump_csv.
EVENT_CODES = {
    "events_order.bin": {"kind": R.CMD_NAMES, "status": R.STATUS_NAMES,
                         "reason": R.REASON_TEXT, "side": R.SIDE_NAMES,
                         "order_type": R.TYPE_NAMES, "tif": R.TIF_NAMES},
    "events_trade.bin": {"taker_side": R.SIDE_NAMES},
    "events_balance.bin": {"op": R.OP_NAMES, "reason": R.REASON_TEXT},
}

_LEDGER = Layout(LEDGER_HEADER.split(","),
                  [None, None, None, {R.OP_SPEND: "debit", R.OP_CREDIT: "credit"}, None, None])
_BALANCES = Layout(BALANCES_HEADER.split(","), [None] * 5)
_ORDERBOOK = Layout(ORDERBOOK_HEADER.split(","),
                     [None, None, R.SIDE_NAMES, R.TYPE_NAMES, None, None, None,
                      {0: "NEW", 1: "PARTIALLY_FILLED"}])


# ---------------------------------------------------------------------------
# Golden CSV writers
# ---------------------------------------------------------------------------

@njit(cache=True)
def _after_whole_trade(trade_id, user_id, asset, after):
    """balance_after is the slot after the whole trade (as the Rust engine wrote
    it): within a run of rows of one trade, each row takes the value of the last
    row of that run on the same (user, asset). It differs from the row's own
    value only in a self-trade, where buyer and seller are the same slot."""
    n = len(after)
    start = 0
    while start < n:
        end = start + 1
        while end < n and trade_id[end] == trade_id[start]:
            end += 1
        for i in range(start, end):
            for j in range(end - 1, i, -1):
                if user_id[j] == user_id[i] and asset[j] == asset[i]:
                    after[i] = after[j]
                    break
        start = end


class LedgerWriter:
    """``t2_ledger.csv``: call ``write`` once per batch of balance events, then ``close``.

    One row per balance event with trade_id > 0 and op spend (``debit``) or
    credit (``credit``): trade_id, user_id, asset, op, amount, and the slot's
    avail + frozen after the trade's four spend/credit operations.
    Rows keep the events' order (the engine emits buyer spend, buyer credit,
    seller spend, seller credit per trade, in trade-id order).
    """

    def __init__(self, path, after_trade: int | None = None):
        """after_trade: resume the file (cut back by `cut_ledger`), writing only
        the rows of trades after that one (what a recovery re-emits is skipped)."""
        self.path = Path(path)
        self.after_trade = after_trade
        self._f = open(self.path, "ab" if after_trade is not None else "wb")
        if after_trade is None:
            self._f.write(_LEDGER.header)
        self._fmt = _LEDGER.formatter()
        self.rows = 0

    def write(self, balance_events: np.ndarray) -> int:
        """Append the ledger rows of these events; return how many rows were written.

        The events of one trade must not be split across calls (the core flushes
        between commands, never inside a trade's settlement). The engine emits
        per trade: buyer spend, buyer credit, seller spend, seller credit.
        """
        e = balance_events
        keep = (e["trade_id"] > (self.after_trade or 0)) & ((e["op"] == R.OP_SPEND) | (e["op"] == R.OP_CREDIT))
        if not keep.all():
            e = e[keep]
        n = len(e)
        if n == 0:
            return 0
        after = e["avail"] + e["frozen"]
        _after_whole_trade(e["trade_id"], e["user_id"], e["asset"], after)
        cols = [e["trade_id"], e["user_id"], e["asset"], e["op"], e["amount"], after]
        written = 0
        for start in range(0, n, csv_format.ROWS_PER_CALL):
            written += self._fmt.write(self._f, [c[start:start + csv_format.ROWS_PER_CALL] for c in cols])
        self.rows += written
        return written

    def close(self):
        if not self._f.closed:
            self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_balances(path, rows: np.ndarray) -> None:
    """``t2_balances_final.csv`` from rows (fields user_id, asset, avail, frozen, version), in order."""
    with open(path, "wb") as f:
        f.write(_BALANCES.header)
        _BALANCES.formatter().write(
            f, [rows["user_id"], rows["asset"], rows["avail"], rows["frozen"], rows["version"]])


def write_orderbook(path, rows: np.ndarray) -> None:
    """``t2_orderbook.csv`` from resting orders in book order (fields symbol, side, price,
    order_id, user_id, qty, filled, lock; symbol and lock are not written).

    Every resting order is a limit order; status NEW if filled == 0 else PARTIALLY_FILLED.
    """
    with open(path, "wb") as f:
        f.write(_ORDERBOOK.header)
        fmt = _ORDERBOOK.formatter()
        for start in range(0, len(rows), csv_format.ROWS_PER_CALL):
            r = rows[start:start + csv_format.ROWS_PER_CALL]
            filled = r["filled"]
            fmt.write(f, [r["order_id"], r["user_id"], r["side"],
                          np.full(len(r), R.TYPE_LIMIT, dtype=np.int64), r["price"], r["qty"],
                          filled, (filled != 0).astype(np.int64)])


def write_summary(path, items: dict) -> None:
    """``summary.txt``: ``key=value`` lines in the order of ``items``."""
    lines = []
    for k, v in items.items():
        k, v = str(k), str(v)
        if "=" in k or "\n" in k or "\n" in v:
            raise ValueError(f"summary item {k!r}={v!r} cannot be written")
        lines.append(f"{k}={v}\n")
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write("".join(lines))


def read_summary(path) -> dict[str, str]:
    """Parse ``summary.txt`` (blank lines ignored; a line without ``=`` is an error)."""
    out = {}
    for no, line in enumerate(Path(path).read_text(encoding="ascii").splitlines(), 1):
        if not line.strip():
            continue
        k, sep, v = line.partition("=")
        if not sep:
            raise ValueError(f"{path}:{no}: not key=value: {line!r}")
        out[k] = v
    return out


# ---------------------------------------------------------------------------
# Raw event files
# ---------------------------------------------------------------------------

class EventWriter:
    """Append the engine's event arrays to ``events_order.bin``, ``events_trade.bin``
    and ``events_balance.bin`` in ``out_dir`` (raw records, in emission order);
    ``close`` writes ``events_format.txt``."""

    def __init__(self, out_dir, after: dict | None = None):
        """after: resume the files (cut back by `cut_events`), writing only the
        records of seqs after after[stream] (what a recovery re-emits is skipped)."""
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.after = after
        self._files = {}
        self.counts = {}
        for stream, (name, dt) in EVENT_FILES.items():
            path = self.out_dir / name
            self._files[stream] = open(path, "ab" if after is not None else "wb")
            self.counts[stream] = path.stat().st_size // dt.itemsize if after is not None else 0
        self._closed = False

    def write(self, events) -> None:
        """``events`` has attributes (or keys) orders, trades, balances, as ``Core.apply`` returns."""
        for stream, (name, dt) in EVENT_FILES.items():
            a = events[stream] if isinstance(events, Mapping) else getattr(events, stream)
            if a is None or len(a) == 0:
                continue
            if a.dtype != dt:
                raise TypeError(f"{stream}: dtype {a.dtype} is not the {name} record")
            if self.after is not None and a["seq"][0] <= self.after[stream]:
                a = a[a["seq"] > self.after[stream]]
            self._files[stream].write(np.ascontiguousarray(a).data)
            self.counts[stream] += len(a)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for f in self._files.values():
            f.close()
        (self.out_dir / EVENTS_FORMAT_FILE).write_text(events_format_text(self.counts),
                                                      encoding="ascii")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------
# Resuming the files after a crash
# ---------------------------------------------------------------------------
#
# Every stream is written in seq order (the ledger in trade-id order), so a file
# a crash interrupted holds a prefix of its stream, perhaps ending inside a
# record, and its last seq (trade) perhaps incomplete. Cutting that seq off
# leaves a prefix that is complete through the one before; a recovery replays
# from there and writes only what lies beyond (EventWriter, LedgerWriter
# `after`), so nothing is written twice and nothing is missed.

def _truncate(path: Path, size: int) -> None:
    if path.stat().st_size != size:
        with open(path, "r+b") as f:
            f.truncate(size)


def cut_events(path, dtype, through: int | None = None) -> int:
    """Cut an event file back to whole records: with `through`, those of seqs
    <= through; without, its last seq goes too (a crash may have cut it short).
    Returns the seq the file is now complete through."""
    path = Path(path)
    if not path.exists():
        path.touch()
    n = path.stat().st_size // dtype.itemsize
    seqs = np.memmap(path, dtype, "r", shape=(n,))["seq"] if n else np.zeros(0, np.int64)
    if through is None:
        through = int(seqs[-1]) - 1 if n else 0
    keep = int(np.searchsorted(seqs, through, side="right"))
    del seqs
    _truncate(path, keep * dtype.itemsize)
    return through


def _ledger_trade(line: bytes) -> int:
    return int(line.split(b",", 1)[0])


def cut_ledger(path, drop_last: bool = True) -> int:
    """Cut t2_ledger.csv back to whole lines; with drop_last, the rows of its
    last trade go too. Returns the trade id the file is now complete through."""
    path = Path(path)
    header = _LEDGER.header
    size = path.stat().st_size if path.exists() else 0
    if size < len(header):
        path.write_bytes(header)
        return 0
    start = max(len(header), size - (1 << 16))        # a trade's rows are far fewer than this
    with open(path, "rb") as f:
        f.seek(start)
        tail = f.read()
    first = tail.find(b"\n") + 1 if start > len(header) else 0    # the window may begin mid-line
    end = tail.rfind(b"\n") + 1
    lines = tail[first:end].split(b"\n")[:-1] if end > first else []
    pos = start + first + sum(len(x) + 1 for x in lines)
    last = _ledger_trade(lines[-1]) if lines else 0
    if drop_last:
        while lines and _ledger_trade(lines[-1]) == last:
            pos -= len(lines.pop()) + 1
        last = max(last - 1, 0)
    _truncate(path, pos)
    return last


def _type_name(t: np.dtype) -> str:
    if t.kind == "V":
        return f"{t.itemsize} bytes reserved (zero)"
    return f"{t.name} ({t.str})"


def events_format_text(counts: dict | None = None) -> str:
    """The text of ``events_format.txt``."""
    out = [
        "Event files of one run. Each .bin file is a sequence of fixed-size records,",
        "little-endian, no header and no padding between records, in emission order.",
        "Read one with numpy: np.fromfile(path, dtype) with the layout below",
        "(xinfinity.edge.outputs.read_events; render as CSV with dump_csv).",
        "Money fields are int64 in the smallest unit of their asset.",
        "",
    ]
    dtype_name = {"events_order.bin": "ORDER_EVENT", "events_trade.bin": "TRADE_EVENT",
                  "events_balance.bin": "BALANCE_EVENT"}
    for stream, (name, dt) in EVENT_FILES.items():
        out.append(f"== {name}")
        out.append(f"record: engine.records.{dtype_name[name]}, {dt.itemsize} bytes")
        if counts is not None:
            out.append(f"records: {counts.get(stream, 0)}")
        out.append("fields (offset name type):")
        for fname in dt.names:
            t, off = dt.fields[fname][:2]
            out.append(f"  {off:3d} {fname} {_type_name(t)}")
        codes = EVENT_CODES[name]
        if codes:
            out.append("codes:")
            for fname, names in codes.items():
                pairs = ", ".join(f"{k}={v!r}" if v == "" else f"{k}={v}"
                                  for k, v in sorted(names.items()))
                out.append(f"  {fname}: {pairs}")
        out.append("")
    return "\n".join(out)


def read_events(path, dtype) -> np.ndarray:
    """All records of an event file, as an array of ``dtype``."""
    size = os.path.getsize(path)
    if size % dtype.itemsize:
        raise ValueError(f"{path}: {size} bytes is not a whole number of "
                         f"{dtype.itemsize}-byte records")
    return np.fromfile(path, dtype=dtype)


def _event_layout(name: str):
    """(dtype, field names written, _Layout) of an event file, by its file name."""
    for fname, dt in EVENT_FILES.values():
        if fname == name:
            break
    else:
        raise ValueError(f"unknown event file {name!r}; expected one of "
                         f"{[v[0] for v in EVENT_FILES.values()]}")
    fields = [f for f in dt.names if dt.fields[f][0].kind != "V"]
    codes = EVENT_CODES[name]
    return dt, fields, Layout(fields, [codes.get(f) for f in fields])


def dump_csv(bin_path, out, dtype: np.dtype | None = None) -> int:
    """Render an event .bin file as CSV (header of field names, reserved bytes
    left out, codes by name; the reason of a non-rejection is an empty field).

    The record type comes from the file name (events_order.bin, ...) unless
    ``dtype`` is given. ``out`` is a path, or a binary or text stream
    (e.g. sys.stdout). Returns the number of records.
    """
    bin_path = Path(bin_path)
    dt, fields, lay = _event_layout(bin_path.name)
    if dtype is not None and np.dtype(dtype) != dt:
        raise ValueError(f"{bin_path.name} holds {dt}, not {dtype}")
    size = os.path.getsize(bin_path)
    if size % dt.itemsize:
        raise ValueError(f"{bin_path}: {size} bytes is not a whole number of "
                         f"{dt.itemsize}-byte records")
    n = size // dt.itemsize
    recs = np.memmap(bin_path, dtype=dt, mode="r") if n else np.empty(0, dtype=dt)

    close = False
    if isinstance(out, (str, os.PathLike)):
        f, close = open(out, "wb"), True
    elif isinstance(out, io.TextIOBase):
        out.flush()
        f = out.buffer
    else:
        f = out
    try:
        f.write(lay.header)
        fmt = lay.formatter()
        for start in range(0, n, csv_format.ROWS_PER_CALL):
            r = recs[start:start + csv_format.ROWS_PER_CALL]
            fmt.write(f, [r[name] for name in fields])
        f.flush()
    finally:
        if close:
            f.close()
        del recs
    return n
