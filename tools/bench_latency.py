"""`xinf bench latency`: open-loop latency per offered rate, of the core path and through the gateway.

The core path (no HTTP). The dataset's commands (--input; --seconds worth at
each rate, at most the whole dataset) go through the multi-process pipeline
with a WAL, offered open-loop by ingestion (services/ingestion.py): command i
is due i/rate after the go, and its entry time is when it was due, so time a
command spends waiting because the pipeline fell behind counts (no
coordinated omission). Each rate and fsync policy (--policies) is a fresh
pipeline on a fresh WAL. Two end points, read from the run's metrics
(runtime/metrics.py, entry time to the stage's clock read):
  result out   the ME has matched the command and published its events (row "match");
  durable      its WAL record is synced and settlement has it and its events (row
               "settle": settlement takes only durable commands, and in `xinf serve`
               it answers the gateway at that point).
Sustained: the pipeline kept up with the offered rate. Open loop, a pipeline
that takes commands at only a fraction f of the offered rate leaves the last
one (1 - f) x the run's length late, so: the largest result-out latency is
under 5% of the run's length (the same as >= 95% of the offered rate, without
counting the pipeline's start and close, which `achieved` includes). The
highest rate whose result-out p99 is also under --p99-bound-us (default 200)
is reported beside it.

The baseline: the same paced load into the single-process core (engine.core,
no WAL, no other process), one batch of whatever is due at a time, latency
from each command's due time to the end of the core's call that ran it:
the engine's own latency, which is what 0xInfinity's figure is of, so the
rest of the core path's figure is the pipeline's hops on this machine.

Through the gateway (--gateway-rates; "" skips it): `xinf bench gateway`'s
open-loop HTTP ladder (tools/bench_gateway.py: signed orders, latency from
each request's intended send time to its answer) under the same policies. Its
end point is the HTTP answer, which comes after durability: the durable one.

Everything shares this machine's cores. The plot (--plot, PNG) shows p50 and
p99 against the offered rate for each end point and policy. The run ends with
  core_p99_us_at_100000=          result out at 100,000/s, first policy
  durable_p99_us_at_100000_every_batch=
  st_core_p99_us_at_100000=       the baseline
(empty when that rate or policy was not run).
"""
from __future__ import annotations

import argparse
import dataclasses
import pathlib
import shutil
import tempfile

import time

import msgspec
import numpy as np

from xinfinity.app.mt import add_pipeline_arguments, pipeline_config, run_mt
from xinfinity.app.st import ROOT
from xinfinity.edge.dataset import load_dataset
from xinfinity.engine import records as R
from xinfinity.engine.core import Core
from xinfinity.runtime import progress
from xinfinity.services.ingestion import fine_sleeps
from xinfinity.storage.wal import POLICIES
from xinfinity.tools import bench_gateway

DEFAULT_RATES = "10000,25000,50000,100000,200000"
DEFAULT_GATEWAY_RATES = "250,500,1000"
SUSTAINED = 0.95                # the share of the offered rate a sustained run keeps up with
REPORT_RATE = 100_000           # the rate the closing lines report
END_POINTS = {"result": "match", "durable": "settle"}      # end point -> metrics row


def add_arguments(p) -> None:
    p.add_argument("--input", default=str(ROOT / "fixtures" / "zxi-100k"),
                   help="dataset directory (default: the bundled golden fixture, 100,000 orders)")
    p.add_argument("--rates", default=DEFAULT_RATES, help="offered commands per second into the pipeline, "
                                                           "ascending (default %(default)s)")
    p.add_argument("--seconds", type=float, default=2.0,
                   help="seconds of load per rate: rate x seconds commands, at most the dataset's (default %(default)s)")
    p.add_argument("--policies", default="every_batch,interval_ms",
                   help=f"WAL fsync policies ({', '.join(POLICIES)}; default %(default)s)")
    p.add_argument("--p99-bound-us", type=float, default=200.0,
                   help="the result-out p99 a rate must stay under to be reported as within the bound")
    p.add_argument("--gateway-rates", default=DEFAULT_GATEWAY_RATES,
                   help='offered orders per second through the gateway ("" skips it; default %(default)s)')
    p.add_argument("--gateway-seconds", type=float, default=5.0, help="seconds per gateway rate")
    p.add_argument("--plot", default="out/bench/latency.png", help="the PNG plot's path")
    add_pipeline_arguments(p)


def orders_at(ds, rate: int, seconds: float) -> int:
    """How many of the dataset's orders a run at `rate` offers: seconds' worth with the initial
    deposits, at most all of them."""
    return min(len(ds.commands), max(1, int(rate * seconds) - len(ds.deposits)))


