"""`xinf dashboard --data-dir DIR`: a live view of a running instance's metrics.

It finds the instance through a file the run leaves in DIR: `serve.json`
(`xinf serve --data-dir DIR`), `metrics.json` (`xinf pipeline mt --out DIR`)
or `supervisor.pid` (the WAL directory of `xinf pipeline mt --wal DIR`); the
supervisor it names must be alive. It then only reads the metrics segment
(runtime/metrics.py), so it costs the exchange nothing. Per stage: the count,
and p50 / p99 / p99.9 / max both over the last interval (the difference of
two frames' bucket counts) and since start, and its samples/s; commands/s
and trades/s over the interval (sparklines of the last 60 frames in the live
view); the counters, rejects and stalls, the WebSocket gauges (summed
over the gateway workers), the records waiting in each ring, the audit store's
lag; each process's pid, state, heartbeat, health (did the heartbeat move
during the interval), the core it last ran on and its CPU affinity.

A histogram may be read mid-update by its writer (count and buckets a
record apart): a frame is a best-effort picture, never an input to anything.

`--once` takes two snapshots `--interval` seconds apart and prints the second
as plain text (scripts, tests), its "last" columns over that interval; without
it the frame is redrawn (rich) every `--interval` until Ctrl-C. Exit status 1,
with a message, when no instance is running there.
"""
from __future__ import annotations

import collections
import json
import os
import pathlib
import sys
import time

import numpy as np
import psutil

from ..engine import records as R
from ..runtime.control import DONE, FAILED, RUNNING, STATE_NAMES
from ..runtime.metrics import H_BUCKETS, H_COUNT, H_MAX, N_BUCKETS, Metrics, bucket_bounds, summary

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
RATES = ("commands", "trades")      # the gauges shown as a rate (per second over the interval)
SPARK = "▁▂▃▄▅▆▇█"
HISTORY = 60                        # frames a sparkline spans


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


def _rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def spark(values, width: int = HISTORY) -> str:
    """A sparkline of the last `width` values (non-negative), scaled to their maximum."""
    vals = list(values)[-width:]
    top = max(vals, default=0)
    if top <= 0:
        return SPARK[0] * len(vals)
    return "".join(SPARK[min(len(SPARK) - 1, max(0, round(v / top * (len(SPARK) - 1))))] for v in vals)


def pinning(affinity, cores) -> str:
    """A process's CPU affinity as text: "pinned N" (one core), "any" (every core this machine lets us
    see), "cores a,b" (a subset), "?" (unknown)."""
    if not affinity:
        return "?"
    if len(affinity) == 1:
        return f"pinned {affinity[0]}"
    if set(affinity) >= set(cores):
        return "any"
    return "cores " + ",".join(str(c) for c in sorted(affinity))


def probe(pid: int):
    """(core it last ran on, its affinity or None) of a live process; None when it is gone."""
    try:
        p = psutil.Process(pid)
        core = p.cpu_num()
        try:
            affinity = p.cpu_affinity()
        except (psutil.AccessDenied, AttributeError):       # another user's process; a platform without it
            affinity = None
        return core, affinity
    except psutil.NoSuchProcess:                            # a zombie too: it has ended
        return None
    except psutil.Error:
        return -1, None


def _cores() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return list(range(psutil.cpu_count() or 1))


def interval(prev: np.ndarray, cur: np.ndarray) -> dict:
    """count, p50/p99/p99.9 and max (ns) of the samples one histogram row took between two reads of it.

    The percentiles come from the difference of the bucket counts (each within 1/32, as since start). The
    interval's max is exact when the row's max grew (only a sample of the interval can have raised it);
    otherwise the buckets only bound it: the upper bound of the top non-empty bucket of the difference,
    capped by the max since start (exact again when that leaves a single value: the buckets below 32 ns)."""
    d = cur - prev                                          # the interval's own row
    b = d[H_BUCKETS:] = np.maximum(d[H_BUCKETS:], 0)        # a read mid-update may be a record apart
    d[H_COUNT] = n = int(b.sum())
    mx_now = int(cur[H_MAX])
    if n == 0:
        mx, exact = 0, True
    elif mx_now > int(prev[H_MAX]):
        mx, exact = mx_now, True
    else:
        top = int(np.flatnonzero(b)[-1])
        lo, width = bucket_bounds(min(top, N_BUCKETS - 1))
        mx = min(lo + width - 1, mx_now)
        exact = mx == lo                                    # a bucket one value wide (below 32 ns), or capped to it
    d[H_MAX] = mx
    return {**summary(d), "max_exact": exact}


