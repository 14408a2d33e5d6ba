"""The supervisor: starts the pipeline's processes, watches them, stops them.

- Creates every segment first (runtime/wiring.py, as runtime/topology.py declares them), after removing those of
  dead instances, and unlinks them all when it returns, whatever happened.
- Forks one process per entry of the topology; each pins itself to the cores the config gives
  it, builds its state machine, says READY, and waits for the go that the
  supervisor gives when all are ready (so no one measures another's start).
- Each process loops `step()` and beats its heartbeat in the control block;
  an idle step hands over to its wait strategy.
- A clean stop is the end of the input (or `stop()`): every ring is drained
  by its consumer, and each process closes its outputs when its inputs are
  closed and empty, so the close travels down the pipeline.
- If any process dies, or its heartbeat stands still for heartbeat_timeout_s,
  the others are killed and `PipelineError` names the process and its status.
- With a `recover` callback (a pipeline with a WAL), a crash is followed by a
  restart instead, up to `max_restarts` times: the callback rebuilds the state
  from the WAL and gives the builders of the new processes (app/mt.py).
- The metrics segment (runtime/metrics.py) is made once per `run()`, so its
  figures span restarts; the supervisor itself writes the gauges no process
  owns (ring occupancy, each process's pid, state and heartbeat, UBSCore's
  stalls, restarts) every METRICS_PERIOD_S while it watches.
"""
from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection
import os
import signal
import sys
import time
import traceback
from typing import Callable, NamedTuple

import psutil

from ..config import Pipeline
from ..ipc import shm
from .control import DONE, FAILED, READY, RUNNING, STATE_NAMES, STOP, T_END, T_START
from .metrics import Metrics
from .topology import DATASET, DEFAULT_CORES, Topology
from .wiring import Wiring

# A builder makes a process's service in the child: (wiring, stats) -> object
# with step() -> bool and a `done` attribute; an optional `finish()` runs after.
Builder = Callable
METRICS_PERIOD_S = 0.1


class PipelineError(RuntimeError):
    pass


class Restart(NamedTuple):
    why: str            # the failure, as PipelineError said it
    t_running: float    # perf_counter when the restarted pipeline was given the go (0: not yet)


def default_cores(cfg: Pipeline) -> dict[str, list[int]]:
    """The config's cores, or one core each for the DEFAULT_CORES processes
    (UBSCore and the ME) when there are enough."""
    if cfg.cores:
        return {k: list(v) for k, v in cfg.cores.items()}
    avail = sorted(os.sched_getaffinity(0))
    if len(avail) < len(DEFAULT_CORES):
        return {}
    return {name: [core] for name, core in zip(DEFAULT_CORES, avail)}


def _serve(name: str, build: Builder, wiring: Wiring, cores: list[int] | None) -> None:
    stats = wiring.control.proc(name)
    stats["pid"] = os.getpid()
    try:
        # The supervisor decides when to stop (Ctrl-C reaches the whole process
        # group; `pkill` may name us); it ends a child with SIGKILL.
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)
        if cores:
            psutil.Process().cpu_affinity(cores)
        svc = build(wiring, stats)
        # Sleep at the first idle step: UBSCore's and the ME's compiled loops
        # spin before they report idle; the journal and settlement work in
        # batches and are not on the critical path. Sources only yield.
        waiter = wiring.waiter(name) if wiring.topology.process(name).polls else None
        stats["state"] = READY
        while stats["state"] != RUNNING:
            time.sleep(0.001)
        clock = time.perf_counter_ns
        cpu0 = time.process_time_ns()
        while not svc.done:
            t = clock()
            if svc.step():
                stats["work_ns"] += clock() - t
                stats["steps"] += 1
                if waiter:
                    waiter.busy()
            elif waiter:
                waiter.idle(getattr(svc, "wait_on", None))
            else:
                os.sched_yield()
            stats["heartbeat"] += 1
        if waiter:
            stats["sleeps"] = waiter.sleeps
        stats["cpu_ns"] = time.process_time_ns() - cpu0
        finish = getattr(svc, "finish", None)
        if finish:
            finish()
        stats["state"] = DONE
    except BaseException:
        stats["state"] = FAILED
        print(f"xinfinity: {name} failed:", file=sys.stderr)
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    os._exit(0)