def core_rate(ds, pipeline, rate: int, seconds: float, policy: str, root: pathlib.Path) -> dict:
    """One open-loop run at `rate`: {"rate", "n", "achieved", "result": {...}, "durable": {...}} (us).
    The initial deposits are offered first, at the same rate: n counts them."""
    orders = orders_at(ds, rate, seconds)
    part = dataclasses.replace(ds, commands=ds.commands[:orders], rows=orders)
    n = len(ds.deposits) + orders
    wal = root / f"wal-{policy}-{rate}"
    try:
        perf = run_mt(None, None, pipeline=pipeline, ds=part, wal_dir=wal, fsync=policy, restarts=0, rate=rate)
    finally:
        shutil.rmtree(wal, ignore_errors=True)
    row = {"rate": rate, "n": n, "achieved": int(n / perf["mt_s"]) if perf["mt_s"] > 0 else 0}
    for end, stage in END_POINTS.items():
        row[end] = {k: perf.get(f"latency.{stage}.{k}", 0) for k in
                    ("count", "p50_us", "p99_us", "p999_us", "max_us")}
    row["sustained"] = row["result"]["max_us"] < (1 - SUSTAINED) * n / rate * 1e6
    return row


def st_rate(ds, rate: int, seconds: float) -> dict:
    """The baseline at `rate`: {"rate", "n", "result": {...}} (us), exact percentiles."""
    orders = orders_at(ds, rate, seconds)
    cmds = ds.commands[:orders]
    core = Core(ds.assets, ds.symbols, R.DUST_RELEASE)
    core.run(ds.deposits, lambda ev: None)        # the setup, not offered
    due = (np.arange(orders, dtype=np.int64) * 1_000_000_000) // rate
    late = np.zeros(orders, np.int64)
    fine_sleeps()
    sent, t0 = 0, time.perf_counter_ns()
    while sent < orders:
        now = time.perf_counter_ns() - t0
        k = min(int(np.searchsorted(due, now, side="right")), sent + 8192)
        if k <= sent:
            time.sleep(min(int(due[sent]) - now, 1_000_000) / 1e9)
            continue
        core.run(cmds[sent:k], lambda ev: None)
        late[sent:k] = time.perf_counter_ns() - t0 - due[sent:k]
        sent = k
    q = np.percentile(late, [50, 99, 99.9]) / 1000
    return {"rate": rate, "n": orders, "result": {"count": orders, "p50_us": q[0], "p99_us": q[1],
                                                  "p999_us": q[2], "max_us": late.max() / 1000}}


def print_core_row(policy: str, r: dict) -> None:
    def pct(e):
        x = r[e]
        return f"p50 {x['p50_us']:>9,.1f} p99 {x['p99_us']:>9,.1f} p99.9 {x['p999_us']:>9,.1f} max {x['max_us']:>10,.1f}"
    print(f"  {policy:12} offered {r['rate']:>7,}/s achieved {r['achieved']:>7,}/s ({r['n']:,} commands) "
          f"sustained={'yes' if r['sustained'] else 'no'}\n"
          f"  {'':12} result out us: {pct('result')}\n"
          f"  {'':12} durable    us: {pct('durable')}", flush=True)


