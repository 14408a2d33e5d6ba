"""The rings and the control block of one pipeline instance, opened as the
topology (runtime/topology.py) declares them.

Every segment is named after the instance (ipc/shm.py); the supervisor
creates them before it starts the processes, which inherit the mappings.
Each consumer process has one semaphore, posted by the producers of all its
input rings when it has said it sleeps. The metrics segment
(runtime/metrics.py) outlives a restart: the supervisor creates it once and
hands it to each wiring; a wiring made without one records into private
arrays that nobody reads.
"""
from __future__ import annotations

from ..config import Pipeline
from ..ipc import shm, wait
from ..ipc.ring import Ring
from .control import Control
from .metrics import Metrics
from .metrics import warm as warm_metrics
from .topology import DATASET, Topology


class Wiring:
    """The rings and the control block of one pipeline instance."""

    def __init__(self, instance: str, cfg: Pipeline, topology: Topology, strategy: str, rings: dict,
                 control: Control, metrics: Metrics | None = None):
        self.instance, self.cfg, self.topology, self.strategy = instance, cfg, topology, strategy
        self.rings, self.control = rings, control
        self.metrics = metrics if metrics is not None else Metrics.private(topology)

    @classmethod
    def create(cls, cfg: Pipeline, instance: str | None = None, topology: Topology = DATASET,
               metrics: Metrics | None = None) -> "Wiring":
        instance = instance or shm.instance_name()
        strategy = wait.choose(cfg.wait, len(topology.pollers))
        rings = {}
        try:
            for spec in topology.rings:
                rings[spec.name] = Ring.create(shm.part_name(instance, spec.name), spec.record, cfg.ring_capacity)
            control = Control.create(shm.part_name(instance, "control"), topology.names)
        except BaseException:
            for r in rings.values():
                r.close()
            raise
        w = cls(instance, cfg, topology, strategy, rings, control, metrics)
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
        warm_metrics()

    def sem_name(self, consumer: str) -> str:
        return "/" + shm.part_name(self.instance, consumer) + "-sem"

    def waker(self, ring_name: str) -> wait.Waker:
        """The producer's side of the ring's consumer's wait strategy."""
        name = ring_name[len(self.instance) + 1:] if ring_name.startswith(self.instance + "-") else ring_name
        consumer = next(r.consumer for r in self.topology.rings if r.name == name)
        return wait.Waker(self.rings[name], self.strategy, self.sem_name(consumer))

    def waiter(self, process: str) -> wait.Waiter:
        """The process's side of its wait strategy; it sleeps at its first
        idle step (the services spin in their own loops before they say idle)."""
        inputs = [self.rings[r.name] for r in self.topology.inputs(process)]
        return wait.Waiter(inputs, self.strategy, spin_polls=1, sem_name=self.sem_name(process))

    def close(self) -> None:
        """Unmap (and, in the creator, unlink) every segment and semaphore."""
        for r in self.rings.values():
            r.close()
        self.control.close()
        for process in dict.fromkeys(r.consumer for r in self.topology.rings):
            wait.unlink_semaphore("", self.sem_name(process))
