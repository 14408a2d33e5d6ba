"""`xinf dashboard --data-dir DIR`: a live view of a running instance's metrics.

It finds the instance through a file the run leaves in DIR: `serve.json`
(`xinf serve --data-dir DIR`), `metrics.json` (`xinf pipeline mt --out DIR`)
or `supervisor.pid` (the WAL directory of `xinf pipeline mt --wal DIR`); the
supervisor it names must be alive. It then only reads the metrics segment
(runtime/metrics.py), so it costs the exchange nothing: per stage the count
and the latency percentiles since start, the counters, the WebSocket gauges
(summed over the gateway workers), ring occupancy and each process's pid,
core, state and heartbeat; the audit store's lag.

A histogram may be read mid-update by its writer (count and buckets a
record apart): a frame is a best-effort picture, never an input to anything.

`--once` prints one frame as plain text and exits (scripts, tests); without
it the frame is redrawn (rich) until Ctrl-C. Exit status 1, with a message,
when no instance is running there.
"""
from __future__ import annotations

import json
import pathlib
import sys
import time

import psutil

from ..engine import records as R
from ..runtime.control import STATE_NAMES
from ..runtime.metrics import Metrics, summary

STAGE_ORDER = ("gateway.request", "gateway.precheck", "gateway.ring", "gateway.ack", "ubscore", "match", "wal",
               "wal.fsync", "settle", "store", "store.write", "push")
WHAT = {"gateway.request": "request start -> decoded and authenticated",
        "gateway.precheck": "an order's balance pre-check",
        "gateway.ring": "a command's wait for room in its ring",
        "gateway.ack": "command entry -> answered (the ack wait)",
        "ubscore": "entry -> sequenced, checked, locked", "match": "entry -> matched by the ME",
        "wal": "entry -> durable in the WAL", "wal.fsync": "one group commit: append + fsync",
        "settle": "entry -> replayed by settlement", "store": "entry -> order store committed",
        "store.write": "one order-store transaction",
        "push": "entry -> its events applied by a worker, queued to WebSockets"}


class NoInstance(RuntimeError):
    pass


def _alive(pid: int, started: float | None) -> bool:
    try:
        p = psutil.Process(pid)
        return started is None or abs(p.create_time() - started) < 0.01
    except psutil.Error:
        return False


def find(data_dir: pathlib.Path) -> tuple[str, int, str]:
    """(segment name, supervisor pid, what runs) of the live instance whose handle is in data_dir."""
    for fname, what in (("serve.json", "xinf serve"), ("metrics.json", "xinf pipeline mt")):
        path = data_dir / fname
        if path.exists():
            try:
                info = json.loads(path.read_text())
                pid, name = int(info["pid"]), info.get("metrics")
            except (ValueError, KeyError):
                continue
            if name and _alive(pid, info.get("started")):
                return name, pid, what
    pid_file = data_dir / "supervisor.pid"
    if pid_file.exists():
        try:
            pid_s, started = pid_file.read_text().split()
            pid = int(pid_s)
        except ValueError:
            pid, started = 0, "0"
        if pid and _alive(pid, float(started)):
            return f"xinf-{pid}-metrics", pid, "xinf pipeline mt --wal"
    raise NoInstance(f"{data_dir}: no running instance (no serve.json, metrics.json or supervisor.pid naming a live "
                     "supervisor); start one with `xinf serve --data-dir DIR` or `xinf pipeline mt --out DIR`")


def _ns(v: int) -> str:
    if v < 10_000:
        return f"{v} ns"
    if v < 1_000_000:
        return f"{v / 1e3:.1f} us"
    if v < 10_000_000_000:
        return f"{v / 1e6:.1f} ms"
    return f"{v / 1e9:.2f} s"


def snapshot(m: Metrics) -> dict:
    """One frame's figures."""
    stages = m.stages()
    order = [s for s in STAGE_ORDER if s in stages] + [s for s in stages if s not in STAGE_ORDER]
    g = {name: m.gauge(name) for name in m.gauge_index}
    procs = {}
    for name in g:
        if name.startswith("proc.") and name.endswith(".pid"):
            p = name[5:-4]
            pid = g[name]
            try:
                core = psutil.Process(pid).cpu_num() if pid else -1
            except psutil.Error:
                core = -1
            procs[p] = {"pid": pid, "core": core, "state": STATE_NAMES.get(g[f"proc.{p}.state"], "?"),
                        "heartbeat": g[f"proc.{p}.heartbeat"]}
    rejects = {R.REASON_TEXT.get(int(k.split(".")[1]), k): v for k, v in g.items() if k.startswith("rejects.") and v}
    websocket = {}              # each gauge summed over the workers (ws.sent@gateway0 + ws.sent@gateway1 ...)
    for k, v in g.items():
        if k.startswith("ws."):
            name = k[3:].split("@")[0]
            websocket[name] = websocket.get(name, 0) + v
    return {"enabled": m.on, "up_s": (time.time_ns() - int(m.header["created_ns"])) / 1e9,
            "stages": {s: summary(stages[s]) for s in order},
            "counters": {k: g[k] for k in ("commands", "trades", "stalls", "restarts", "store.lag") if k in g},
            "rejects": rejects, "websocket": websocket,
            "rings": {k[5:]: v for k, v in g.items() if k.startswith("ring.")}, "processes": procs}


