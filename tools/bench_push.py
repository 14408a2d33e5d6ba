"""`xinf bench push`: WebSocket subscribers on one symbol while orders are placed through the gateway.

The bench starts `xinf serve` (every_batch) on a fresh data dir, opens
--subscribers connections in a process of their own (tools/ws_subscribers.py)
to its WebSocket port (ServeProcess.ws_port), on Binance's combined stream
`btcusdt@trade` + `btcusdt@depth@100ms`, and climbs the rate ladder: at each
offered rate it places signed orders through the gateway for --seconds with
the open-loop generator of `xinf bench gateway` (the same orders: half are
takers, so trades come at half the rate), waits a second for the last
window, and asks the subscribers what they got.

Per rate it prints:
- delivered = trade messages received over all subscribers / (subscribers x
  trades the exchange made in the run, from REST trades' ids): every
  subscriber must get every trade;
- depth: diffs contiguous on every connection (no gap), every connection
  ending at the same last u, at or below REST depth's lastUpdateId (a seq
  that leaves the book as it was makes no diff: the stream's last u may be
  below it);
- delivery latency p50/p99/max: a trade from its order's entry time (T: the
  whole path, HTTP, the pipeline, the WAL's fsync, settlement, the fan-out),
  a depth diff from when its window closed (E: the fan-out);
- the orders' acknowledgement rate, and the cores the server (its gateway
  worker apart) and the subscribers' process used: all share this machine.
A rate is kept up with when every order is acknowledged (>= 0.95 x offered),
delivered is complete, depth is whole, and the delivery p99 < --p99-bound-ms.
Ends with the highest rate kept up with, then `delivered=…/…` and
`p99_delivery_ms=…` of the highest rate run.
"""
from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import psutil

from xinfinity.accounts.signing import HMAC
from xinfinity.app.st import add_config_argument
from xinfinity.client import KeyFile, XinfClient
from xinfinity.runtime import progress
from xinfinity.tools.bench_gateway import (REQUEST_TIMEOUT_SEC, STOP_TIMEOUT_SEC, Server, fmt, fund, make_keys,
                                           order_requests, per_key)
from xinfinity.tools.loadgen import run_open_loop
from xinfinity.tools.serve_process import HOST, config_with

STREAMS = "/stream?streams=btcusdt@trade/btcusdt@depth@100ms"


def add_arguments(p) -> None:
    add_config_argument(p)
    p.add_argument("--subscribers", type=int, default=1000, help="WebSocket connections on the symbol (default 1000)")
    p.add_argument("--rates", default="50,100,200", help="offered orders/s, climbed in order (default 50,100,200)")
    p.add_argument("--rate", type=float, default=None, help="one offered rate instead of --rates")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each rate's run (default 10)")
    p.add_argument("--connections", type=int, default=8, help="HTTP connections placing orders, one key each")
    p.add_argument("--p99-bound-ms", type=float, default=50.0, help="delivery p99 bound (default 50 ms)")
    p.add_argument("--start-timeout", type=float, default=900.0, help="seconds to wait for the server")
    p.add_argument("--keep", metavar="DIR", help="put the data dir and logs here and keep them")


class Subscribers:
    """tools/ws_subscribers.py in a subprocess, driven line by line."""

    def __init__(self, ws_port: int, n: int):
        self.proc = subprocess.Popen([sys.executable, "-m", "xinfinity.tools.ws_subscribers", HOST, str(ws_port),
                                      str(n), STREAMS], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"the subscribers did not get ready: {line!r} (exit {self.proc.poll()})")

    def cpu_sec(self) -> float:
        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def ask(self, command: str) -> str:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.ask("quit")
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def market_marks(url: str) -> tuple[int, int]:
    """(last trade id, depth lastUpdateId) of BTCUSDT, as REST answers them."""
    with XinfClient(url) as c:
        trades = json.loads(c.raw("GET", "/api/v3/trades", {"symbol": "BTCUSDT", "limit": "1"}, signed=False)[2])
        depth = json.loads(c.raw("GET", "/api/v3/depth", {"symbol": "BTCUSDT", "limit": "5"}, signed=False)[2])
    return (trades[-1]["id"] if trades else 0), depth["lastUpdateId"]


