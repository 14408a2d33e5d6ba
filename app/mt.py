"""`xinf pipeline mt`: a dataset through the multi-process pipeline.

Ingestion, UBSCore, the ME, the journal and settlement run as separate
processes under the supervisor (runtime/), joined by shared-memory rings as
runtime/topology.py declares them. Settlement writes
exactly the files `xinf pipeline st` writes; perf.txt has the pipeline's time
(first command published to last event merged) and each process's figures:
time in steps that did work, steps, sleeps on its semaphore, and UBSCore's
stalls (commands that waited for every earlier seq to settle) and their time.
While it runs, OUT/metrics.json names the run's metrics segment (runtime/metrics.py):
`xinf dashboard --data-dir OUT` shows it live.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import sys
import tempfile
import time

from typing import NamedTuple

import numpy as np

import msgspec
import psutil

from xinfinity.config import Capacity, Config, Pipeline, load_yaml
from xinfinity.engine import records as R
from xinfinity.engine.core import Core, balance_rows, build_me, build_ubs, named_arrays, prefault_all
from xinfinity.ipc.shm import instance_name as shm_instance
from xinfinity.ipc.shm import part_name
from xinfinity.ipc.wait import STRATEGIES
from xinfinity.runtime import progress
from xinfinity.runtime.control import ME_DONE, PROC_STATS
from xinfinity.runtime.metrics import summary
from xinfinity.runtime.topology import DATASET, ingestion_sources
from xinfinity.runtime.topology import pipeline as pipeline_topology
from xinfinity.services.ingestion import Ingestion
from xinfinity.services.journal import Journal
from xinfinity.storage.wal_dir import SNAPSHOTS, SUPERVISOR_PID, WalDir, WalDirError, check_fresh
from xinfinity.storage.snapshot import PartWriter, Scheduler, seq_of, snapshots_in
from xinfinity.storage.wal import POLICIES
from xinfinity.services.matching import Matching
from xinfinity.services.settlement import Settlement
from xinfinity.runtime.supervisor import Supervisor
from xinfinity.services.ubscore import UbsCore
from xinfinity.runtime.wiring import Wiring

from xinfinity.edge import outputs
from xinfinity.edge.dataset import load_dataset
from xinfinity.storage.recovery import recover
from xinfinity.edge.sink import Sink, write_finals
from xinfinity.app.st import ROOT, add_config_argument


METRICS_HANDLE = "metrics.json"     # in the out dir while a run goes on: its metrics segment's name


class Resumed(NamedTuple):
    """The state a restarted pipeline starts from (`recover_pipeline`)."""
    core: Core          # after every command the WAL holds
    journaled: int      # the last seq the WAL holds
    figures: dict       # storage/recovery.recover's
    starts: tuple       # per source: how many of its commands the WAL holds


def deal(ds, n: int) -> list[np.ndarray]:
    """The dataset's commands (initial deposits first) dealt to n sources by
    user id, each part in dataset order: a user's commands, deposits first,
    go through one source in order, as one client's would through one gateway."""
    cmds = np.concatenate([ds.deposits, ds.commands])
    if n == 1:
        return [cmds]
    return [cmds[cmds["user_id"] % n == k] for k in range(n)]