def _status(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        return f"was killed by signal {signal.Signals(-code).name}"
    return f"exited with status {code}"


class Supervisor:
    def __init__(self, cfg: Pipeline, builders: dict[str, Builder],
                 recover: Callable[[], dict[str, Builder]] | None = None, max_restarts: int = 0,
                 topology: Topology = DATASET):
        if set(builders) != set(topology.names):
            raise ValueError(f"builders for {sorted(builders)}; the pipeline has {topology.names}")
        self.cfg, self.builders, self.topology = cfg, builders, topology
        self.recover, self.max_restarts = recover, max_restarts
        self.cores = default_cores(cfg)
        self.wiring: Wiring | None = None
        self.procs: dict[str, mp.Process] = {}
        self.restarts: list[Restart] = []
        self.stopping = False       # a clean stop was asked for (it outlives a restart)
        self.poll_s = 0.01          # how often the watch runs (a process's death is seen at once)
        self.metrics: Metrics | None = None
        self.metrics_at = 0.0
        self.final_stages: dict | None = None   # each stage's histogram when run() returned (metrics on)

    def run(self, on_ready: Callable[[Wiring], None] | None = None,
            watch: Callable[["Supervisor"], None] | None = None, stop_signals=()) -> dict:
        """Run the pipeline to its end, restarting it through recovery after a
        crash if it can; returns every process's stats line (of the last start).
        on_ready(wiring) runs when every process is ready, before the go;
        watch(self) runs every poll_s while the pipeline runs. stop_signals
        (service mode: SIGTERM, SIGINT): each asks for a clean stop, which
        drains every ring; a source that holds its ring open ends only then."""
        old = {s: signal.signal(s, lambda *_: self.stop()) for s in stop_signals}
        shm.cleanup_stale()
        self.metrics = Metrics.create(shm.part_name(shm.instance_name(), "metrics"), self.topology,
                                      getattr(self.cfg, "metrics", True))
        try:
            while True:
                try:
                    return self._run_once(on_ready, watch)
                except PipelineError as e:
                    if self.recover is None or len(self.restarts) >= self.max_restarts:
                        raise
                    print(f"xinfinity: {e}; restarting through recovery "
                          f"({len(self.restarts) + 1} of at most {self.max_restarts})", file=sys.stderr, flush=True)
                    self.builders = self.recover()
                    self.restarts.append(Restart(str(e), 0.0))
                    self.metrics.set("restarts", len(self.restarts))
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
            if self.metrics.on:
                self.final_stages = self.metrics.stages()
            self.metrics.close()

    def _run_once(self, on_ready, watch) -> dict:
        shm.cleanup_stale()
        self.procs = {}
        self.wiring = w = Wiring.create(self.cfg, topology=self.topology, metrics=self.metrics)
        for name, ring in w.rings.items():                  # the dashboard's ring fill is waiting / this
            self.metrics.set(f"capacity.{name}", len(ring.slots))
        if self.stopping:
            w.control.put(STOP, 1)
        names = self.topology.names
        ctx = mp.get_context("fork")
        try:
            for name in names:
                p = ctx.Process(target=_serve, name=f"xinf-{name}",
                                args=(name, self.builders[name], w,
                                      self.cores.get(self.topology.process(name).config_name)))
                p.start()
                self.procs[name] = p
            self._wait(lambda: all(w.control.proc(n)["state"] == READY for n in names), "start")
            if on_ready:
                on_ready(w)
            for n in names:
                w.control.proc(n)["state"] = RUNNING
            if self.restarts and not self.restarts[-1].t_running:
                self.restarts[-1] = self.restarts[-1]._replace(t_running=time.perf_counter())
            self._wait(lambda: all(w.control.proc(n)["state"] == DONE for n in names), "run", watch)
            for p in self.procs.values():
                p.join()
            self._check_exits()
            self._sample_metrics()
            stats = {n: {f: int(w.control.proc(n)[f]) for f in w.control.procs.dtype.names if f != "reserved"}
                     for n in names}
            stats["pipeline"] = {"t_start": w.control.get(T_START), "t_end": w.control.get(T_END)}
            return stats
        finally:
            self._kill_all()
            w.close()

    def stop(self) -> None:
        """Ask for a clean stop: the sources end their streams, the rest drains."""
        self.stopping = True
        if self.wiring is not None and self.wiring.control.words is not None:   # not between two starts
            self.wiring.control.put(STOP, 1)

    def _wait(self, finished: Callable[[], bool], phase: str, watch=None) -> None:
        w = self.wiring
        beats = {n: (-1, time.monotonic()) for n in self.topology.names}
        while not finished():
            live = [p.sentinel for p in self.procs.values() if p.exitcode is None]
            mp.connection.wait(live, self.poll_s)       # returns at once when one ends
            self._check_exits()
            if watch:
                watch(self)
            now = time.monotonic()
            if now - self.metrics_at >= METRICS_PERIOD_S:
                self.metrics_at = now
                self._sample_metrics()
            for n in self.topology.names:
                st = w.control.proc(n)
                hb = int(st["heartbeat"])
                if hb != beats[n][0] or st["state"] != RUNNING:
                    beats[n] = (hb, now)
                elif now - beats[n][1] > self.cfg.heartbeat_timeout_s:
                    raise PipelineError(f"{n} (pid {self.procs[n].pid}) stopped responding: no heartbeat "
                                        f"for {self.cfg.heartbeat_timeout_s:g} s during {phase}")

    def _sample_metrics(self) -> None:
        """The gauges the supervisor owns: ring occupancy, each process's pid, state and heartbeat, stalls."""
        m, w = self.metrics, self.wiring
        if m is None or w is None:
            return
        for name, ring in w.rings.items():
            m.set(f"ring.{name}", ring.available())
        for n in self.topology.names:
            st = w.control.proc(n)
            for f in ("pid", "state", "heartbeat"):
                m.set(f"proc.{n}.{f}", int(st[f]))
        m.set("stalls", int(w.control.proc("ubscore")["stalls"]))

    def _check_exits(self) -> None:
        for n, p in self.procs.items():
            code = p.exitcode
            if code is not None and (code != 0 or self.wiring.control.proc(n)["state"] != DONE):
                state = STATE_NAMES.get(int(self.wiring.control.proc(n)["state"]), "?")
                raise PipelineError(f"{n} (pid {p.pid}) {_status(code)} (state {state}); "
                                    "the other processes were stopped")

    def _kill_all(self) -> None:
        for p in self.procs.values():
            if p.is_alive():
                p.kill()
        for p in self.procs.values():
            p.join(5)
