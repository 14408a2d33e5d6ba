"""`xinf drill crash`: SIGKILL processes of the MT pipeline at random moments
and prove that nothing acknowledged was lost and nothing written twice.

The dataset runs through the MT pipeline with a WAL. Kill k happens once the
WAL holds seq points[k] (seeded, spread over the run; or the next seq, if
recovery is past it already); ingestion is held a seeded distance past that
point (up to the gap between kills) until the kill, so every kill lands
before the end of the run, most with commands in flight. Each time the supervisor sees the death, stops the
rest and restarts the pipeline through recovery (app/mt.py
`recover_pipeline`): the output files are cut back to what is surely
complete, the WAL is replayed (the events the files lack are written), and
ingestion resumes after the last seq the WAL holds.

After each recovery the output files must equal, through the recovered seq,
those of a clean ST run: records the ST run has and the files lack are
`lost`, records the files have beyond the ST run's are `duplicated` (as
multisets, so a record written twice counts). At the end every file is
compared whole. recovery_ms runs from the kill to the restarted pipeline's
go: seeing the death, stopping the rest, opening the WAL, replaying it,
starting the processes (the drill's own check is not counted).
"""
from __future__ import annotations

import collections
import os
import pathlib
import shutil
import signal
import tempfile
import time

import msgspec
import numpy as np

from xinfinity.engine import records as R
from xinfinity.runtime.control import DURABLE, INGEST_LIMIT, RUNNING
from xinfinity.runtime.topology import DATASET
from xinfinity.storage.wal import POLICIES

from xinfinity.edge import outputs
from xinfinity.edge.dataset import load_dataset
from xinfinity.app.mt import Resumed, add_pipeline_arguments, pipeline_config, run_mt
from .parity import compare_dirs
from xinfinity.app.st import run_st
from xinfinity.runtime import progress

TARGETS = {**{name: name for name in DATASET.names}, "me": "matching"}    # "me": the ME, by its short name


def add_arguments(p) -> None:
    p.add_argument("--input", required=True, help="dataset directory")
    p.add_argument("--out", required=True, help="the recovered run's output files go here")
    p.add_argument("--kills", type=int, default=10, help="how many times to kill a process")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", choices=sorted(TARGETS) + ["any"], default="any",
                   help="which process to kill (any: a seeded choice each time)")
    p.add_argument("--dust", choices=sorted(R.DUST_CODES), default="release")
    p.add_argument("--fsync", choices=POLICIES, default=None, help="WAL fsync policy (default: the config's)")
    p.add_argument("--wal", default=None, help="WAL directory (default: a temporary one, removed after)")
    p.add_argument("--snapshot-every", type=int, default=None,
                   help="snapshot through the pipeline every N commands (default: the config's)")
    add_pipeline_arguments(p)


class Reference:
    """The clean ST run's files, to compare any prefix of a run's with."""

    def __init__(self, st_dir: pathlib.Path):
        self.events = {name: np.fromfile(st_dir / name, dt) for name, dt in outputs.EVENT_FILES.values()}
        self.ledger = _ledger_rows(st_dir)
        self.ledger_trade = np.array([int(x.split(b",", 1)[0]) for x in self.ledger], np.int64)
        self.trades = self.events[outputs.EVENT_FILES["trades"][0]]

    def compare(self, out_dir: pathlib.Path, through: int) -> tuple[int, int, list[str]]:
        """(lost, duplicated, files that differ) of out_dir's event files and
        ledger against this run's records of seqs <= through."""
        lost = dup = 0
        bad = []
        for name, want in self.events.items():
            k = int(np.searchsorted(want["seq"], through, side="right"))
            got = np.fromfile(out_dir / name, want.dtype)
            l, d = _difference(want[:k], got)
            if l or d:
                bad.append(name)
            lost, dup = lost + l, dup + d
        i = int(np.searchsorted(self.trades["seq"], through, side="right"))
        last_trade = self.trades["trade_id"][i - 1] if i else 0
        k = int(np.searchsorted(self.ledger_trade, last_trade, side="right"))
        l, d = _difference(self.ledger[:k], _ledger_rows(out_dir))
        if l or d:
            bad.append(outputs.LEDGER_FILE)
        return lost + l, dup + d, bad