def text(f: dict, head: str) -> str:
    lines = [head + f" up {f['up_s']:.1f} s, metrics {'on' if f['enabled'] else 'off (pipeline.metrics: false)'}",
             f"{'stage':<18}{'count':>10}{'p50':>11}{'p99':>11}{'p99.9':>11}{'max':>11}  measures"]
    for s, v in f["stages"].items():
        lines.append(f"{s:<18}{v['count']:>10}{_ns(v['p50_ns']):>11}{_ns(v['p99_ns']):>11}{_ns(v['p999_ns']):>11}"
                     f"{_ns(v['max_ns']):>11}  {WHAT.get(s, '')}")
    lines.append("counters: " + " ".join(f"{k}={v}" for k, v in f["counters"].items()))
    lines.append("rejects: " + (", ".join(f"{k}={v}" for k, v in f["rejects"].items()) or "none"))
    if f["websocket"]:
        lines.append("websocket (all workers): " + " ".join(f"{k}={v}" for k, v in f["websocket"].items()))
    lines.append("rings (records waiting): " + " ".join(f"{k}={v}" for k, v in f["rings"].items()))
    lines.append("processes: " + "; ".join(f"{p} pid {v['pid']} core {v['core']} {v['state']} hb {v['heartbeat']}"
                                           for p, v in f["processes"].items()))
    return "\n".join(lines)


def _rich(f: dict, head: str):
    from rich.console import Group
    from rich.table import Table
    t = Table(title=head + f" up {f['up_s']:.1f} s", expand=False)
    for c in ("stage", "count", "p50", "p99", "p99.9", "max", "measures"):
        t.add_column(c, justify="left" if c in ("stage", "measures") else "right")
    for s, v in f["stages"].items():
        t.add_row(s, f"{v['count']:,}", _ns(v["p50_ns"]), _ns(v["p99_ns"]), _ns(v["p999_ns"]), _ns(v["max_ns"]),
                  WHAT.get(s, ""))
    p = Table(title="processes")
    for c in ("process", "pid", "core", "state", "heartbeat"):
        p.add_column(c)
    for name, v in f["processes"].items():
        p.add_row(name, str(v["pid"]), str(v["core"]), v["state"], f"{v['heartbeat']:,}")
    c = Table(title="counters, WebSockets and rings", show_header=False)
    for k, v in {**f["counters"], **{f"rejected: {k}": v for k, v in f["rejects"].items()},
                 **{f"websocket {k}": v for k, v in f["websocket"].items()},
                 **{f"ring {k}": v for k, v in f["rings"].items()}}.items():
        c.add_row(k, f"{v:,}")
    return Group(t, p, c)


def add_arguments(p) -> None:
    p.add_argument("--data-dir", required=True,
                   help="the data dir of `xinf serve`, or the --out (or --wal) dir of `xinf pipeline mt`")
    p.add_argument("--once", action="store_true", help="print one frame as text and exit")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between frames (live view)")


def main(args) -> int:
    data_dir = pathlib.Path(args.data_dir)
    try:
        name, pid, what = find(data_dir)
        try:
            m = Metrics.attach(name)
        except (FileNotFoundError, ValueError):     # ValueError: caught mid-creation (no magic yet)
            raise NoInstance(f"{data_dir}: {what} (pid {pid}) has no metrics segment {name} (still starting, "
                             "or a version without metrics)") from None
    except NoInstance as e:
        print(f"xinf dashboard: {e}", file=sys.stderr)
        return 1
    head = f"{what} on {data_dir} (pid {pid}):"
    try:
        if args.once:
            print(text(snapshot(m), head))
            return 0
        from rich.live import Live
        with Live(_rich(snapshot(m), head), refresh_per_second=4, screen=False) as live:
            while _alive(pid, None):
                time.sleep(args.interval)
                live.update(_rich(snapshot(m), head))
        print(f"xinf dashboard: the instance (pid {pid}) has ended", file=sys.stderr)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        m.close()
