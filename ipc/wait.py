"""How a consumer waits for records, and how a producer wakes it.

- `spin`: poll without pause. Lowest latency, burns a core: only when every
  spinning process has a core to itself.
- `yield`: poll `spin_polls` times, then `sched_yield` between polls.
- `block`: poll `spin_polls` times, then announce "waiting" in the ring's
  header and sleep on a posix_ipc semaphore; the producer posts it only when
  it sees that flag, so a busy ring costs the producer one load per publish.
  The sleep has a timeout, a safety net should a wake-up ever be missed.

`auto` picks: spin when there are at least as many cores as spinning
processes, else block (DESIGN.md section 4: more spinners than cores
collapses throughput 12-25x on this 2-core machine).
"""
from __future__ import annotations

import os
from typing import get_args

import posix_ipc

from ..config import WaitStrategy
from ..engine.jit import kernel
from .atomics import fence, load_acquire, store_release
from .ring import CONSUMER, PRODUCER, WAITING

STRATEGIES = get_args(WaitStrategy)     # a bad name fails at config load (config/__init__.py)


def choose(strategy: WaitStrategy, spinning_processes: int, cores: int | None = None) -> str:
    """Resolve `auto` to a concrete strategy for this machine."""
    assert strategy in STRATEGIES, strategy
    if strategy != "auto":
        return strategy
    cores = cores if cores is not None else len(os.sched_getaffinity(0))
    return "spin" if cores >= spinning_processes else "block"


@kernel()
def _announce_waiting(ctrl):
    """Consumer: set "waiting", then (after a full fence) say whether records
    arrived meanwhile, in which case it must not sleep."""
    store_release(ctrl, WAITING, 1)
    fence()
    if load_acquire(ctrl, PRODUCER) != load_acquire(ctrl, CONSUMER):
        store_release(ctrl, WAITING, 0)
        return True
    return False


@kernel()
def _should_wake(ctrl):
    """Producer, after publishing: is the consumer (about to be) asleep?"""
    fence()
    if load_acquire(ctrl, WAITING) != 0:
        store_release(ctrl, WAITING, 0)
        return True
    return False


def semaphore_name(ring_name: str) -> str:
    return "/" + ring_name + "-sem"


class Waiter:
    """The consumer side of a wait strategy, over all of a process's input
    rings: one semaphore per consumer, named after its first ring unless
    `sem_name` says otherwise (each producer's Waker must use the same name)."""

    def __init__(self, rings, strategy: str, spin_polls: int = 2000, block_timeout_s: float = 0.005,
                 sem_name: str | None = None):
        self.rings = list(rings) if isinstance(rings, (list, tuple)) else [rings]
        self.strategy, self.spin_polls = strategy, spin_polls
        self.timeout = block_timeout_s
        name = sem_name or semaphore_name(self.rings[0].name)
        self.sem = (posix_ipc.Semaphore(name, posix_ipc.O_CREAT, initial_value=0)
                    if strategy == "block" else None)
        self.polls = 0
        self.sleeps = 0

    def idle(self, rings=None) -> None:
        """Called after a poll that found nothing to do; `rings`: the inputs
        that can end the wait now (default: all of them)."""
        self.polls += 1
        if self.strategy == "spin" or self.polls < self.spin_polls:
            return
        if self.strategy == "yield":
            os.sched_yield()
            return
        # Announce on every input ring, then check them all: a record published
        # before a producer saw the flag is found here, any later one wakes us.
        arrived = False
        for ring in rings if rings is not None else self.rings:
            arrived |= _announce_waiting(ring.ctrl)
        if arrived:
            self._clear()
            return
        self.sleeps += 1
        try:
            self.sem.acquire(self.timeout)
        except (posix_ipc.BusyError, posix_ipc.SignalError):     # timed out, or a signal: poll again
            pass
        self._clear()               # awake: poll again, flags down

    def _clear(self) -> None:
        for ring in self.rings:
            _clear_waiting(ring.ctrl)

    def busy(self) -> None:
        """Called after a poll that found records."""
        self.polls = 0

    def close(self) -> None:
        if self.sem is not None:
            self.sem.close()


class Waker:
    """The producer side: wakes a blocked consumer after publishing."""

    def __init__(self, ring, strategy: str, sem_name: str | None = None):
        self.ring = ring
        name = sem_name or semaphore_name(ring.name)
        self.sem = (posix_ipc.Semaphore(name, posix_ipc.O_CREAT, initial_value=0)
                    if strategy == "block" else None)
        self.posts = 0

    def published(self) -> None:
        if self.sem is not None and _should_wake(self.ring.ctrl):
            self.post()

    def post(self) -> None:
        """Wake the consumer (a compiled loop already saw, and cleared, its flag)."""
        if self.sem is not None:
            self.posts += 1
            self.sem.release()

    def close(self) -> None:
        if self.sem is not None:
            self.sem.close()


@kernel()
def _clear_waiting(ctrl):
    store_release(ctrl, WAITING, 0)


def unlink_semaphore(ring_name: str, sem_name: str | None = None) -> None:
    try:
        posix_ipc.unlink_semaphore(sem_name or semaphore_name(ring_name))
    except posix_ipc.ExistentialError:
        pass