def _ledger_rows(out_dir: pathlib.Path) -> list[bytes]:
    """The ledger's lines after its header."""
    return (out_dir / outputs.LEDGER_FILE).read_bytes().partition(b"\n")[2].split(b"\n")[:-1]


def _difference(want, got) -> tuple[int, int]:
    """(records of want missing from got, records of got beyond want), as multisets."""
    if isinstance(want, np.ndarray):
        if len(want) == len(got) and want.tobytes() == got.tobytes():
            return 0, 0
        want, got = [r.tobytes() for r in want], [r.tobytes() for r in got]
    elif want == got:
        return 0, 0
    a, b = collections.Counter(want), collections.Counter(got)
    return sum((a - b).values()), sum((b - a).values())


class Killer:
    """The drill's watch: kills the planned process once the WAL holds the
    planned seq; holds ingestion a little past it until then."""

    def __init__(self, points, lookahead, targets, total: int, reference: Reference, out_dir: pathlib.Path):
        self.points, self.lookahead, self.targets, self.total = points, lookahead, targets, total
        self.reference, self.out_dir = reference, out_dir
        self.recoveries = 0
        self.kills = []             # one dict per kill done
        self.printed = 0

    def on_ready(self, wiring) -> None:
        """Before the go: where the next kill lands (past what is journaled
        already) and how far ingestion may run ahead of it."""
        limit = 0
        k = len(self.kills)
        if k < len(self.points):
            last = self.total - 1               # ingestion never ends before the last kill
            self.point = min(max(int(self.points[k]), wiring.control.get(DURABLE) + 1), last)
            limit = min(self.point + int(self.lookahead[k]), last)
        wiring.control.put(INGEST_LIMIT, limit)

    def __call__(self, sup) -> None:
        self._report(sup)
        k = len(self.kills)
        if k == len(self.points) or len(sup.restarts) != k:
            return
        c = sup.wiring.control
        if any(c.proc(n)["state"] != RUNNING for n in DATASET.names):
            return
        at = c.get(DURABLE)
        if at < self.point:
            return
        name = self.targets[k]
        pid = sup.procs[name].pid
        os.kill(pid, signal.SIGKILL)
        self.kills.append({"target": name, "pid": pid, "at": at, "t_kill": time.perf_counter()})
        progress.current().context = f"killed {len(self.kills)} of {len(self.points)} ({name} at seq {at})"

    def on_recovered(self, resumed: Resumed) -> None:
        self.recoveries += 1
        if self.recoveries > len(self.kills):
            raise RuntimeError("a process died that the drill did not kill (see above): the drill failed")
        t0 = time.perf_counter()
        lost, dup, bad = self.reference.compare(self.out_dir, resumed.journaled)
        kill = self.kills[-1]
        kill.update({"through": resumed.journaled, "lost": lost, "duplicated": dup, "bad": bad,
                     "snapshot": resumed.figures["snapshot_seq"], "replayed": resumed.figures["replayed"], "torn": resumed.figures["torn_bytes"],
                     "replay_ms": resumed.figures["recovery_s"] * 1000, "check_s": time.perf_counter() - t0})

    def _report(self, sup) -> None:
        """Print each kill's line once its restarted pipeline runs."""
        while self.printed < len(sup.restarts) and sup.restarts[self.printed].t_running:
            kill = self.kills[self.printed]
            kill["recovery_ms"] = (sup.restarts[self.printed].t_running - kill["t_kill"] - kill["check_s"]) * 1000
            self.printed += 1
            verdict = "OK" if not (kill["lost"] or kill["duplicated"]) else f"FAILED in {', '.join(kill['bad'])}"
            print(f"kill {self.printed}/{len(self.points)}: {kill['target']} (pid {kill['pid']}) with the WAL at "
                  f"seq {kill['at']}; recovered through seq {kill['through']} (snapshot {kill['snapshot']}, "
                  f"replayed {kill['replayed']}, "
                  f"torn {kill['torn']} B) in {kill['recovery_ms']:.0f} ms (WAL and replay {kill['replay_ms']:.0f} ms); "
                  f"lost={kill['lost']} duplicated={kill['duplicated']} {verdict}", flush=True)


