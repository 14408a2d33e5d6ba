"""A gateway worker's link to the pipeline: gateway/model.py's `Exchange`.

Commands go into the worker's own command ring into UBSCore, stamped with
the worker (`source`), a request number (`tag`) and their entry time; the
answer comes back on the worker's ack ring from settlement once the command
is durable, run, and in the order store. A thread sleeps on the ack ring's
semaphore and hands what arrives to the event loop, which resolves the
waiting requests. Reads go to the order store, which every answered command
is in already (read your writes).
"""
from __future__ import annotations

import asyncio
import struct
import threading
import time

import numpy as np

from ..config import Asset, Capacity, Symbol
from ..engine import records as R
from ..engine.core import symbol_table
from ..ipc import wait
from ..ipc.ring import ring_consume, ring_publish
from ..runtime.control import STOP
from ..runtime.topology import ack_ring, command_ring, push_ring
from ..storage.order_store import OrderRow, OrderStore, TradeRow, cid_hash
from . import model as M

_SIDES = {"BUY": R.SIDE_BUY, "SELL": R.SIDE_SELL}
_TYPES = {"LIMIT": R.TYPE_LIMIT, "MARKET": R.TYPE_MARKET}
_TIFS = {"GTC": R.TIF_GTC, "IOC": R.TIF_IOC}
# R.CMD as a struct: seq ts order_id user_id price qty amount (i8), ref (i4), symbol (u2), kind side
# order_type tif source reserved (u1), tag (u4), cid (i8)
_CMD_PACK = struct.Struct("<7qiH6BIq")
assert _CMD_PACK.size == R.CMD.itemsize and R.CMD.names[-2:] == ("tag", "cid")
SIDE_NAME = {v: k for k, v in _SIDES.items()}
TYPE_NAME = {v: k for k, v in _TYPES.items()}
TIF_NAME = {v: k for k, v in _TIFS.items()}
STATUS_NAME = {R.ST_ACCEPTED: M.NEW, R.ST_PARTIALLY_FILLED: M.PARTIALLY_FILLED, R.ST_FILLED: M.FILLED,
               R.ST_CANCELLED: M.CANCELED, R.ST_EXPIRED: M.EXPIRED, R.ST_REJECTED: M.REJECTED}


