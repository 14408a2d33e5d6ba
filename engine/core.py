"""The single-process (ST) core: UBSCore and the ME in one loop, no rings.

`run_commands` takes a batch of commands and runs each through the per-seq
driver (engine/driver.py: UBSCore sequences, checks and locks it, the ME
matches it, UBSCore applies the ME's settle messages). It returns when the
batch is done or an output buffer runs low; the caller flushes the events
and calls again (a taker paused mid-match resumes first). The multi-process
pipeline and settlement's replica run the very same entry points and room
checks, cut at the process boundary.

`Core` owns the state and buffers and offers the Python API of docs/ENGINE.md.
Invariants between calls: every settle message the ME emitted has been
applied (out.settles is empty), and at most one taker is paused.
"""
from __future__ import annotations

from typing import Callable, get_args

import numpy as np
from .jit import kernel

from ..config import Asset, Capacity, DustPolicy, StpMode, Symbol
from . import matching, records as R
from .book import ME_LAST_TRADE_ID, ME_PAUSED_TAKER, book_levels, new_me_state
from .driver import resume_seq, run_seq, seq_room
from .hashmap import map_get
from .emit import N_BALANCE_EVENTS, N_ORDER_EVENTS, N_TRADE_EVENTS, new_out
from .events import BALANCE_ROW, OPEN_ORDER_ROW, Events, concat
from .ubscore import (PREFETCH_NEXT, UBS_DUST_POLICY, UBS_LAST_SEQ, UBS_USERS, names_order, new_ubs_state,
                      prefetch_command, user_slot)


@kernel(inline="always")
def _prefetch_ahead(ubs, me, cmds, i, stop):
    """Software pipeline over the batch (see ubscore.PREFETCH_*): UBSCore's
    and the ME's records of the commands a few places ahead."""
    ref = prefetch_command(ubs, cmds, i, stop)
    if ref >= 0:
        matching.prefetch_order(me, ref)
    if i + PREFETCH_NEXT < stop and names_order(cmds[i + PREFETCH_NEXT]):
        ref = map_get(ubs.ref_by_order_id, cmds[i + PREFETCH_NEXT].order_id)
        if ref >= 0:
            matching.prefetch_links(me, ref)


@kernel()
def run_commands(ubs, me, out, cmds, start, stop):
    """Run cmds[start:stop], giving each the next seq. Returns the index of
    the first command not run (== stop when all ran); stops early when an
    output buffer runs low or a taker paused."""
    if resume_seq(ubs, me, out):
        return start
    i = start
    while i < stop:
        _prefetch_ahead(ubs, me, cmds, i, stop)
        if not seq_room(out):
            return i
        ubs.counters[UBS_LAST_SEQ] += 1
        paused = run_seq(ubs, me, out, cmds[i], ubs.counters[UBS_LAST_SEQ])
        i += 1
        if paused:
            return i
    return i


@kernel()
def _open_orders(me, lock_of_ref, out, levels):
    """Resting orders in book order into `out`; returns how many.
    `levels` is a scratch array as long as the level table."""
    n = 0
    for book in range(len(me.book_bucket_count)):
        n_lv = book_levels(me, book, levels)
        for j in range(n_lv):
            slot = me.levels[levels[j]].head
            while slot >= 0:
                o = me.orders[slot]
                r = out[n]
                r.symbol = o.symbol
                r.side = o.side
                r.price = o.price
                r.order_id = o.order_id
                r.user_id = o.user_id
                r.qty = o.qty
                r.filled = o.filled
                r.lock = lock_of_ref[o.ref]
                n += 1
                slot = o.next
    return n


# The config's names (checked when a Symbol is made, or a WAL or the command
# line gives a dust policy) are exactly those the records have codes for.
assert set(get_args(StpMode)) == set(R.STP_CODES) and set(get_args(DustPolicy)) == set(R.DUST_CODES)


