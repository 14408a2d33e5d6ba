"""Every record layout, field by field: offset, type and size against a table
written out here, so a reordered, retyped or resized field fails, and so does
a record without a table entry.

The tables copy the byte diagrams next to each dtype (engine/records.py, the
WAL record in engine/wal.py's docstring); BALANCE, LEVEL, SYMBOL and the
control block's PROC_STATS (runtime/control.py) have no diagram, so their
table is the diagram. Changing a layout means changing its diagram and its
table here in the same commit: rings, the WAL and the event files on disk
all depend on these bytes.
"""
import inspect
import re

import numpy as np
import pytest

from xinfinity.engine import records as R
from xinfinity.engine import wal as W
from xinfinity.runtime import control as C

# name -> (itemsize, [(field, byte offset, type, count)]); count 0: a scalar.
LAYOUTS = {
    "CMD": (80, [
        ("seq", 0, "<i8", 0), ("ts", 8, "<i8", 0), ("order_id", 16, "<i8", 0),
        ("user_id", 24, "<i8", 0), ("price", 32, "<i8", 0), ("qty", 40, "<i8", 0),
        ("amount", 48, "<i8", 0), ("ref", 56, "<i4", 0), ("symbol", 60, "<u2", 0),
        ("kind", 62, "|u1", 0), ("side", 63, "|u1", 0), ("order_type", 64, "|u1", 0),
        ("tif", 65, "|u1", 0), ("source", 66, "|u1", 0), ("reserved", 67, "|u1", 1),
        ("tag", 68, "<u4", 0), ("cid", 72, "<i8", 0),
    ]),
    "ACK": (48, [
        ("seq", 0, "<i8", 0), ("order_id", 8, "<i8", 0), ("filled_qty", 16, "<i8", 0),
        ("avail", 24, "<i8", 0), ("frozen", 32, "<i8", 0), ("tag", 40, "<u4", 0),
        ("kind", 44, "|u1", 0), ("status", 45, "|u1", 0), ("reason", 46, "|u1", 0),
        ("reserved", 47, "|u1", 1),
    ]),
    "ORDER_EVENT": (88, [
        ("seq", 0, "<i8", 0), ("order_id", 8, "<i8", 0), ("user_id", 16, "<i8", 0),
        ("price", 24, "<i8", 0), ("qty", 32, "<i8", 0), ("filled_qty", 40, "<i8", 0),
        ("avg_price", 48, "<i8", 0), ("last_qty", 56, "<i8", 0), ("last_price", 64, "<i8", 0),
        ("trade_id", 72, "<i8", 0), ("symbol", 80, "<u2", 0), ("kind", 82, "|u1", 0),
        ("status", 83, "|u1", 0), ("reason", 84, "|u1", 0), ("side", 85, "|u1", 0),
        ("order_type", 86, "|u1", 0), ("tif", 87, "|u1", 0),
    ]),
    "TRADE_EVENT": (96, [
        ("trade_id", 0, "<i8", 0), ("seq", 8, "<i8", 0), ("price", 16, "<i8", 0),
        ("qty", 24, "<i8", 0), ("quote_qty", 32, "<i8", 0), ("buyer_order_id", 40, "<i8", 0),
        ("seller_order_id", 48, "<i8", 0), ("buyer_user_id", 56, "<i8", 0),
        ("seller_user_id", 64, "<i8", 0), ("buyer_fee", 72, "<i8", 0), ("seller_fee", 80, "<i8", 0),
        ("symbol", 88, "<u2", 0), ("taker_side", 90, "|u1", 0), ("reserved", 91, "|u1", 5),
    ]),
    "BALANCE_EVENT": (64, [
        ("seq", 0, "<i8", 0), ("trade_id", 8, "<i8", 0), ("user_id", 16, "<i8", 0),
        ("amount", 24, "<i8", 0), ("avail", 32, "<i8", 0), ("frozen", 40, "<i8", 0),
        ("version", 48, "<i8", 0), ("asset", 56, "<u2", 0), ("op", 58, "|u1", 0),
        ("reason", 59, "|u1", 0), ("reserved", 60, "|u1", 4),
    ]),
    "PUSH": (112, [
        ("ts", 0, "<i8", 0), ("kind", 8, "|u1", 0), ("reserved", 9, "|u1", 7), ("body", 16, "|u1", 96),
    ]),
    "SETTLE": (72, [
        ("seq", 0, "<i8", 0), ("trade_id", 8, "<i8", 0), ("price", 16, "<i8", 0),
        ("qty", 24, "<i8", 0), ("quote_qty", 32, "<i8", 0), ("buyer_fee", 40, "<i8", 0),
        ("seller_fee", 48, "<i8", 0), ("buyer_ref", 56, "<i4", 0), ("seller_ref", 60, "<i4", 0),
        ("kind", 64, "|u1", 0), ("taker_side", 65, "|u1", 0), ("symbol", 66, "<u2", 0),
        ("reserved", 68, "|u1", 4),
    ]),
    "BALANCE": (24, [
        ("avail", 0, "<i8", 0), ("frozen", 8, "<i8", 0), ("version", 16, "<i8", 0),
    ]),
    "ORDER_LOCK": (64, [
        ("order_id", 0, "<i8", 0), ("user_id", 8, "<i8", 0), ("price", 16, "<i8", 0),
        ("remaining", 24, "<i8", 0), ("lock", 32, "<i8", 0), ("user_slot", 40, "<i4", 0),
        ("symbol", 44, "<u2", 0), ("lock_asset", 46, "<u2", 0), ("side", 48, "|u1", 0),
        ("order_type", 49, "|u1", 0), ("in_use", 50, "|u1", 0), ("reserved", 51, "|u1", 5),
        ("cid_key", 56, "<i8", 0),
    ]),
    "ORDER_SLOT": (96, [
        ("order_id", 0, "<i8", 0), ("user_id", 8, "<i8", 0), ("seq", 16, "<i8", 0),
        ("price", 24, "<i8", 0), ("qty", 32, "<i8", 0), ("filled", 40, "<i8", 0),
        ("budget", 48, "<i8", 0), ("notional_hi", 56, "<u8", 0), ("notional_lo", 64, "<u8", 0),
        ("ref", 72, "<i4", 0), ("next", 76, "<i4", 0), ("prev", 80, "<i4", 0),
        ("level", 84, "<i4", 0), ("symbol", 88, "<u2", 0), ("side", 90, "|u1", 0),
        ("order_type", 91, "|u1", 0), ("tif", 92, "|u1", 0), ("stp_expired", 93, "|u1", 0),
        ("in_use", 94, "|u1", 0), ("reserved", 95, "|u1", 1),
    ]),
    "LEVEL": (40, [
        ("price", 0, "<i8", 0), ("total_qty", 8, "<i8", 0), ("head", 16, "<i4", 0),
        ("tail", 20, "<i4", 0), ("count", 24, "<i4", 0), ("book", 28, "<i4", 0),
        ("bucket", 32, "<i4", 0), ("reserved", 36, "|u1", 4),
    ]),
    "SYMBOL": (56, [
        ("cost_num", 0, "<i8", 0), ("cost_den", 8, "<i8", 0), ("maker_fee_ppm", 16, "<i8", 0),
        ("taker_fee_ppm", 24, "<i8", 0), ("fee_user_id", 32, "<i8", 0),
        ("fee_user_slot", 40, "<i4", 0), ("base_asset", 44, "<u2", 0), ("quote_asset", 46, "<u2", 0),
        ("stp", 48, "|u1", 0), ("active", 49, "|u1", 0), ("reserved", 50, "|u1", 6),
    ]),
    "WAL_RECORD": (104, [
        ("length", 0, "<u4", 0), ("type", 4, "<u2", 0), ("version", 6, "|u1", 0),
        ("reserved", 7, "|u1", 1), ("seq", 8, "<i8", 0), ("check", 16, "<u8", 0),
        ("payload", 24, "<u8", 10),
    ]),
    "PROC_STATS": (128, [
        ("heartbeat", 0, "<i8", 0), ("state", 8, "<i8", 0), ("pid", 16, "<i8", 0),
        ("work_ns", 24, "<i8", 0), ("steps", 32, "<i8", 0), ("sleeps", 40, "<i8", 0),
        ("stalls", 48, "<i8", 0), ("stall_ns", 56, "<i8", 0), ("stall_behind", 64, "<i8", 0),
        ("cpu_ns", 72, "<i8", 0), ("reserved", 80, "<i8", 6),
    ]),
}

