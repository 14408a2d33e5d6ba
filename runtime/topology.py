"""The pipeline's shape, declared once: its processes and the rings between them.

    source(s) ─cmd.<source>─▶ UBSCore ─order─▶ ME ─me_orders, me_trades, me_settles─▶ settlement
                                ▲    │            │                                       ▲
                                │    └─ log ─▶ journal ─ durable_log ─────────────────────┘
                                └──── settles ────┘

Sources are where commands enter (ingestion in dataset runs, gateway workers
when serving), each with a command ring of its own into UBSCore; a gateway
worker also has an ack ring and a push ring (events for market data and
the private streams) back from settlement. With a WAL, the
journal makes the sequenced command log durable before anything of it
reaches settlement, and publishes "durable through seq N" in the control
block. Without one (benchmarks, parity runs) there is nothing to make
durable: the log goes straight to settlement, and the pipeline saves the
journal's hop (on two cores a fifth process costs MT about a quarter of its
throughput; docs/PIPELINE.md).

The control block (a stats line per process), the wiring (a ring per entry,
a semaphore per consumer), the supervisor (which processes to start, pin and
watch), the crash drill (what it may kill) and perf.txt all read this
module: adding a process is an entry here plus its module in services/.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..engine import records as R


MAX_SOURCES = 16    # UBSCore's compiled loop takes a fixed-size tuple of command rings


class Process(NamedTuple):
    name: str
    polls: bool         # runs a polling loop that waits by the pipeline's strategy (else it yields)
    source: bool = False    # publishes commands into a ring of its own into UBSCore
    role: str = ""      # what the config names it by (pipeline.cores): sources of one kind share it

    @property
    def config_name(self) -> str:
        return self.role or self.name


class RingSpec(NamedTuple):
    name: str
    record: np.dtype
    producer: str
    consumer: str


class Topology(NamedTuple):
    processes: tuple[Process, ...]
    rings: tuple[RingSpec, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.processes)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.processes if p.source)

    def process(self, name: str) -> Process:
        for p in self.processes:
            if p.name == name:
                return p
        raise KeyError(f"no process {name!r}; the pipeline has {self.names}")

    def inputs(self, process: str) -> tuple[RingSpec, ...]:
        return tuple(r for r in self.rings if r.consumer == process)

    def outputs(self, process: str) -> tuple[RingSpec, ...]:
        return tuple(r for r in self.rings if r.producer == process)

    @property
    def pollers(self) -> tuple[str, ...]:
        """Processes that poll (and so count against the cores for the wait strategy)."""
        return tuple(p.name for p in self.processes if p.polls)


def command_ring(source: str) -> str:
    return f"cmd.{source}"


def ack_ring(source: str) -> str:
    """Settlement -> a gateway worker: the outcomes of its commands (serving only)."""
    return f"ack.{source}"


def push_ring(source: str) -> str:
    """Settlement -> a gateway worker: the events of durable commands (market data, private streams)."""
    return f"push.{source}"


def gateway_sources(n: int) -> tuple[str, ...]:
    if not 1 <= n <= MAX_SOURCES:
        raise ValueError(f"{n} gateway workers; UBSCore takes from 1 to {MAX_SOURCES}")
    return tuple(f"gateway{k}" for k in range(n))


def ingestion_sources(n: int) -> tuple[str, ...]:
    """The sources of a dataset run: `ingestion`, or ingestion0.. when the
    dataset is dealt to several (service mode's stand-in for gateway workers)."""
    if n < 1:
        raise ValueError(f"a pipeline needs at least one source, not {n}")
    return ("ingestion",) if n == 1 else tuple(f"ingestion{k}" for k in range(n))


def pipeline(sources: tuple[str, ...] = ("ingestion",), journal: bool = True, role: str = "ingestion",
             acks: bool = False) -> Topology:
    """The pipeline with these command sources (all of one role), with a journal (a WAL) or not;
    acks: settlement answers each source on a ring of its own (gateway workers)."""
    if not sources or len(set(sources)) != len(sources):
        raise ValueError(f"sources must be distinct and at least one: {sources}")
    if len(sources) > MAX_SOURCES:
        raise ValueError(f"{len(sources)} sources; UBSCore takes from at most {MAX_SOURCES}")
    processes = (*(Process(s, polls=False, source=True, role=role) for s in sources),
                 Process("ubscore", polls=True),
                 Process("matching", polls=True),
                 *((Process("journal", polls=True),) if journal else ()),
                 Process("settlement", polls=True))
    log = ((RingSpec("log", R.CMD, "ubscore", "journal"), RingSpec("durable_log", R.CMD, "journal", "settlement"))
           if journal else (RingSpec("log", R.CMD, "ubscore", "settlement"),))
    rings = (*(RingSpec(command_ring(s), R.CMD, s, "ubscore") for s in sources),
             RingSpec("order", R.CMD, "ubscore", "matching"),
             RingSpec("settles", R.SETTLE, "matching", "ubscore"),
             *log,
             RingSpec("me_settles", R.SETTLE, "matching", "settlement"),
             RingSpec("me_orders", R.ORDER_EVENT, "matching", "settlement"),
             RingSpec("me_trades", R.TRADE_EVENT, "matching", "settlement"),
             *((RingSpec(ack_ring(s), R.ACK, "settlement", s) for s in sources) if acks else ()),
             *((RingSpec(push_ring(s), R.PUSH, "settlement", s) for s in sources) if acks else ()))
    return Topology(processes, rings)


def serving(workers: int) -> Topology:
    """`xinf serve`: gateway workers as the sources, a WAL, acknowledgements and pushes, and the
    audit stage (services/audit.py), which follows the WAL on disk and so has no ring."""
    t = pipeline(gateway_sources(workers), journal=True, role="gateway", acks=True)
    return t._replace(processes=(*t.processes, Process("audit", polls=False)))


def settlement_log(topology: Topology) -> str:
    """The ring settlement takes the sequenced commands from (durable ones with a journal)."""
    return next(r.name for r in topology.inputs("settlement") if r.record == R.CMD)


DATASET = pipeline()                # a dataset run with a WAL: ingestion is the one source
ROLES = (*DATASET.names, "gateway", "audit")   # what the config's pipeline.cores may name
DEFAULT_CORES = ("ubscore", "matching")     # with no cores configured: one core each, in this order
