"""Which rings join which processes, and how each end is opened.

    ingestion ──cmd──▶ UBSCore ──order──▶ ME
                        ▲  │ ◀──settle──┘│
                        │  ├─u_oev──┐    ├─m_oev─┐
                        │  ├─u_bev──┼────┼─m_tev─┼─▶ settlement
                        │  └─s_bev──┘    │       │

Every segment is named after the instance (ipc/shm.py); the supervisor
creates them before it starts the processes, which inherit the mappings.
Each consumer process has one semaphore, posted by the producers of all its
input rings when it has said it sleeps.
"""
from __future__ import annotations

import numpy as np

from ..config import Pipeline
from ..engine import records as R
from ..ipc import shm, wait
from ..ipc.ring import Ring
from .control import Control
from .ports import Inbox, Outbox

# name: (record, producer, consumer)
RINGS = {
    "cmd": (R.CMD, "ingestion", "ubscore"),
    "order": (R.CMD, "ubscore", "matching"),
    "settle": (R.SETTLE, "matching", "ubscore"),
    "u_oev": (R.ORDER_EVENT, "ubscore", "settlement"),
    "u_bev": (R.BALANCE_EVENT, "ubscore", "settlement"),
    "s_bev": (R.BALANCE_EVENT, "ubscore", "settlement"),
    "m_oev": (R.ORDER_EVENT, "matching", "settlement"),
    "m_tev": (R.TRADE_EVENT, "matching", "settlement"),
}
SPINNERS = 3    # processes that poll their inputs: UBSCore, the ME, settlement


class Wiring:
    """The rings and the control block of one pipeline instance."""

    def __init__(self, instance: str, cfg: Pipeline, strategy: str, rings: dict, control: Control):
        self.instance, self.cfg, self.strategy = instance, cfg, strategy
        self.rings, self.control = rings, control

    @classmethod
    def create(cls, cfg: Pipeline, instance: str | None = None) -> "Wiring":
        instance = instance or shm.instance_name()
        strategy = wait.choose(cfg.wait, SPINNERS)
        rings = {}
        try:
            for name, (dtype, _, _) in RINGS.items():
                rings[name] = Ring.create(shm.part_name(instance, name), dtype, cfg.ring_capacity)
            control = Control.create(shm.part_name(instance, "control"))
        except BaseException:
            for r in rings.values():
                r.close()
            raise
        return cls(instance, cfg, strategy, rings, control)

    def sem_name(self, consumer: str) -> str:
        return "/" + shm.part_name(self.instance, consumer) + "-sem"

    def inbox(self, name: str) -> Inbox:
        return Inbox(self.rings[name], self.cfg.batch)

    def outbox(self, name: str, buf: np.ndarray, counts: np.ndarray, index: int) -> Outbox:
        consumer = RINGS[name][2]
        ring = self.rings[name]
        return Outbox(ring, buf, counts, index, wait.Waker(ring, self.strategy, self.sem_name(consumer)))

    def waiter(self, process: str) -> wait.Waiter:
        inputs = [self.rings[n] for n, (_, _, c) in RINGS.items() if c == process]
        return wait.Waiter(inputs, self.strategy, self.cfg.spin_polls, sem_name=self.sem_name(process))

    def close(self) -> None:
        """Unmap (and, in the creator, unlink) every segment and semaphore."""
        for r in self.rings.values():
            r.close()
        self.control.close()
        for process in ("ubscore", "matching", "settlement"):
            wait.unlink_semaphore("", self.sem_name(process))
