"""Which rings join which processes, and how each end is opened.

    ingestion ─cmd─▶ UBSCore ─order─▶ ME ─m_oev, m_tev, m_set─▶ settlement
                       ▲    │            │                          ▲
                       │    └───── log (every sequenced command) ───┘
                       └──── settle ─────┘

Every segment is named after the instance (ipc/shm.py); the supervisor
creates them before it starts the processes, which inherit the mappings.
Each consumer process has one semaphore, posted by the producers of all its
input rings when it has said it sleeps.
"""
from __future__ import annotations

from ..config import Pipeline
from ..engine import records as R
from ..ipc import shm, wait
from ..ipc.ring import Ring
from .control import Control

# name: (record, producer, consumer)
RINGS = {
    "cmd": (R.CMD, "ingestion", "ubscore"),
    "order": (R.CMD, "ubscore", "matching"),
    "settle": (R.SETTLE, "matching", "ubscore"),
    "log": (R.CMD, "ubscore", "settlement"),
    "m_set": (R.SETTLE, "matching", "settlement"),
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
        w = cls(instance, cfg, strategy, rings, control)
        w._warm()
        return w

    def _warm(self) -> None:
        """Load every ring, wait and control kernel here, before the fork, so
        that no process pays numba's cache load on its first record."""
        from ..ipc.ring import ring_available, ring_consume, ring_is_closed, ring_publish
        for ring in self.rings.values():
            empty = ring.slots[:0]
            ring_publish(ring.ctrl, ring.slots, empty, 0)
            ring_consume(ring.ctrl, ring.slots, empty, 0)
            ring_available(ring.ctrl)
            ring_is_closed(ring.ctrl)
            wait._should_wake(ring.ctrl)
            wait._announce_waiting(ring.ctrl)
            wait._clear_waiting(ring.ctrl)
        self.control.put(0, 0)
        self.control.get(0)

    def sem_name(self, consumer: str) -> str:
        return "/" + shm.part_name(self.instance, consumer) + "-sem"

    def waker(self, ring_name: str) -> wait.Waker:
        """The producer's side of the ring's consumer's wait strategy."""
        name = ring_name[len(self.instance) + 1:] if ring_name.startswith(self.instance + "-") else ring_name
        return wait.Waker(self.rings[name], self.strategy, self.sem_name(RINGS[name][2]))

    def waiter(self, process: str) -> wait.Waiter:
        """The process's side of its wait strategy; it sleeps at its first
        idle step (the services spin in their own loops before they say idle)."""
        inputs = [self.rings[n] for n, (_, _, c) in RINGS.items() if c == process]
        return wait.Waiter(inputs, self.strategy, spin_polls=1, sem_name=self.sem_name(process))

    def close(self) -> None:
        """Unmap (and, in the creator, unlink) every segment and semaphore."""
        for r in self.rings.values():
            r.close()
        self.control.close()
        for process in ("ubscore", "matching", "settlement"):
            wait.unlink_semaphore("", self.sem_name(process))
