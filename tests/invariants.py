"""Checks that hold for any implementation of the core's Python API.

Works on anything with `apply(cmds) -> Events`, `balances()`, `open_orders()`
and `counters()` (docs/ENGINE.md, "Python API"): the plain-Python Reference
today, the numba Core as soon as it exists.

- `Flows` accumulates deposits - withdrawals per asset from balance events.
- `check_invariants` asserts spec/TRADING_RULES.md section 7 on the state:
  conservation per asset, frozen == locks of open orders under `release`
  (frozen >= those locks under `keep`), nothing negative, no book crossed, and
  the documented order of `balances()` and `open_orders()`.
- `check_balance_events` asserts that each balance event bumps its slot's
  version by exactly one (a refusal by none) and that `balances()` agrees with
  the last event of every slot.
- `assert_same_events` / `assert_same_state` compare two implementations
  field by field and fail with the first difference spelled out.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from xinfinity.engine import records as R


class Flows:
    """Deposits minus withdrawals per asset, from the balance events seen."""

    def __init__(self):
        self.net: dict[int, int] = defaultdict(int)

    def observe(self, events) -> None:
        for b in events.balances.tolist():
            seq, trade_id, user, amount, avail, frozen, version, asset, op, reason = b[:10]
            if reason == R.R_NONE and op == R.OP_DEPOSIT:
                self.net[asset] += amount
            elif reason == R.R_NONE and op == R.OP_WITHDRAW:
                self.net[asset] -= amount


def _rows(array: np.ndarray) -> list[dict]:
    names = array.dtype.names
    return [dict(zip(names, row)) for row in array.tolist()]


def check_invariants(engine, symbols, dust: int, flows: Flows) -> None:
    """Assert TRADING_RULES section 7 on `engine`'s current state.

    symbols: the config's Symbol list (to know each order's lock asset).
    """
    terms = {s.id: (s.base_asset_id, s.quote_asset_id) for s in symbols}
    balances = _rows(engine.balances())
    orders = _rows(engine.open_orders())

    # balances(): by user id then asset, each slot once, nothing negative.
    keys = [(b["user_id"], b["asset"]) for b in balances]
    assert keys == sorted(set(keys)), "balances() not ordered by (user, asset) or has duplicates"
    for b in balances:
        assert b["avail"] >= 0 and b["frozen"] >= 0, f"negative balance {b}"
        assert b["version"] >= 1, f"slot without a balance event {b}"

    # Conservation: per asset, sum of avail+frozen over all slots (fee accounts
    # included) == deposits - withdrawals.
    totals: dict[int, int] = defaultdict(int)
    for b in balances:
        totals[b["asset"]] += b["avail"] + b["frozen"]
    for asset in set(totals) | set(flows.net):
        assert totals[asset] == flows.net[asset], (
            f"asset {asset}: avail+frozen over all slots {totals[asset]} "
            f"!= deposits - withdrawals {flows.net[asset]}")

    # Open orders: sane fields, book order, never crossed.
    locks: dict[tuple[int, int], int] = defaultdict(int)
    for o in orders:
        assert o["price"] > 0 and o["qty"] > 0 and 0 <= o["filled"] < o["qty"], f"bad order {o}"
        assert o["lock"] >= 0, f"negative lock {o}"
        base, quote = terms[o["symbol"]]
        locks[(o["user_id"], quote if o["side"] == R.SIDE_BUY else base)] += o["lock"]
    ids = [o["order_id"] for o in orders]
    assert len(ids) == len(set(ids)), "an order id is open twice"
    for sym in {o["symbol"] for o in orders}:
        book = [o for o in orders if o["symbol"] == sym]
        bids = [o["price"] for o in book if o["side"] == R.SIDE_BUY]
        asks = [o["price"] for o in book if o["side"] == R.SIDE_SELL]
        assert [o["side"] for o in book] == sorted(o["side"] for o in book), \
            f"symbol {sym}: asks listed before bids"
        assert bids == sorted(bids, reverse=True), f"symbol {sym}: bids not best first"
        assert asks == sorted(asks), f"symbol {sym}: asks not best first"
        assert not (bids and asks and bids[0] >= asks[0]), \
            f"symbol {sym}: book crossed, best bid {bids[0]} >= best ask {asks[0]}"
    syms = [o["symbol"] for o in orders]
    assert syms == sorted(syms), "open_orders() not ordered by symbol"

    # Frozen vs the locks of open orders.
    frozen = {(b["user_id"], b["asset"]): b["frozen"] for b in balances}
    for key in set(frozen) | set(locks):
        f, lk = frozen.get(key, 0), locks.get(key, 0)
        if dust == R.DUST_RELEASE:
            assert f == lk, f"user {key[0]} asset {key[1]}: frozen {f} != locks of open orders {lk}"
        else:
            assert f >= lk, f"user {key[0]} asset {key[1]}: frozen {f} < locks of open orders {lk}"


def check_balance_events(engine, events, versions: dict) -> None:
    """Each applied balance event bumps its slot's version by one; refusals change nothing.

    versions: (user, asset) -> (avail, frozen, version), carried across calls.
    """
    for b in events.balances.tolist():
        seq, trade_id, user, amount, avail, frozen, version, asset, op, reason = b[:10]
        before = versions.get((user, asset), (0, 0, 0))
        assert op in R.OP_NAMES, f"unknown op in {b}"
        if reason != R.R_NONE:
            assert op in (R.OP_DEPOSIT, R.OP_WITHDRAW), f"refused event of op {op}: {b}"
            assert (avail, frozen, version) == before, \
                f"refused event does not show the current slot {before}: {b}"
            continue
        assert amount >= 0, f"negative amount {b}"
        assert version == before[2] + 1, f"version of {user}/{asset} went {before[2]} -> {version}"
        d_avail, d_frozen = {
            R.OP_DEPOSIT: (amount, 0), R.OP_WITHDRAW: (-amount, 0), R.OP_LOCK: (-amount, amount),
            R.OP_UNLOCK: (amount, -amount), R.OP_SPEND: (0, -amount), R.OP_CREDIT: (amount, 0),
            R.OP_FEE: (amount, 0)}[op]
        assert (avail, frozen) == (before[0] + d_avail, before[1] + d_frozen), \
            f"event does not follow from {before}: {b}"
        versions[(user, asset)] = (avail, frozen, version)
    state = {(r["user_id"], r["asset"]): (r["avail"], r["frozen"], r["version"])
             for r in _rows(engine.balances())}
    assert state == versions, "balances() disagrees with the balance events"


# -- comparing two implementations -------------------------------------------

def diff_records(name: str, ours: np.ndarray, theirs: np.ndarray,
                 skip: tuple[str, ...] = ()) -> str | None:
    """The first difference between two record arrays, in words; None if equal.

    Fields are compared by name and value (not dtype), `skip` names excepted.
    """
    if not skip and ours.dtype == theirs.dtype and ours.tobytes() == theirs.tobytes():
        return None     # the common case; padding aside, equal bytes are equal records
    a_names = [n for n in ours.dtype.names if n not in skip]
    b_names = [n for n in theirs.dtype.names if n not in skip]
    if a_names != b_names:
        return f"{name}: fields differ: {a_names} != {b_names}"
    if len(ours) == len(theirs) and all(np.array_equal(_column(ours, f), _column(theirs, f))
                                        for f in a_names):
        return None     # the common case, vectorised; the scan below names the difference
    for i in range(min(len(ours), len(theirs))):
        for field in a_names:
            x, y = ours[i][field], theirs[i][field]
            if ours.dtype[field].kind == "V" or theirs.dtype[field].kind == "V":
                same = np.asarray(x).tobytes() == np.asarray(y).tobytes()
            else:
                same = int(x) == int(y)
            if not same:
                return (f"{name}[{i}].{field}: {x!r} != {y!r}\n"
                        f"  left:  {_render(ours[i])}\n  right: {_render(theirs[i])}")
    if len(ours) != len(theirs):
        longer, which = (ours, "left") if len(ours) > len(theirs) else (theirs, "right")
        extra = "\n".join(f"  {_render(r)}" for r in longer[min(len(ours), len(theirs)):][:5])
        return f"{name}: {len(ours)} != {len(theirs)} records; extra on the {which}:\n{extra}"
    return None


def _column(array: np.ndarray, field: str) -> np.ndarray:
    """A field as a plain array (void bytes as uint8) for a vectorised comparison."""
    column = array[field]
    if column.dtype.kind == "V":
        column = np.ascontiguousarray(column).view(np.uint8)
    return column


def _render(row) -> str:
    parts = []
    for field in row.dtype.names:
        if row.dtype[field].kind == "V":
            continue
        value = row[field]
        text = int(value)
        if field == "status":
            text = R.STATUS_NAMES.get(text, text)
        elif field == "reason":
            text = R.REASON_TEXT.get(text, text) or 0
        elif field == "op":
            text = R.OP_NAMES.get(text, text)
        elif field == "kind":
            text = R.CMD_NAMES.get(text, text)
        parts.append(f"{field}={text}")
    return " ".join(parts)


def assert_same_events(ours, theirs, context: str = "") -> None:
    for name in ("orders", "trades", "balances"):
        diff = diff_records(name, getattr(ours, name), getattr(theirs, name))
        assert diff is None, f"{context}{diff}"
        # reserved bytes must be zero on both sides
        for arr in (getattr(ours, name), getattr(theirs, name)):
            if "reserved" in arr.dtype.names and len(arr):
                raw = arr["reserved"].tobytes()
                assert raw == bytes(len(raw)), f"{context}{name}: reserved bytes not zero"


def assert_same_state(ours, theirs, context: str = "") -> None:
    for name in ("balances", "open_orders"):
        diff = diff_records(f"{name}()", getattr(ours, name)(), getattr(theirs, name)())
        assert diff is None, f"{context}{diff}"
    assert ours.counters() == theirs.counters(), \
        f"{context}counters(): {ours.counters()} != {theirs.counters()}"