def plot(path: pathlib.Path, core: dict[str, list[dict]], st: list[dict], gateway: dict[str, list[dict]],
         bound_us: float) -> str:
    """Latency against offered rate, p50 and p99 of each end point and policy; what was written, or why not."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib is not installed (.venv/bin/pip install -e '.[bench]'; make test's dev extra has it)"
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 6.5))
    for policy, rows in core.items():
        for end, style in (("result", "-"), ("durable", "--")):
            rates = [r["rate"] for r in rows]
            for q, marker in (("p50_us", "o"), ("p99_us", "^")):
                a.plot(rates, [max(r[end][q], 0.1) for r in rows], style, marker=marker,
                       label=f"{end} {q[:-3]} ({policy})")
    for q, marker in (("p50_us", "o"), ("p99_us", "^")):
        a.plot([r["rate"] for r in st], [max(r["result"][q], 0.1) for r in st], ":", marker=marker, color="black",
               label=f"result {q[:-3]} (one process, no WAL)")
    a.axhline(bound_us, color="grey", lw=0.8, ls=":", label=f"{bound_us:g} us")
    a.set(xscale="log", yscale="log", xlabel="offered commands/s (ingestion, open loop)",
          ylabel="latency from intended entry, us", title="core path")
    a.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    for policy, rows in gateway.items():
        rates = [r["rate"] for r in rows]
        for q, marker in (("latency_ms_p50", "o"), ("latency_ms_p99", "^")):
            b.plot(rates, [getattr(r["order"], q) for r in rows], marker=marker, label=f"{q[11:]} ({policy})")
    b.set(xscale="log", yscale="log", xlabel="offered orders/s (HTTP, open loop)",
          ylabel="latency from intended send to answer, ms", title="through the gateway (durable answer)")
    if gateway:
        b.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"plot: {path}"


def gateway_args(args) -> argparse.Namespace:
    """bench gateway's options at their defaults, with this run's seconds and config, orders only."""
    p = argparse.ArgumentParser()
    bench_gateway.add_arguments(p)
    g = p.parse_args([])
    g.config, g.seconds, g.no_breakdown, g.kinds = args.config, args.gateway_seconds, True, bench_gateway.HMAC
    return g


@progress.reported
def main(args) -> int:
    rates = sorted(int(float(r)) for r in args.rates.split(",") if r.strip())
    g_rates = sorted(float(r) for r in args.gateway_rates.split(",") if r.strip())
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    if not rates or rates[0] <= 0 or any(r <= 0 for r in g_rates):
        raise SystemExit("xinf bench latency: --rates and --gateway-rates take positive rates")
    if not policies or set(policies) - set(POLICIES):
        raise SystemExit(f"xinf bench latency: --policies from {POLICIES}")
    pipeline = msgspec.structs.replace(pipeline_config(args), metrics=True)
    ds = load_dataset(args.input)
    print(f"bench latency: core path, {len(ds.commands):,} commands in {args.input}; rates "
          f"{','.join(f'{r:,}' for r in rates)}/s x {args.seconds:g} s; policies {policies}; "
          f"latency from each command's intended entry time", flush=True)
    core: dict[str, list[dict]] = {}
    root = pathlib.Path(tempfile.mkdtemp(prefix="xinf-bench-lat-"))
    prog = progress.current()
    try:
        for pi, policy in enumerate(policies):
            core[policy] = []
            for ri, rate in enumerate(rates):
                prog.context = (f"core path, {policy}, rate {ri + 1} of {len(rates)} ({rate:,}/s), "
                                f"run {pi * len(rates) + ri + 1} of {len(policies) * len(rates)}")
                r = core_rate(ds, pipeline, rate, args.seconds, policy, root)
                core[policy].append(r)
                print_core_row(policy, r)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    st = []
    for ri, rate in enumerate(rates):
        prog.context = f"baseline (one process), rate {ri + 1} of {len(rates)}"
        prog.stage(f"offering {rate:,} orders/s")
        st.append(st_rate(ds, rate, args.seconds))
        x = st[-1]["result"]
        print(f"  {'baseline':12} offered {rate:>7,}/s ({st[-1]['n']:,} orders, one process, no WAL)\n"
              f"  {'':12} result out us: p50 {x['p50_us']:>9,.1f} p99 {x['p99_us']:>9,.1f} "
              f"p99.9 {x['p999_us']:>9,.1f} max {x['max_us']:>10,.1f}", flush=True)
    gateway: dict[str, list[dict]] = {}
    if g_rates:
        prog.context = "through the gateway"
        print(f"bench latency: through the gateway, rates {','.join(f'{r:g}' for r in g_rates)}/s", flush=True)
        got = bench_gateway.measure(gateway_args(args), g_rates, policies, [bench_gateway.HMAC])
        gateway = {policy: rows for (policy, _), rows in got.items()}
    prog.context = ""
    prog.stage("plotting")
    print(plot(pathlib.Path(args.plot), core, st, gateway, args.p99_bound_us))
    print(f"sustained (no command later than {1 - SUSTAINED:.0%} of the run) and within the bound (result-out p99 < "
          f"{args.p99_bound_us:g} us), highest offered rate:")
    for policy, rows in core.items():
        kept = [r["rate"] for r in rows if r["sustained"]]
        bound = [r["rate"] for r in rows if r["sustained"] and 0 < r["result"]["p99_us"] < args.p99_bound_us]
        print(f"  core {policy:12} sustained {max(kept, default=0):>7,}/s   within the bound "
              f"{max(bound, default=0):>7,}/s")
    for policy, rows in gateway.items():
        print(f"  gateway {policy:9} sustained {bench_gateway.fmt(bench_gateway.max_sustained(rows)):>7}/s "
              f"(acks >= 0.95 x offered, p99 < 50 ms)")

    def at(policy: str, end: str) -> str:
        r = next((r for r in core.get(policy, []) if r["rate"] == REPORT_RATE), None)
        return f"{r[end]['p99_us']:.1f}" if r else ""
    print(f"core_p99_us_at_{REPORT_RATE}={at(policies[0], 'result')}")
    print(f"durable_p99_us_at_{REPORT_RATE}_every_batch={at('every_batch', 'durable')}")
    base = next((r for r in st if r["rate"] == REPORT_RATE), None)
    print(f"st_core_p99_us_at_{REPORT_RATE}={base['result']['p99_us']:.1f}" if base else
          f"st_core_p99_us_at_{REPORT_RATE}=")
    return 0