def snapshot(m: Metrics, prev: dict | None = None, *, t: float | None = None, probe=probe,
             cores: list[int] | None = None) -> dict:
    """One frame's figures; with `prev` (the frame before), also those over the interval since it.

    t: the frame's time (time.monotonic() by default); probe(pid): (core, affinity) of a live process, None
    when it is gone (psutil by default); cores: the cores an unpinned process may run on (ours by default)."""
    t = time.monotonic() if t is None else t
    cores = _cores() if cores is None else cores
    rows = m.stages()
    order = [s for s in STAGE_ORDER if s in rows] + [s for s in rows if s not in STAGE_ORDER]
    g = dict(zip(m.gauge_index, m.gauges.tolist()))         # the names in the segment's order
    dt = t - prev["t"] if prev is not None and t > prev["t"] else None
    pg = prev["gauges"] if dt else {}
    stages = {}
    for s in order:
        v = summary(rows[s])
        if dt and s in prev["rows"]:
            v["last"] = interval(prev["rows"][s], rows[s])
            v["last"]["rate"] = v["last"]["count"] / dt
        stages[s] = v
    procs = {}
    for name in g:
        if name.startswith("proc.") and name.endswith(".pid"):
            p = name[5:-4]
            pid, state, hb = g[name], g[f"proc.{p}.state"], g[f"proc.{p}.heartbeat"]
            found = probe(pid) if pid else None
            core, affinity = found if found is not None else (-1, None)
            if state in (DONE, FAILED) or (pid and found is None):
                health = "ended"
            elif not dt:
                health = "-"                                # one frame: nothing to compare with
            elif hb != pg.get(f"proc.{p}.heartbeat"):
                health = "ok"
            else:                                           # not running yet: the supervisor waits for it too
                health = "stalled" if state == RUNNING else "-"
            procs[p] = {"pid": pid, "core": core, "state": STATE_NAMES.get(state, "?"), "heartbeat": hb,
                        "health": health, "pinning": pinning(affinity, cores)}
    rejects = {R.REASON_TEXT.get(int(k.split(".")[1]), k): v for k, v in g.items() if k.startswith("rejects.") and v}
    websocket = {}              # each gauge summed over the workers (ws.sent@gateway0 + ws.sent@gateway1 ...)
    for k, v in g.items():
        if k.startswith("ws."):
            name = k[3:].split("@")[0]
            websocket[name] = websocket.get(name, 0) + v
    rates = {k: max(g.get(k, 0) - pg.get(k, 0), 0) / dt for k in RATES} if dt else {}
    return {"enabled": m.on, "up_s": (time.time_ns() - int(m.header["created_ns"])) / 1e9,
            "t": t, "interval_s": dt, "rows": rows, "gauges": g,
            "stages": stages, "rates": rates,
            "counters": {k: g[k] for k in ("commands", "trades", "stalls", "restarts", "store.lag") if k in g},
            "rejects": rejects, "websocket": websocket,
            "rings": {k[5:]: _fill(v, g.get(f"capacity.{k[5:]}", 0)) for k, v in g.items() if k.startswith("ring.")},
            "processes": procs}


def _fill(waiting: int, capacity: int) -> str:
    """A ring's records waiting, and the share of its capacity they fill (when the segment has it)."""
    return f"{waiting:,}/{capacity:,} ({100 * waiting / capacity:.1f}%)" if capacity else f"{waiting:,}"


def _last(v: dict) -> tuple[str, ...]:
    last = v.get("last")
    if last is None:
        return ("-",) * 5
    if not last["count"]:
        return ("0",) + ("-",) * 4
    return (str(last["count"]), _ns(last["p50_ns"]), _ns(last["p99_ns"]), _ns(last["p999_ns"]),
            _ns(last["max_ns"]) + ("" if last["max_exact"] else "*"))


def _since(v: dict) -> tuple[str, ...]:
    return _ns(v["p50_ns"]), _ns(v["p99_ns"]), _ns(v["p999_ns"]), _ns(v["max_ns"])


def text(f: dict, head: str) -> str:
    """A frame as plain text (--once): a stage a line, its name and count since start first."""
    dt = f["interval_s"]
    lines = [head + f" up {f['up_s']:.1f} s, metrics {'on' if f['enabled'] else 'off (pipeline.metrics: false)'}"
             + (f", last interval {dt:.2f} s" if dt else "")]
    last = f" last {dt:.2f} s " if dt else " last interval "
    lines.append(f"{'':29}{last:-^54} {' since start ':-^43}")
    quantiles = "".join(f"{c:>11}" for c in ("p50", "p99", "p99.9", "max"))
    lines.append(f"{'stage':<18}{'count':>10}{'n':>11}{quantiles}{quantiles}  measures")
    for s, v in f["stages"].items():
        lines.append(f"{s:<18}{v['count']:>10}" + "".join(f"{c:>11}" for c in _last(v) + _since(v))
                     + f"  {WHAT.get(s, '')}")
    if any(v.get("last", {}).get("max_exact") is False for v in f["stages"].values()):
        lines.append("  * max over the interval bounded by its top bucket (the max since start did not grow)")
    if f["rates"]:
        lines.append(f"throughput over the last {dt:.2f} s: "
                     + " ".join(f"{k}/s={v:.1f}" for k, v in f["rates"].items()))
    lines.append("counters: " + " ".join(f"{k}={v}" for k, v in f["counters"].items()))
    lines.append("rejects: " + (", ".join(f"{k}={v}" for k, v in f["rejects"].items()) or "none"))
    if f["websocket"]:
        lines.append("websocket (all workers): " + " ".join(f"{k}={v}" for k, v in f["websocket"].items()))
    lines.append("rings (records waiting/capacity): " + " ".join(f"{k}={v}" for k, v in f["rings"].items()))
    lines.append("processes (core: the one it last ran on; health: its heartbeat moved during the interval):")
    lines += [f"  {p} pid {v['pid']} core {v['core']} {v['state']} hb {v['heartbeat']} {v['health']} {v['pinning']}"
              for p, v in f["processes"].items()]
    return "\n".join(lines)