def _check_sources(wal_dir, parts: list[np.ndarray], wal: np.ndarray, deposits: int) -> tuple:
    """Each source's commands in the WAL must be a prefix of its part (else the
    WAL is another dataset's); returns how many each has there. With one
    source that is the whole dataset, its `deposits` initial deposits first,
    and a difference names the file row."""
    n = len(parts)

    def where(k: int, i: int) -> str:
        if n > 1:
            return f"command {i + 1} of source {k}"
        return (f"row {i + 1} of the dataset's balances_init.csv" if i < deposits
                else f"row {i - deposits + 1} of the dataset's orders")

    starts = []
    for k, part in enumerate(parts):
        mine = wal if n == 1 else wal[wal["user_id"] % n == k]
        of = "" if n == 1 else f" of source {k}"
        if len(mine) > len(part):
            raise WalDirError(f"{wal_dir}: the WAL holds {len(mine)} commands{of}, "
                              f"the dataset {len(part)}: it is another dataset's")
        for f in ("kind", "user_id", "order_id", "symbol", "price", "qty", "amount"):
            bad = np.flatnonzero(part[f][:len(mine)] != mine[f])
            if len(bad):
                raise WalDirError(f"{wal_dir}: the WAL's command {int(mine['seq'][bad[0]])} differs from "
                                  f"{where(k, int(bad[0]))} ({f}): it is another dataset's")
        starts.append(len(mine))
    return tuple(starts)


def recover_pipeline(ds, out_dir, wal_dir, core: Core | None = None, sources: int = 1) -> Resumed:
    """After a crash: cut the output files back to what is surely complete
    (edge/sink.Sink.resume), rebuild the state from the WAL (and a snapshot no
    newer than those files), writing the events the files lack, and check
    that the WAL holds this dataset's commands. core: a fresh one to use."""
    sink = Sink.resume(pathlib.Path(out_dir)) if out_dir is not None else None
    core, j, figures = recover(wal_dir, sink, sink.through() if sink else None, prefault=False, core=core)
    if sink:
        sink.ledger.close()
        sink.events.close()
    if sources == 1 and len(ds.deposits) != len(j.deposits) and len(j.commands):
        raise WalDirError(f"{wal_dir}: the WAL has {len(j.deposits)} initial deposits, the dataset "
                          f"{len(ds.deposits)}: it is another dataset's")
    starts = _check_sources(wal_dir, deal(ds, sources), np.concatenate([j.deposits, j.commands]), len(ds.deposits))
    return Resumed(core, figures["wal_commands"], figures, starts)


def snapshot_writer(wal_dir, part: str, assets, symbols, dust_code: int, capacity: Capacity) -> PartWriter:
    """UBSCore's ("u") or the ME's ("me") snapshot writer for the WAL directory: parts
    are written as changes from a freshly built state."""
    initial = ((lambda: named_arrays("u", build_ubs(assets, symbols, dust_code, capacity))) if part == "u"
               else (lambda: named_arrays("me", build_me(assets, symbols, capacity))))
    return PartWriter(pathlib.Path(wal_dir) / SNAPSHOTS, part, initial)