def symbol_table(assets: list[Asset], symbols: list[Symbol], capacity: Capacity) -> np.ndarray:
    """SYMBOL records indexed by symbol id, from the config."""
    by_id = {a.id: a for a in assets}
    n = max([s.id for s in symbols], default=-1) + 1
    if n > capacity.max_symbols:
        raise ValueError(f"symbol id {n - 1} exceeds max_symbols {capacity.max_symbols}")
    syms = np.zeros(max(n, 1), R.SYMBOL)
    for s in symbols:
        for role, aid in (("base", s.base_asset_id), ("quote", s.quote_asset_id)):
            if aid not in by_id:
                raise ValueError(f"symbol {s.name}: {role} asset {aid} is not configured")
        for name in ("maker_fee_ppm", "taker_fee_ppm"):
            v = getattr(s, name)
            if not 0 <= v <= 1_000_000:
                raise ValueError(f"symbol {s.name}: {name} {v} is not within 0..1000000")
        if (s.maker_fee_ppm or s.taker_fee_ppm) and s.fee_user_id < 0:
            raise ValueError(f"symbol {s.name}: fees need a fee_user_id")
        e = by_id[s.quote_asset_id].decimals - s.price_decimals - by_id[s.base_asset_id].decimals
        r = syms[s.id]
        r["cost_num"] = 10 ** max(0, e)
        r["cost_den"] = 10 ** max(0, -e)
        r["maker_fee_ppm"] = s.maker_fee_ppm
        r["taker_fee_ppm"] = s.taker_fee_ppm
        r["fee_user_id"] = s.fee_user_id
        r["fee_user_slot"] = -1
        r["base_asset"] = s.base_asset_id
        r["quote_asset"] = s.quote_asset_id
        r["stp"] = R.STP_CODES[s.stp]
        r["active"] = 1
    return syms


def prefault(a: np.ndarray) -> None:
    """Rewrite one byte per page with its own value: every page gets mapped."""
    flat = a.reshape(-1).view(np.uint8)
    flat[::4096] = flat[::4096].copy()


def _assets_ok(assets: list[Asset], capacity: Capacity) -> np.ndarray:
    max_asset = max([a.id for a in assets], default=0)
    if max_asset >= capacity.max_assets:
        raise ValueError(f"asset id {max_asset} exceeds max_assets {capacity.max_assets}")
    ok = np.zeros(max_asset + 1, np.uint8)
    for a in assets:
        ok[a.id] = 1
    return ok


def build_ubs(assets: list[Asset], symbols: list[Symbol], dust: int, capacity: Capacity):
    """UBSCore's state from the config (fee accounts get their user slots);
    dust: a code of R.DUST_CODES."""
    syms = symbol_table(assets, symbols, capacity)
    ubs = new_ubs_state(syms, _assets_ok(assets, capacity), capacity.max_users, capacity.max_orders, dust)
    for s in symbols:
        if s.fee_user_id >= 0:
            slot = user_slot(ubs, s.fee_user_id, True)
            if slot < 0:
                raise ValueError("no user slot left for fee accounts")
            syms[s.id]["fee_user_slot"] = slot
    return ubs


def build_me(assets: list[Asset], symbols: list[Symbol], capacity: Capacity):
    """The ME's state from the config."""
    return new_me_state(symbol_table(assets, symbols, capacity), capacity.max_orders, capacity.max_buckets)


def named_arrays(prefix: str, state) -> dict[str, np.ndarray]:
    """A state's arrays by name, `<prefix>.<field>` (how snapshots name them)."""
    return {f"{prefix}.{k}": v for k, v in state._asdict().items()}


def flush_events(out, sink: Callable[[Events], None]) -> bool:
    """Hand the events waiting in `out` to sink (views, valid during the
    call) and empty it; True if there were any."""
    if not (out.n[N_ORDER_EVENTS] or out.n[N_TRADE_EVENTS] or out.n[N_BALANCE_EVENTS]):
        return False
    sink(Events(out.order_events[:out.n[N_ORDER_EVENTS]], out.trade_events[:out.n[N_TRADE_EVENTS]],
                out.balance_events[:out.n[N_BALANCE_EVENTS]]))
    out.n[:] = 0
    return True


