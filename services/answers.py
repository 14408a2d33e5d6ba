"""Settlement when serving: the order store, then the gateways' answers and pushes.

The same replay as services/settlement.py (so the same events, in ST order,
for durable commands only), with a sink that keeps the step's events; after
each step they go to the order store (storage/order_store.py) in one
transaction, and only then does each gateway worker get the outcome of its
commands on its ack ring: a client that holds an answer finds that command
in every query (read your writes), and the command is in the WAL. Every
worker also gets every event of the step on its push ring (market data and
the private streams are built there, marketdata/ and gateway/ws/); a worker
that stops taking them has them held up to PUSH_BACKLOG records, then
dropped and replaced by one PUSH_GAP record, so settlement is never held up
by a worker.

Metrics (runtime/metrics.py): "store", each command's entry time to its
order-store transaction committed; "store.write", each step's transaction.
"""
from __future__ import annotations

import time

import numpy as np

from ..engine import records as R
from ..engine.events import Events
from ..engine.ubscore import UBS_USERS
from ..ipc import wait
from ..ipc.ring import ring_publish
from ..runtime.topology import ack_ring, push_ring
from ..storage.order_store import OrderStore
from .settlement import Settlement


class StepEvents:
    """A sink that keeps what one step's replay emits."""

    def __init__(self):
        self.parts: list[Events] = []

    def __call__(self, ev: Events) -> None:
        self.parts.append(Events(ev.orders.copy(), ev.trades.copy(), ev.balances.copy()))

    def take(self) -> Events:
        parts, self.parts = self.parts, []
        if not parts:
            return Events(np.zeros(0, R.ORDER_EVENT), np.zeros(0, R.TRADE_EVENT), np.zeros(0, R.BALANCE_EVENT))
        return Events(*(np.concatenate([getattr(p, f) for p in parts]) for f in Events._fields))


def acks_of(cmds: np.ndarray, ev: Events, rows: dict) -> np.ndarray:
    """The ACK of each command that came from a gateway (source > 0)."""
    mine = cmds[cmds["source"] > 0]
    acks = np.zeros(len(mine), R.ACK)
    if not len(mine):
        return acks
    refused = {}        # seq -> reason of the command's own rejection
    for seq, reason, status in zip(ev.orders["seq"].tolist(), ev.orders["reason"].tolist(),
                                   ev.orders["status"].tolist()):
        if status == R.ST_REJECTED:
            refused[seq] = reason
    money = {}          # seq -> (avail, frozen, reason) of a deposit's or withdrawal's event
    for seq, op, av, fr, reason in zip(ev.balances["seq"].tolist(), ev.balances["op"].tolist(),
                                       ev.balances["avail"].tolist(), ev.balances["frozen"].tolist(),
                                       ev.balances["reason"].tolist()):
        if op in (R.OP_DEPOSIT, R.OP_WITHDRAW):
            money[seq] = (av, fr, reason)
    for a, c in zip(acks, mine):
        seq, kind = int(c["seq"]), int(c["kind"])
        a["seq"], a["tag"], a["kind"], a["order_id"] = seq, c["tag"], kind, c["order_id"]
        if kind in (R.CMD_DEPOSIT, R.CMD_WITHDRAW):
            av, fr, reason = money.get(seq, (0, 0, R.R_INVALID_COMMAND))
            a["avail"], a["frozen"], a["reason"] = av, fr, reason
            a["status"] = R.ST_REJECTED if reason else R.ST_ACCEPTED
            continue
        reason = refused.get(seq, 0)
        row = rows.get(int(c["order_id"]))
        if reason:
            a["status"], a["reason"] = R.ST_REJECTED, reason
        elif row is not None:
            a["status"], a["filled_qty"] = row.status, row.filled_qty
        else:
            a["status"], a["reason"] = R.ST_REJECTED, R.R_INVALID_COMMAND    # no event: cannot happen
    return acks


PUSH_BACKLOG = 1 << 16     # push records held for a worker not taking them; then dropped for a gap