def _builders(ds, out_dir, dust: str, capacity: Capacity, tmp: pathlib.Path, wal_dir=None,
              fsync: str = "every_batch", resumed: Resumed | None = None, fsync_interval_ms: int = 5,
              sources: int = 1, hold: bool = False, rate: int = 0) -> dict:
    """How each process builds its service (in the child, after the fork);
    after a crash, from the recovered state (each child has its own copy).
    sources: how many sources the dataset is dealt to; hold: they keep their
    rings open until the supervisor's stop (service mode); rate: each source's
    offered commands per second (0: as fast as they are taken)."""
    parts = deal(ds, sources)
    dust_code = R.DUST_CODES[dust]
    asset_ids = np.array(sorted(a.id for a in ds.assets), np.int64)
    me_final = tmp / "me.npz"
    start = resumed.journaled if resumed else 0
    starts = resumed.starts if resumed else (0,) * sources

    def source(k, name):
        return lambda w, stats: Ingestion(w, parts[k], starts[k], name, hold, rate)

    def ubs_state():
        if resumed:
            return resumed.core.ubs
        u = build_ubs(ds.assets, ds.symbols, dust_code, capacity)
        prefault_all(u)
        return u

    def snapshots(part):
        return None if wal_dir is None else snapshot_writer(wal_dir, part, ds.assets, ds.symbols, dust_code, capacity)

    def ubscore(w, stats):
        return UbsCore(w, ubs_state(), stats, start, snapshots("u"))

    def matching(w, stats):
        if resumed:
            return Matching(w, resumed.core.me, me_final, snapshots("me"))
        me = build_me(ds.assets, ds.symbols, capacity)
        prefault_all(me)
        return Matching(w, me, me_final, snapshots("me"))

    def journal(w, stats):
        if wal_dir is None:
            return Journal(w)
        if resumed:
            return Journal(w, WalDir.reopen(wal_dir, fsync, fsync_interval_ms), start)
        # Dealt to several sources, the WAL interleaves deposits and rows: it has no initial deposits.
        deposits = len(ds.deposits) if sources == 1 else 0
        return Journal(w, WalDir(wal_dir, ds.path, dust, deposits, fsync, fsync_interval_ms))

    def settlement(w, stats):
        replica = ubs_state()
        sink = (Sink.resume(out_dir, start) if out_dir else Sink(None)) if resumed else Sink(out_dir)
        svc = Settlement(w, replica, sink)

        def finish():
            if out_dir is None:
                return
            book = np.load(me_final)
            rows = book["open_orders"]
            rows["lock"] = svc.lock_of_ubs_ref()[rows["lock"]]     # the ME left each order's ref there
            best = book["best"]
            balances = balance_rows(replica, asset_ids)
            write_finals(out_dir, sink, balances, rows, lambda s: tuple(int(x) for x in best[s]), ds)
        svc.finish = finish
        return svc

    return {**{name: source(k, name) for k, name in enumerate(ingestion_sources(sources))},
            "ubscore": ubscore, "matching": matching, "journal": journal, "settlement": settlement}


def _load_service_kernels(ds, dust: str, pipeline: Pipeline, tmp: pathlib.Path) -> None:
    """Build UBSCore, the ME, the journal and settlement once here, on a tiny state and
    rings, so that their compiled loops are loaded in this process: the
    processes a restart forks then start without loading them each (the types,
    not the sizes, pick the compiled code)."""
    tiny = Capacity(max_users=16, max_assets=max(a.id for a in ds.assets) + 1, max_orders=15, max_buckets=4)
    w = Wiring.create(msgspec.structs.replace(pipeline, ring_capacity=16, batch=8), instance=f"{shm_instance()}-warm")
    try:
        stats = np.zeros(len(DATASET.names), PROC_STATS)
        builders = _builders(ds, None, dust, tiny, tmp)
        for i, name in enumerate(DATASET.names):
            if name not in DATASET.sources:
                builders[name](w, stats[i])
    finally:
        w.close()