def prefault_all(*states) -> None:
    """Touch every page of every array now, so that no command pays a page fault later."""
    for state in states:
        for a in state:
            prefault(a)


def balance_rows(ubs, asset_ids: np.ndarray) -> np.ndarray:
    """BALANCE_ROWs of the used (user slot, asset) cells of UBSCore state `ubs`
    (ST's, or settlement's replica), by user id, then asset id."""
    user_ids = ubs.user_ids[:int(ubs.counters[UBS_USERS])]
    bal = ubs.balances[:len(user_ids)][:, asset_ids]                # (user slot, configured asset)
    order = np.argsort(user_ids, kind="stable")
    bal = bal[order]
    used = bal["version"] > 0
    slot_rows, asset_cols = np.nonzero(used)                 # row-major: user, then asset
    rows = np.zeros(len(slot_rows), BALANCE_ROW)
    rows["user_id"] = user_ids[order][slot_rows]
    rows["asset"] = asset_ids[asset_cols]
    for f in ("avail", "frozen", "version"):
        rows[f] = bal[f][used]
    return rows


def open_order_rows(me, lock_of_ref: np.ndarray) -> np.ndarray:
    """OPEN_ORDER_ROWs of the ME's book; `lock` from UBSCore's lock of each ref."""
    out = np.zeros(len(me.orders), OPEN_ORDER_ROW)
    n = _open_orders(me, lock_of_ref, out, np.empty(len(me.levels), np.int64))
    return out[:n]


def best_of(me, symbol: int) -> tuple[int, int, int, int]:
    """(best_bid, best_ask, bid_levels, ask_levels) of a symbol; 0 when empty."""
    res = []
    levels = np.empty(len(me.levels), np.int64)
    for side in (R.SIDE_BUY, R.SIDE_SELL):
        n = book_levels(me, symbol * 2 + side, levels)
        res.append((int(me.levels[levels[0]]["price"]) if n else 0, n))
    return res[0][0], res[1][0], res[0][1], res[1][1]