class Link:
    """gateway/model.py's Exchange over the rings of worker `index`."""

    def __init__(self, wiring, name: str, index: int, store: OrderStore, assets: list[Asset],
                 symbols: list[Symbol], ack_timeout_s: float, board=None, capacity: Capacity = Capacity()):
        """board: runtime/balance_board.BalanceBoard for the pre-check (None: none)."""
        self.wiring, self.name, self.source = wiring, name, index + 1
        self.assets, self.symbols, self.board = assets, symbols, board
        # Per symbol (base, quote, cost_num, cost_den) from the core's own table, as plain ints
        # (reading a numpy record per order cost ~6 us, these ~0.5 us).
        self.terms = {i: (int(r["base_asset"]), int(r["quote_asset"]), int(r["cost_num"]), int(r["cost_den"]))
                      for i, r in enumerate(symbol_table(assets, symbols, capacity)) if r["active"]}
        self.turned_away = 0
        self.store, self.timeout = store, ack_timeout_s
        self.ring = wiring.rings[command_ring(name)]
        self.waker = wiring.waker(self.ring.name)
        self.acks = wiring.rings[ack_ring(name)]
        self.pushes = wiring.rings[push_ring(name)]
        self.on_push = None         # called on the loop with each batch of PUSH records (services/gateway.py)
        # Metrics (runtime/metrics.py): an order's pre-check (none without a board), the wait for room
        # in the command ring, and each command's entry time to its answer here (the ack wait).
        self.metrics = wiring.metrics
        self.row_precheck = self.metrics.row("gateway.precheck", name) if board is not None else -1
        self.row_ring = self.metrics.row("gateway.ring", name)
        self.row_ack = self.metrics.row("gateway.ack", name)
        self.next_tag = 1
        self.pending: dict[int, asyncio.Future] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.running = False
        self.closed = False

    # -- lifecycle ----------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start taking answers (after the supervisor's go)."""
        self.loop, self.running = loop, True
        threading.Thread(target=self._take_acks, name=f"{self.name}-acks", daemon=True).start()

    def ready(self) -> bool:
        return self.running and not self.closed

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def close(self) -> None:
        """No more commands from this worker (a clean stop): UBSCore drains and ends."""
        if not self.closed:
            self.closed = True
            self.ring.close_producer()
            self.waker.post()

    @property
    def answered_all(self) -> bool:
        """Settlement closed the ack ring and everything on it is taken."""
        return self.acks.closed and self.acks.available() == 0 and not self.pending

    def _take_acks(self) -> None:
        """Answers and pushes, off the loop (settlement wakes this one semaphore for both)."""
        buf, pbuf = np.zeros(1024, R.ACK), np.zeros(4096, R.PUSH)
        words, pwords = self.acks.words_of(buf), self.pushes.words_of(pbuf)
        waiter = wait.Waiter([self.acks, self.pushes], "block", spin_polls=1, block_timeout_s=0.05,
                             sem_name=self.wiring.sem_name(self.name))
        while True:
            n = ring_consume(self.acks.ctrl, self.acks.slots, words, len(buf))
            if n:
                self.loop.call_soon_threadsafe(self._resolve, buf[:n].copy())
            m = ring_consume(self.pushes.ctrl, self.pushes.slots, pwords, len(pbuf))
            if m and self.on_push is not None:
                self.loop.call_soon_threadsafe(self.on_push, pbuf[:m].copy())
            if n or m:
                waiter.busy()
            elif self.acks.closed and self.acks.available() == 0:
                return
            else:
                waiter.idle()

    def _resolve(self, acks: np.ndarray) -> None:
        for a in acks:
            fut = self.pending.pop(int(a["tag"]), None)
            if fut is not None and not fut.done():
                fut.set_result(a)

    # -- commands -----------------------------------------------------------------

    async def _command(self, kind: int, user_id: int, **fields) -> M.Result:
        """Send a command; its result once acknowledged, accepted at the command's entry time."""
        ack, ts = await self._submit(kind, user_id, **fields)
        return self._result(ack, ts, user_id)

    async def _submit(self, kind: int, user_id: int, order_id=0, price=0, qty=0, amount=0, symbol=0, side=0,
                      order_type=0, tif=0, cid=0) -> tuple[np.void, int]:
        """The command's ACK, and its entry time (CMD.ts, ns)."""
        if self.closed or self.wiring.control.get(STOP):
            raise ConnectionAbortedError("the exchange is stopping")
        tag = self.next_tag
        self.next_tag = (tag + 1) & 0xFFFFFFFF or 1
        # One pack into the record's layout (field by field costs ~20 us); its own bytes: another
        # request may run while this one waits for room.
        ts = time.time_ns()
        words = np.frombuffer(_CMD_PACK.pack(0, ts, order_id, user_id, price, qty, amount, -1, symbol,
                                             kind, side, order_type, tif, self.source, 0, tag, cid),
                              np.uint64).reshape(1, -1)
        fut = self.loop.create_future()
        self.pending[tag] = fut
        deadline = time.monotonic() + self.timeout
        full_at = 0                             # perf_counter_ns when the ring was first found full (0: never)
        while not ring_publish(self.ring.ctrl, self.ring.slots, words, 1):
            full_at = full_at or time.perf_counter_ns()
            if time.monotonic() > deadline:     # UBSCore is not taking: nothing was sent
                self.pending.pop(tag, None)
                raise TimeoutError("the exchange is not taking commands")
            await asyncio.sleep(0.0005)
        self.waker.published()
        self.metrics.value(self.row_ring, time.perf_counter_ns() - full_at if full_at else 0)
        try:
            ack = await asyncio.wait_for(asyncio.shield(fut), self.timeout)
            self.metrics.value(self.row_ack, time.time_ns() - ts)
            return ack, ts
        except asyncio.TimeoutError:
            raise TimeoutError(f"not acknowledged within {self.timeout:g} s; the command may still complete") \
                from None

    def _result(self, a, at_ns: int, user_id: int) -> M.Result:
        status, reason = int(a["status"]), int(a["reason"])
        fills = ()
        if a["filled_qty"] and status != R.ST_REJECTED:
            fills = tuple(self._fill(t) for t in reversed(
                self.store.trades(user_id, None, 1000, order_id=int(a["order_id"]), seq=int(a["seq"]))))
        return M.Result(int(a["seq"]), int(a["order_id"]), STATUS_NAME.get(status, M.NEW),
                        R.REASON_TEXT.get(reason, ""), reason, at_ns // 1_000_000, int(a["filled_qty"]),
                        fills, int(a["avail"]), int(a["frozen"]))

    def _unfunded(self, user_id, symbol_id, side, order_type, price, qty, quote_qty) -> bool:
        """The pre-check: the board says the user cannot lock what this order needs."""
        if self.board is None or symbol_id not in self.terms:
            return False                    # the core decides (and names) what is wrong
        base, quote, num, den = self.terms[symbol_id]
        if side == "SELL":
            asset, need = base, qty
        elif order_type == "MARKET":
            asset, need = quote, quote_qty
        else:                               # engine/arith.cost: floor(p * q / den) * num
            asset, need = quote, price * qty // den * num
        return self.board.avail(user_id, asset) < need

    async def place(self, user_id, symbol_id, side, order_type, time_in_force, price, qty, quote_qty, cid):
        t = time.perf_counter_ns()
        unfunded = self._unfunded(user_id, symbol_id, side, order_type, price, qty, quote_qty)
        self.metrics.value(self.row_precheck, time.perf_counter_ns() - t)
        if unfunded:
            self.turned_away += 1
            return M.Result(0, 0, M.REJECTED, R.REASON_TEXT[R.R_INSUFFICIENT_BALANCE], R.R_INSUFFICIENT_BALANCE,
                            self.now_ms())
        h = 0
        if cid:
            h = cid_hash(cid)
            self.store.add_cid(user_id, h, cid)
        return await self._command(R.CMD_PLACE, user_id, symbol=symbol_id, side=_SIDES[side],
                                   order_type=_TYPES[order_type], tif=_TIFS[time_in_force], price=price, qty=qty,
                                   amount=quote_qty, cid=h)

    async def cancel(self, user_id, order_id):
        return await self._command(R.CMD_CANCEL, user_id, order_id=order_id)

    async def reduce(self, user_id, order_id, reduce_qty):
        return await self._command(R.CMD_REDUCE, user_id, order_id=order_id, qty=reduce_qty)

    async def move(self, user_id, order_id, new_price):
        return await self._command(R.CMD_MOVE, user_id, order_id=order_id, price=new_price)

    async def deposit(self, user_id, asset_id, amount):
        return await self._command(R.CMD_DEPOSIT, user_id, symbol=asset_id, amount=amount)

    async def withdraw(self, user_id, asset_id, amount):
        return await self._command(R.CMD_WITHDRAW, user_id, symbol=asset_id, amount=amount)

    # -- reads --------------------------------------------------------------------

    def _order(self, r: OrderRow) -> M.Order:
        filled_quote = 0
        if r.filled_qty:
            filled_quote = sum(t.quote_qty for t in self.store.trades(r.user_id, None, 100000, order_id=r.order_id))
        return M.Order(r.order_id, r.user_id, r.symbol_id, SIDE_NAME[r.side], TYPE_NAME[r.order_type],
                       TIF_NAME[r.tif], r.price, r.qty, r.quote_qty, r.filled_qty, filled_quote,
                       STATUS_NAME.get(r.status, M.NEW), self.store.cid_text(r.user_id, r.cid_hash),
                       r.created_ns // 1_000_000, r.updated_ns // 1_000_000, r.seq)

    def _fill(self, t: TradeRow) -> M.Fill:
        return M.Fill(t.trade_id, t.price, t.qty, t.quote_qty, t.fee, t.fee_asset_id, "TAKER" if t.taker else "MAKER")

    def order(self, user_id, order_id):
        r = self.store.order(order_id)
        return self._order(r) if r is not None and r.user_id == user_id else None

    def order_by_cid(self, user_id, cid):
        r = self.store.order_by_cid(user_id, cid_hash(cid))
        return self._order(r) if r is not None else None

    def orders(self, user_id, symbol_id, open_only, limit):
        return [self._order(r) for r in self.store.orders(user_id, symbol_id, open_only, limit)]

    def trades(self, user_id, symbol_id, limit):
        return [M.Trade(t.trade_id, t.order_id, t.user_id, t.symbol_id, SIDE_NAME[t.side], t.price, t.qty,
                        t.quote_qty, t.fee, t.fee_asset_id, "TAKER" if t.taker else "MAKER",
                        t.created_ns // 1_000_000, t.seq)
                for t in self.store.trades(user_id, symbol_id, limit)]

    def balances(self, user_id):
        held = self.store.balances(user_id)
        return [M.Balance(a.id, *held.get(a.id, (0, 0))) for a in self.assets]