@progress.reported
def run_mt(input_dir, out_dir, dust: str = "release", pipeline: Pipeline = Pipeline(),
           ds=None, capacity: Capacity = Capacity(), wal_dir=None, fsync: str | None = None,
           watch=None, on_ready=None, on_recovered=None, restarts: int | None = None,
           sources: int = 1, until_stopped: bool = False, rate: int = 0) -> dict:
    """Run the MT pipeline; returns the perf figures (also written to perf.txt).
    sources: deal the dataset to that many sources (`deal`), each with its
    command ring into UBSCore. until_stopped (service mode): the sources keep
    their rings open when their commands run out, and SIGTERM or SIGINT
    stops the pipeline by draining every ring.
    out_dir None: run everything but write nothing (the benchmark). With a
    WAL, a crash is followed by a restart through recovery (at most
    `restarts`, default the config's); on_recovered(Resumed) runs after each
    recovery, watch and on_ready go to the supervisor (the crash drill).
    fsync: the WAL's policy (default: the config's). rate: offer the commands
    open-loop at this many per second (services/ingestion.py), not as fast as
    the pipeline takes them. With metrics on, perf has each stage's latency
    since entry (latency.<stage>.p50_us ...: runtime/metrics.py's rows)."""
    t_begin = time.perf_counter()
    prog = progress.current()           # how far: the ME's last seq (ME_DONE) of the dataset's
    fsync = fsync or pipeline.fsync
    if ds is None:
        prog.stage("loading the dataset", compiles="load")
        ds = load_dataset(input_dir)
    t_loaded = time.perf_counter()
    out_dir = pathlib.Path(out_dir) if out_dir is not None else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    if wal_dir is not None:
        wal_dir = check_fresh(wal_dir)          # before any process starts
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="xinf-mt-"))

    restarts = pipeline.restarts if restarts is None else restarts

    topology = pipeline_topology(ingestion_sources(sources), journal=wal_dir is not None)

    def builders(resumed: Resumed | None = None) -> dict:
        made = _builders(ds, out_dir, dust, capacity, tmp, wal_dir, fsync, resumed, pipeline.fsync_interval_ms,
                         sources, until_stopped, rate)
        return {name: made[name] for name in topology.names}

    def spare_core() -> Core:       # allocated while the pipeline runs, not after a crash
        return Core(ds.assets, ds.symbols, R.DUST_CODES[dust], capacity, prefault=False)

    spare = [None]
    scheduler = Scheduler(pathlib.Path(wal_dir) / SNAPSHOTS, pipeline.snapshot_every_commands,
                          pipeline.snapshot_every_s) if wal_dir is not None else None

    total, resumed_at = len(ds.deposits) + len(ds.commands), [0]

    def recover_and_rebuild():
        scheduler.restarted()
        prog.stage("recovering from the WAL after a crash")
        resumed = recover_pipeline(ds, out_dir, wal_dir, spare[0], sources)
        resumed_at[0] = resumed.journaled
        spare[0] = None
        if on_recovered:
            on_recovered(resumed)
        prog.stage(f"starting the {len(topology.names)} processes again")
        return builders(resumed)

    def ready(w):
        n = len(sup.restarts)
        prog.stage(f"after restart {n}" if n else "", total=total, unit="commands", done=resumed_at[0], per_s=True)
        if on_ready:
            on_ready(w)

    def watch_run(sup):
        if prog.total == total:
            prog.update(max(prog.done, sup.wiring.control.get(ME_DONE)))
            if prog.done >= total:
                prog.stage(f"all {total:,} commands matched: " + ("waiting for the stop (SIGTERM or Ctrl-C)"
                           if until_stopped else "settling the last ones, writing the files"))
        if scheduler:
            scheduler.poll(sup.wiring.control)
        if spare[0] is None and sup.recover is not None:
            spare[0] = spare_core()
        if watch:
            watch(sup)

    if wal_dir is not None and restarts:
        prog.stage("loading the services' kernels", compiles="services")
        _load_service_kernels(ds, dust, pipeline, tmp)
    prog.stage(f"starting the {len(topology.names)} processes", compiles="mt")
    sup = Supervisor(pipeline, builders(), recover_and_rebuild if wal_dir is not None else None, restarts,
                     topology)
    if watch:
        sup.poll_s = 0.001
    pid_file = pathlib.Path(wal_dir) / SUPERVISOR_PID if wal_dir is not None else None
    if pid_file:                            # `xinf snapshot --wal DIR` signals us
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{os.getpid()} {psutil.Process().create_time():.3f}\n")   # pid and start: pids are reused
        old_usr1 = signal.signal(signal.SIGUSR1, lambda *_: scheduler.request())
    handle = out_dir / METRICS_HANDLE if out_dir else None
    if handle:                              # `xinf dashboard --data-dir OUT` finds the run here
        handle.write_text(json.dumps({"metrics": part_name(shm_instance(), "metrics"), "pid": os.getpid(),
                                      "started": psutil.Process().create_time()}) + "\n")
    try:
        stats = sup.run(ready, watch_run, (signal.SIGTERM, signal.SIGINT) if until_stopped else ())
        if prog.total == total and not until_stopped:     # ran to the end; the watch may have missed the last
            prog.update(total)
        if scheduler:
            scheduler.finish()
    finally:
        if handle:
            handle.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        if pid_file:
            signal.signal(signal.SIGUSR1, old_usr1)
            pid_file.unlink(missing_ok=True)
    run = stats.pop("pipeline")
    mt_s = (run["t_end"] - run["t_start"]) / 1e9
    perf = {"orders": len(ds.commands), "wait": sup.wiring.strategy, "restarts": len(sup.restarts),
            "load_s": round(t_loaded - t_begin, 3), "mt_s": round(mt_s, 3),
            "mt_orders_per_sec": int(len(ds.commands) / mt_s) if mt_s > 0 else 0}
    if out_dir:
        perf["trades"] = int(outputs.read_summary(out_dir / "summary.txt")["trades"])
    for name in topology.names:
        st = stats[name]
        perf[f"{name}.work_s"] = round(st["work_ns"] / 1e9, 3)
        perf[f"{name}.cpu_s"] = round(st["cpu_ns"] / 1e9, 3)
        perf[f"{name}.steps"] = st["steps"]
        perf[f"{name}.sleeps"] = st["sleeps"]
    perf["ubscore.stalls"] = stats["ubscore"]["stalls"]
    perf["ubscore.stall_s"] = round(stats["ubscore"]["stall_ns"] / 1e9, 3)
    perf["ubscore.unsettled_per_stall"] = round(stats["ubscore"]["stall_behind"] / max(1, stats["ubscore"]["stalls"]), 1)
    for stage, h in (sup.final_stages or {}).items():
        for k, v in summary(h).items():
            perf[f"latency.{stage}.{k[:-3]}_us" if k.endswith("_ns") else f"latency.{stage}.{k}"] = (
                round(v / 1000, 1) if k.endswith("_ns") else v)
    perf["total_s"] = round(time.perf_counter() - t_begin, 3)
    if out_dir:
        outputs.write_summary(out_dir / "perf.txt", perf)
    return perf