class Core:
    """The ST core: state, output buffers, and the batch loop around run_commands."""

    def __init__(self, assets: list[Asset], symbols: list[Symbol], dust: int = R.DUST_RELEASE,
                 capacity: Capacity = Capacity(), prefault: bool = True):
        """prefault False: pages are mapped as the core first touches them
        (recovery, where the time to a running pipeline counts)."""
        self.assets = sorted(assets, key=lambda a: a.id)
        self.symbols = list(symbols)
        self.ubs = build_ubs(assets, symbols, dust, capacity)
        self.me = build_me(assets, symbols, capacity)
        self.out = new_out()
        self.fresh = True               # nothing run or restored yet
        if prefault:
            prefault_all(self.ubs, self.me, self.out)

    # -- running -------------------------------------------------------------

    def run(self, cmds: np.ndarray, sink: Callable[[Events], None]) -> None:
        """Run every command; sink receives views of each flushed chunk of events
        (valid only during the call)."""
        if cmds.dtype != R.CMD:
            raise TypeError(f"commands must have dtype records.CMD, not {cmds.dtype}")
        out = self.out
        self.fresh = False
        i, n = 0, len(cmds)
        while True:
            i = run_commands(self.ubs, self.me, out, cmds, i, n)
            flush_events(out, sink)
            if i == n and self.me.counters[ME_PAUSED_TAKER] < 0:
                return

    def apply(self, cmds: np.ndarray) -> Events:
        chunks: list[Events] = []
        self.run(cmds, lambda ev: chunks.append(Events(ev.orders.copy(), ev.trades.copy(),
                                                       ev.balances.copy())))
        return concat(chunks)

    # -- state views ----------------------------------------------------------

    def balances(self) -> np.ndarray:
        return balance_rows(self.ubs, np.array([a.id for a in self.assets], np.int64))

    def open_orders(self) -> np.ndarray:
        return open_order_rows(self.me, self.ubs.locks["lock"])

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every state array by name, `u.<field>` and `me.<field>`: what a snapshot holds.
        Only between runs: no taker may be paused mid-match."""
        if self.me.counters[ME_PAUSED_TAKER] >= 0:
            raise RuntimeError("a taker is paused mid-match; finish the run before a snapshot")
        return {**named_arrays("u", self.ubs), **named_arrays("me", self.me)}

    def restore(self, changes: dict) -> None:
        """Load a snapshot into this core, which must be freshly built with the
        same configuration and capacity: `changes` maps each state array's
        name to (shape, idx, rows), the rows that differ from the initial
        state (storage/snapshot.py). A mismatch raises ValueError naming it."""
        if not self.fresh:
            raise ValueError("a snapshot is restored into a freshly built core only")
        mine = self.state_arrays()
        if set(changes) != set(mine):
            raise ValueError(f"snapshot arrays {sorted(set(changes) ^ set(mine))} do not match this core's")
        for k, (shape, idx, rows) in changes.items():
            if tuple(shape) != mine[k].shape or rows.dtype != mine[k].dtype:
                raise ValueError(f"snapshot {k} is {tuple(shape)} {rows.dtype}; this core has "
                                 f"{mine[k].shape} {mine[k].dtype} (another capacity?)")
        for k, (shape, idx, rows) in changes.items():
            a = mine[k].reshape(1) if mine[k].ndim == 0 else mine[k]
            a[idx] = rows
        self.fresh = False

    def counters(self) -> dict:
        return {"next_seq": int(self.ubs.counters[UBS_LAST_SEQ]) + 1,
                "next_trade_id": int(self.me.counters[ME_LAST_TRADE_ID]) + 1}

    def check_invariants(self) -> None:
        """TRADING_RULES section 7 on the whole state (the run-time debug flag):
        conservation per asset, nothing negative, frozen == open locks under
        `release` (>= under `keep`), no book crossed. Raises AssertionError."""
        ubs = self.ubs
        n_users = int(ubs.counters[UBS_USERS])
        bal = ubs.balances[:n_users]
        total = bal["avail"].sum(axis=0, dtype=np.int64) + bal["frozen"].sum(axis=0, dtype=np.int64)
        bad = np.flatnonzero(total != ubs.asset_total)
        assert bad.size == 0, f"conservation broken for asset {bad[0]}: {total[bad[0]]} != {ubs.asset_total[bad[0]]}"
        for field in ("avail", "frozen"):
            neg = np.argwhere(bal[field] < 0)
            assert neg.size == 0, f"negative {field} at user slot/asset {neg[0].tolist()}"
        live = ubs.locks[ubs.locks["in_use"] == 1]
        locked = np.zeros(bal.shape, np.int64)
        np.add.at(locked, (live["user_slot"], live["lock_asset"]), live["lock"])
        if ubs.counters[UBS_DUST_POLICY] == R.DUST_RELEASE:
            diff = np.argwhere(bal["frozen"] != locked)
            assert diff.size == 0, f"frozen != open locks at user slot/asset {diff[0].tolist()}"
        else:
            diff = np.argwhere(bal["frozen"] < locked)
            assert diff.size == 0, f"frozen < open locks at user slot/asset {diff[0].tolist()}"
        for s in self.symbols:
            bid, ask, n_bid, n_ask = self.best(s.id)
            assert not (n_bid and n_ask and bid >= ask), f"{s.name} crossed: bid {bid} >= ask {ask}"

    def best(self, symbol: int) -> tuple[int, int, int, int]:
        """(best_bid, best_ask, bid_levels, ask_levels) of a symbol; 0 when empty."""
        return best_of(self.me, symbol)