def push_records(cmds: np.ndarray, ev: Events) -> np.ndarray:
    """The step's events as PUSH records in seq order (within a seq: orders, trades, balances),
    each with its command's entry time."""
    parts, seqs = [], []
    first = int(cmds["seq"][0]) if len(cmds) else 0
    for kind, recs in ((R.PUSH_ORDER, ev.orders), (R.PUSH_TRADE, ev.trades), (R.PUSH_BALANCE, ev.balances)):
        if not len(recs):
            continue
        part = np.zeros(len(recs), R.PUSH)
        part["kind"] = kind
        part["ts"] = cmds["ts"][recs["seq"] - first]
        part["body"][:, :recs.itemsize] = recs.view(np.uint8).reshape(len(recs), recs.itemsize)
        parts.append(part)
        seqs.append(recs["seq"])
    if not parts:
        return np.zeros(0, R.PUSH)
    out = np.concatenate(parts)
    return out[np.argsort(np.concatenate(seqs), kind="stable")]


class Outbox:
    """What waits to go out on one ring from settlement to a gateway worker: published as far as
    the ring has room, the rest at the next step. With a backlog bound (pushes), past it what
    waits is dropped for one gap record (the worker starts again from the store); without one
    (answers), nothing is ever dropped."""

    def __init__(self, ring, waker, backlog: int | None = None, gap: np.ndarray | None = None):
        self.ring, self.waker, self.backlog, self.gap_record = ring, waker, backlog, gap
        self.held: list[np.ndarray] = []
        self.count = 0
        self.gap = False

    @property
    def waiting(self) -> bool:
        return bool(self.count or self.gap)

    def add(self, recs: np.ndarray) -> None:
        if not len(recs):
            return
        if self.backlog is not None and self.count + len(recs) > self.backlog:
            self.held, self.count, self.gap = [], 0, True
            return
        self.held.append(recs)
        self.count += len(recs)

    def send(self) -> None:
        ring, sent = self.ring, 0
        if self.gap:
            if not ring_publish(ring.ctrl, ring.slots, ring.words_of(self.gap_record), 1):
                return
            self.gap, sent = False, 1
        while self.held:
            u = self.held[0]
            n = ring_publish(ring.ctrl, ring.slots, ring.words_of(u), len(u))
            sent += n
            self.count -= n
            if n < len(u):
                self.held[0] = u[n:]
                break
            self.held.pop(0)
        if sent:
            self.waker.published()


class AnsweringSettlement(Settlement):
    def __init__(self, wiring, replica, store: OrderStore, board=None):
        """board: a runtime/balance_board.BalanceBoard to keep (the gateways' pre-check)."""
        self.events = StepEvents()
        super().__init__(wiring, replica, self.events)
        self.store, self.board = store, board
        self.row_store, self.row_write = self.metrics.row("store"), self.metrics.row("store.write")
        if board is not None:
            board.load(replica.user_ids, replica.balances, int(replica.counters[UBS_USERS]))
        # A gateway waits on a semaphore whatever the pipeline's strategy (it has no core to spin on);
        # one per worker, woken for its answers and its pushes alike.
        def outbox(name: str, sem: str, **kw) -> Outbox:
            ring = wiring.rings[name]
            return Outbox(ring, wait.Waker(ring, "block", wiring.sem_name(sem)), **kw)
        sources = wiring.topology.sources
        self.answers = [outbox(ack_ring(s), s) for s in sources]
        self.pushes = [outbox(push_ring(s), s, backlog=PUSH_BACKLOG, gap=np.zeros(1, R.PUSH)) for s in sources]

    def replayed(self, cmds: np.ndarray) -> None:
        ev = self.events.take()
        t = time.perf_counter_ns()
        rows = self.store.apply(ev, cmds)
        self.metrics.value(self.row_write, time.perf_counter_ns() - t)
        self.metrics.since(self.row_store, cmds["ts"])
        if self.board is not None:
            self.board.update(ev.balances)
        pushed = push_records(cmds, ev)
        for p in self.pushes:
            p.add(pushed)
        acks = acks_of(cmds, ev, rows)
        source = cmds["source"][cmds["source"] > 0]         # of each ack
        for k, box in enumerate(self.answers):
            box.add(acks[source == k + 1])
        self._send()

    def step(self) -> bool:
        work = super().step()
        if any(box.waiting for box in (*self.answers, *self.pushes)):
            self._send()
        return work

    def _send(self) -> None:
        for box in (*self.answers, *self.pushes):
            box.send()

    def ended(self) -> None:
        self._send()
        for box in self.answers:
            box.ring.close_producer()
            box.waker.post()
        for box in self.pushes:
            box.ring.close_producer()
        self.store.close()