def run_interleaved(ds, out_dir, dust: str = "release", pipeline: Pipeline = Pipeline(wait="spin"),
                    seed: int = 0, capacity: Capacity = Capacity()) -> dict:
    """The pipeline's services in this one process, their steps interleaved at
    random (seeded), UBSCore's and the ME's one loop turn at a time: any
    timing the processes could produce is a possible schedule here, so with
    tiny rings this tests determinism and freedom from deadlock without
    processes. Returns each service's step count."""
    rng = np.random.default_rng(seed)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="xinf-mt-"))
    out_dir = pathlib.Path(out_dir) if out_dir is not None else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    w = Wiring.create(pipeline)
    try:
        stats = np.zeros(len(DATASET.names), PROC_STATS)
        builders = _builders(ds, out_dir, dust, capacity, tmp)
        svcs = [builders[name](w, stats[i]) for i, name in enumerate(DATASET.names)]
        for svc in svcs:
            if hasattr(svc, "turns"):
                svc.turns, svc.max_polls = 1, 1
        steps = [0] * len(svcs)
        idle = 0
        while not all(s.done for s in svcs):
            live = [i for i, s in enumerate(svcs) if not s.done]
            i = live[int(rng.integers(len(live)))]
            if svcs[i].step():
                steps[i] += 1
                idle = 0
            else:
                idle += 1
                if idle > 10_000:
                    raise RuntimeError(f"no service can make progress: deadlock ({steps} steps done)")
            if svcs[i].done and hasattr(svcs[i], "finish"):
                svcs[i].finish()
        return dict(zip(DATASET.names, steps))
    finally:
        w.close()
        shutil.rmtree(tmp, ignore_errors=True)


def add_pipeline_arguments(p) -> None:
    """The options every command that runs the MT pipeline takes."""
    add_config_argument(p)
    p.add_argument("--wait", choices=STRATEGIES, default=None,
                   help="how an idle process waits (overrides the config; auto: by cores and processes)")