# The modules that define record layouts: every structured dtype they hold
# must have a table above.
MODULES = (R, W, C)


def _records():
    """name -> dtype for every structured dtype defined in MODULES."""
    found = {}
    for module in MODULES:
        for name, value in vars(module).items():
            if isinstance(value, np.dtype) and value.names:
                assert name not in found, f"{name} is defined in two modules"
                found[name] = value
    return found


def _layout(dtype):
    """A dtype as (itemsize, [(field, offset, type, count)]), in offset order."""
    fields = []
    for name in dtype.names:
        t, offset = dtype.fields[name][:2]
        if t.shape:
            assert len(t.shape) == 1, f"{name}: only one-dimensional array fields are drawn"
            fields.append((name, offset, t.base.str, t.shape[0]))
        else:
            fields.append((name, offset, t.str, 0))
    return dtype.itemsize, sorted(fields, key=lambda f: f[1])


def test_every_record_layout_has_a_table_and_every_table_a_record():
    assert sorted(_records()) == sorted(LAYOUTS)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_each_table_is_packed_with_no_gap_or_overlap(name):
    """The tables themselves: fields follow each other and end at the itemsize,
    each on a multiple of its own size (the natural alignment numba loads want)."""
    itemsize, fields = LAYOUTS[name]
    at = 0
    for field, offset, type_, count in fields:
        size = np.dtype(type_).itemsize
        assert offset == at, f"{name}.{field} at {offset}, the field before it ends at {at}"
        assert offset % size == 0, f"{name}.{field} at {offset} is not {size}-byte aligned"
        at += size * max(count, 1)
    assert at == itemsize, f"{name}'s fields end at {at}, its itemsize is {itemsize}"
    assert itemsize % 8 == 0, f"{name} is not a whole number of 64-bit words (records.words)"


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_each_record_has_the_offsets_types_and_size_of_its_table(name):
    got = _layout(_records()[name])
    assert got == LAYOUTS[name]