def remember(history: dict, f: dict) -> dict:
    """Add a frame's rates to the sparklines' history (name -> the last HISTORY values)."""
    if f["interval_s"]:
        for k, v in f["rates"].items():
            history.setdefault(f"{k}/s", collections.deque(maxlen=HISTORY)).append(v)
    return history


def _rich(f: dict, head: str, history: dict | None = None):
    """The live view of a frame; history: the sparklines' (remember)."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    history = history or {}
    dt = f["interval_s"]
    t = Table(title=head + f" up {f['up_s']:.1f} s" + (f", last interval {dt:.2f} s" if dt else ""), expand=False,
              box=box.SIMPLE_HEAD, collapse_padding=True,
              caption="last: over the last interval (max*: bounded by its top bucket); since: since start; "
                      "n/s: samples per second over the last interval")
    t.add_column("stage", no_wrap=True, min_width=16)
    t.add_column("count", justify="right", no_wrap=True)
    t.add_column("n/s", justify="right", no_wrap=True)
    for c in ("n", "p50", "p99", "p99.9", "max"):
        t.add_column(f"last\n{c}", justify="right", style="cyan", no_wrap=True)
    for c in ("p50", "p99", "p99.9", "max"):
        t.add_column(f"since\n{c}", justify="right", no_wrap=True)
    for s, v in f["stages"].items():
        rate = _rate(v["last"]["rate"]) if "last" in v else "-"
        t.add_row(s, f"{v['count']:,}", rate, *_last(v), *_since(v))
    r = Table(title="throughput", show_header=False)
    for k in RATES:
        vals = history.get(f"{k}/s", ())
        r.add_row(f"{k}/s", _rate(vals[-1]) if vals else "-", spark(vals))
    p = Table(title="processes")
    for c in ("process", "pid", "core", "affinity", "state", "heartbeat", "health"):
        p.add_column(c, no_wrap=True)
    for name, v in f["processes"].items():
        style = {"ok": "green", "stalled": "bold red", "ended": "yellow"}.get(v["health"], "")
        p.add_row(name, str(v["pid"]), str(v["core"]), v["pinning"], v["state"], f"{v['heartbeat']:,}",
                  f"[{style}]{v['health']}[/]" if style else v["health"])
    c = Table(show_header=False, box=None)
    c.add_column(style="bold", no_wrap=True)
    c.add_column()
    for k, d in (("counters", f["counters"]), ("rejects", f["rejects"]), ("websocket (all workers)", f["websocket"]),
                 ("rings (records waiting/capacity)", f["rings"])):
        if d or k in ("counters", "rejects"):
            c.add_row(k, "  ".join(f"{n}={v:,}" if isinstance(v, int) else f"{n}={v}" for n, v in d.items())
                      or "none")
    return Group(t, r, p, c)


def add_arguments(p) -> None:
    p.add_argument("--data-dir", required=True,
                   help="the data dir of `xinf serve`, or the --out (or --wal) dir of `xinf pipeline mt`")
    p.add_argument("--once", action="store_true",
                   help="print one frame as text and exit (its 'last' figures over --interval)")
    p.add_argument("--interval", type=float, default=0.5,
                   help="seconds between frames (live view), or between --once's two snapshots")


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
    interval_s = max(float(args.interval), 0.01)
    try:
        f = snapshot(m)
        if args.once:
            time.sleep(interval_s)
            print(text(snapshot(m, f), head))
            return 0
        from rich.live import Live
        history: dict = {}
        with Live(_rich(f, head, history), refresh_per_second=4, screen=False) as live:
            while _alive(pid, None):
                time.sleep(interval_s)
                f = snapshot(m, f)
                live.update(_rich(f, head, remember(history, f)))
        print(f"xinf dashboard: the instance (pid {pid}) has ended", file=sys.stderr)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        m.close()