def add_arguments(p) -> None:
    p.add_argument("--input", required=True, help="dataset directory")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--dust", choices=sorted(R.DUST_CODES), default="release")
    add_pipeline_arguments(p)
    p.add_argument("--wal", default=None, help="write the order WAL (and what replaying it needs) into this directory")
    p.add_argument("--fsync", choices=POLICIES, default=None,
                   help="WAL fsync policy (with --wal; default: the config's pipeline.fsync)")
    p.add_argument("--sources", type=int, default=1,
                   help="deal the dataset by user to N sources, each with its own command ring")
    p.add_argument("--until-stopped", action="store_true",
                   help="service mode: the sources stay open when their commands run out; "
                        "SIGTERM or Ctrl-C drains every ring and stops")


def load_config(args) -> Config:
    """The --config file with --wait over its pipeline.wait; every value is
    checked as it loads (config/__init__.py), before any process starts."""
    cfg = load_yaml(args.config)
    if args.wait:
        cfg = msgspec.structs.replace(cfg, pipeline=msgspec.structs.replace(cfg.pipeline, wait=args.wait))
    return cfg


def pipeline_config(args) -> Pipeline:
    """The pipeline section of `load_config` (the tools' runs keep the default capacity)."""
    return load_config(args).pipeline


def main(args) -> int:
    if getattr(args, "sources", 1) < 1:
        raise SystemExit("xinf pipeline mt: --sources must be at least 1")
    cfg = load_config(args)
    perf = run_mt(args.input, args.out, args.dust, cfg.pipeline, capacity=cfg.capacity,
                  wal_dir=getattr(args, "wal", None), fsync=getattr(args, "fsync", None),
                  sources=getattr(args, "sources", 1), until_stopped=getattr(args, "until_stopped", False))
    print((pathlib.Path(args.out) / "summary.txt").read_text(), end="")
    for k, v in perf.items():
        print(f"{k}={v}")
    return 0


def add_snapshot_arguments(p) -> None:
    p.add_argument("--wal", required=True, help="the WAL directory of a running MT pipeline")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the snapshot")


def snapshot_main(args) -> int:
    """`xinf snapshot --wal DIR`: ask the MT pipeline running on that WAL for a
    snapshot now, wait until it is sealed, print where it is."""
    d = pathlib.Path(args.wal)
    pid_file = d / SUPERVISOR_PID
    if not pid_file.exists():
        raise WalDirError(f"{d}: no MT pipeline is running on this WAL ({SUPERVISOR_PID} is missing)")

    def newest():
        snaps = snapshots_in(d / SNAPSHOTS)
        return snaps[-1] if snaps else None

    before = newest()
    pid, started = pid_file.read_text().split()
    pid = int(pid)
    try:                    # a stale file may name a pid reused by another program: do not signal that
        ours = f"{psutil.Process(pid).create_time():.3f}" == started
    except psutil.Error:
        ours = False
    if not ours:
        raise WalDirError(f"{pid_file}: the supervisor it names (pid {pid}) is not running")
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        snap = newest()
        if snap is not None and snap != before:
            print(f"snapshot={snap} seq={seq_of(snap)}")
            return 0
        time.sleep(0.01)
    print(f"xinf: no snapshot within {args.timeout:g} s (the run may have ended)", file=sys.stderr)
    return 1


def add_run_arguments(p) -> None:
    p.add_argument("--input", default=None, help="dataset directory (default: the bundled golden fixture)")
    p.add_argument("--out", default="out/run")
    p.add_argument("--dust", choices=sorted(R.DUST_CODES), default="release")
    add_pipeline_arguments(p)


def run(args) -> int:
    """`xinf run`: the bundled golden dataset through the multi-process
    pipeline under the supervisor, printing its summary and each process's figures."""
    args.input = args.input or str(ROOT / "fixtures" / "zxi-100k")
    print(f"xinfinity: running {args.input} through the multi-process pipeline -> {args.out}", flush=True)
    return main(args)           # progress (and on a first start, the compile) on stderr: run_mt's