# "56 ref(i4)", "66..79 reserved": an offset (or a range) and a field name; the
# offset must not be the tail of a word ("i4 each") or of a range ("..79").
_DRAWN = re.compile(r"(?<![\w.])(\d+)(?:\.\.\d+)?\s+([a-z_]+)")


def _diagrams():
    """name -> [(offset, field)] as drawn: the comment lines starting with an
    offset above each `NAME = _dtype(` in engine/records.py, and the lines
    starting with one in engine/wal.py's docstring (its one record)."""
    drawn = {}
    lines = inspect.getsource(R).splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"([A-Z_]+) = _dtype\(", line)
        if not m:
            continue
        j, found = i - 1, []
        while j >= 0 and lines[j].startswith("#"):
            if re.match(r"#\s*\d", lines[j]):
                found = [(int(o), f) for o, f in _DRAWN.findall(lines[j])] + found
            j -= 1
        if found:
            drawn[m.group(1)] = found
    drawn["WAL_RECORD"] = [(int(o), f) for line in W.__doc__.splitlines() if re.match(r"\s+\d", line)
                           for o, f in _DRAWN.findall(line)[:1]]
    return drawn


def test_the_byte_diagrams_draw_every_field_where_the_record_has_it():
    drawn = _diagrams()
    # The records without a diagram are drawn by their table above only.
    assert sorted(drawn) == sorted(set(LAYOUTS) - {"BALANCE", "LEVEL", "SYMBOL", "PROC_STATS"})
    for name, fields in drawn.items():
        assert fields == [(offset, field) for field, offset, _, _ in LAYOUTS[name][1]], name


def test_a_reordered_field_is_caught():
    """The comparison above sees order, not only size: two fields swapped
    keep the itemsize but not the table."""
    swapped = R._dtype([("ts", "i8"), ("seq", "i8")] + [
        (f, t, c) if c else (f, t) for f, _, t, c in LAYOUTS["CMD"][1][2:]], 80)
    assert swapped.itemsize == LAYOUTS["CMD"][0]
    assert _layout(swapped) != LAYOUTS["CMD"]