def plan(total: int, kills: int, seed: int, target: str, batch: int):
    """Seeded kill points (WAL seqs, distinct, ascending), how far ingestion may
    run past each, and the process each kill hits."""
    if kills > total - 2:
        raise ValueError(f"{kills} kills do not fit in a run of {total} commands")
    rng = np.random.default_rng(seed)
    points = np.sort(rng.choice(np.arange(1, total - 1), kills, replace=False))
    lookahead = rng.integers(0, min(2 * batch, max(1, (total - 2) // kills)), kills)
    names = list(DATASET.names)
    targets = [names[int(i)] for i in rng.integers(0, len(names), kills)] if target == "any" \
        else [TARGETS[target]] * kills
    return points, lookahead, targets


@progress.reported
def drill(input_dir, out_dir, kills: int, seed: int, target: str = "any", dust: str = "release",
          pipeline=None, fsync: str | None = None, wal_dir=None) -> dict:
    """Run the drill; returns its figures (the final line's and the verdicts)."""
    from xinfinity.config import Pipeline
    pipeline = pipeline or Pipeline()
    prog = progress.current()
    prog.stage("loading the dataset", compiles="load")
    ds = load_dataset(input_dir)
    out_dir = pathlib.Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="xinf-drill-"))
    try:
        prog.context = "the reference ST run"
        run_st(input_dir, tmp / "st", dust)
        reference = Reference(tmp / "st")
        prog.context = f"killed 0 of {kills}"
        total = len(ds.deposits) + len(ds.commands)
        points, lookahead, targets = plan(total, kills, seed, target, pipeline.batch)
        killer = Killer(points, lookahead, targets, total, reference, out_dir)
        run_mt(None, out_dir, dust, pipeline, ds=ds, wal_dir=wal_dir or tmp / "wal", fsync=fsync,
               watch=killer, on_ready=killer.on_ready, on_recovered=killer.on_recovered, restarts=kills)
        prog.context = ""
        prog.stage("comparing the files with the ST run's")
        verdicts = compare_dirs(tmp / "st", out_dir)
        lost, dup, _ = reference.compare(out_dir, np.iinfo(np.int64).max)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    done = killer.kills
    passed = sum(1 for k in done if not (k["lost"] or k["duplicated"]))
    ms = np.array([k["recovery_ms"] for k in done if "recovery_ms" in k])
    return {"kills": kills, "passed": passed, "recoveries": done, "lost": lost, "duplicated": dup, "verdicts": verdicts,
            "recovery_p50_ms": float(np.percentile(ms, 50)) if len(ms) else 0.0,
            "recovery_p99_ms": float(np.percentile(ms, 99)) if len(ms) else 0.0,
            "recovery_max_ms": float(ms.max()) if len(ms) else 0.0}


def main(args) -> int:
    if args.kills < 1:
        raise SystemExit("xinf drill crash: --kills must be at least 1")
    cfg = pipeline_config(args)
    if args.snapshot_every is not None:
        cfg = msgspec.structs.replace(cfg, snapshot_every_commands=args.snapshot_every)
    r = drill(args.input, args.out, args.kills, args.seed, args.target, args.dust, cfg, args.fsync, args.wal)
    bad = [(name, detail) for name, ok, detail in r["verdicts"] if not ok]
    for name, detail in bad:
        print(f"{name}: DIFFERENT: {detail}")
    print(f"files={len(r['verdicts'])} identical_to_st={len(r['verdicts']) - len(bad)}")
    print(f"drills_passed={r['passed']}/{r['kills']} lost={r['lost']} duplicated={r['duplicated']} "
          f"recovery_p50_ms={r['recovery_p50_ms']:.0f} recovery_p99_ms={r['recovery_p99_ms']:.0f}")
    ok = r["passed"] == r["kills"] and r["lost"] == 0 and r["duplicated"] == 0 and not bad
    return 0 if ok else 1