@progress.reported
def main(args) -> int:
    rates = [args.rate] if args.rate else sorted(float(r) for r in args.rates.split(",") if r.strip())
    if not rates or rates[0] <= 0 or args.subscribers < 1:
        raise SystemExit("xinf bench push: needs positive rates and at least one subscriber")
    if args.connections < 2 or args.connections % 2:
        raise SystemExit("xinf bench push: --connections must be even (half buy, half sell)")
    root = pathlib.Path(args.keep) if args.keep else pathlib.Path(tempfile.mkdtemp(prefix="xinf-bench-push-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"bench push: {args.subscribers} subscribers on {STREAMS}; orders at {','.join(fmt(r) for r in rates)}/s "
          f"x {args.seconds:g} s over {args.connections} connections (half takers); files in {root}", flush=True)
    server = Server(root / "data", config_with(args.config, root / "push.yaml", fsync="every_batch"),
                    root / "serve.log", None)
    rows, subs = [], None
    try:
        print(f"server healthy after {server.wait_healthy(args.start_timeout):.1f} s", flush=True)
        prog = progress.current()
        prog.stage(f"making keys and connecting {args.subscribers} subscribers")
        keys = make_keys(server.data_dir, HMAC, args.connections, root / "keys")
        fund(server.url, KeyFile.load(server.data_dir / "operator.json"), keys,
             sum(per_key(r, args.seconds, args.connections) for r in rates))
        t0 = time.monotonic()
        subs = Subscribers(server.ws_port, args.subscribers)
        print(f"{args.subscribers} subscribers connected and subscribed in {time.monotonic() - t0:.1f} s", flush=True)
        for k, rate in enumerate(rates):
            prog.stage("", total=len(rates), unit="rates", done=k)
            prog.note = f"offering {fmt(rate)} orders/s for {args.seconds:g} s"
            tid0, _ = market_marks(server.url)
            subs.ask("reset")
            cpu0, sub_cpu0 = server.cpu_sec(), subs.cpu_sec()
            n_each = per_key(rate, args.seconds, args.connections)
            reqs = order_requests(keys, n_each, 1000.0 * args.connections / rate, f"{HOST}:{server.port}")
            rep = run_open_loop(HOST, server.port, reqs, rate, args.connections, pinned=True,
                                timeout_sec=REQUEST_TIMEOUT_SEC)
            time.sleep(1.0)             # the last 100 ms window, and what is still on its way
            cpu = {name: v - cpu0[name] for name, v in server.cpu_sec().items() if name in cpu0}
            sub_cpu = subs.cpu_sec() - sub_cpu0
            tid1, last_update_id = market_marks(server.url)
            got = json.loads(subs.ask("report"))
            expected = args.subscribers * (tid1 - tid0)
            depth_whole = got["gaps"] == 0 and got["last_u_min"] == got["last_u_max"] <= last_update_id
            kept = (rep.achieved_acks_per_sec >= 0.95 * rate and got["trades_total"] == expected
                    and got["disorder"] == 0 and depth_whole and got["p99_ms"] < args.p99_bound_ms)
            rows.append({"rate": rate, "kept": kept, "delivered": got["trades_total"], "expected": expected,
                         "p99": got["p99_ms"]})
            tr, dp = got["trade"], got["depth"]
            print(f"  {rate:>5.0f} orders/s: acked {rep.achieved_acks_per_sec:.0f}/s (p99 {rep.latency_ms_p99:.1f} ms); "
                  f"trades {tid1 - tid0}; delivered={got['trades_total']}/{expected} (fewest on one connection "
                  f"{got['trades_min']}, out of order {got['disorder']}); depth diffs {dp['messages']}, gaps "
                  f"{got['gaps']}, last u {got['last_u_min']}..{got['last_u_max']} (REST lastUpdateId {last_update_id}); "
                  f"delivery ms "
                  f"trade p50 {tr['p50_ms']:.1f} p99 {tr['p99_ms']:.1f} max {tr['max_ms']:.1f}, depth p50 "
                  f"{dp['p50_ms']:.1f} p99 {dp['p99_ms']:.1f} max {dp['max_ms']:.1f}; cores used: server "
                  f"{sum(cpu.values()) / rep.window_sec:.2f} (of which the gateway worker "
                  f"{sum(v for k, v in cpu.items() if k.startswith('gateway')) / rep.window_sec:.2f}), "
                  f"subscribers {sub_cpu / rep.window_sec:.2f}; kept up: {'yes' if kept else 'no'}", flush=True)
            if got["lost"]:
                print(f"  {got['lost']} subscriber connections were closed by the server", flush=True)
                break
    finally:
        if subs is not None:
            subs.close()
        print(f"server stopped (exit {server.stop(STOP_TIMEOUT_SEC)})", flush=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    kept = [r["rate"] for r in rows if r["kept"]]
    print(f"highest rate kept up with ({args.subscribers} subscribers): {fmt(max(kept)) if kept else 'none'} orders/s")
    if rows:
        last = rows[-1]
        print(f"rate={fmt(last['rate'])} subscribers={args.subscribers}")
        print(f"delivered={last['delivered']}/{last['expected']} p99_delivery_ms={last['p99']:.1f}")
    return 0
