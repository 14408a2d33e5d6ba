"""`xinf bench gateway`: signed orders at fixed offered rates against a real `xinf serve`.

For each fsync policy (--policies) the bench starts `xinf serve` itself, in a
subprocess on a free port, on a fresh data dir under one root (a temporary
directory, or --keep DIR), with a copy of the config whose `pipeline.fsync` is
that policy; the server is stopped (SIGTERM, SIGKILL after 60 s) before the
next policy and always at the end. Every process of the exchange and the load
generator share this machine's cores: the figures are those of one box.

For each key kind (--kinds) it makes one user and key per connection, straight
in the data dir's account store (the running server sees new keys), deposits
USDT and BTC to each through the operator key, then climbs the rate ladder
(--rates): at each offered rate it pre-signs every request before the clock
starts and runs the open-loop generator (tools/loadgen.py: latency from each
request's intended send time, so a server that falls behind shows it) for
--seconds, one key per connection, pinned, so each key's nonces arrive in
order. Before the ladder, --warmup-seconds of orders at the lowest rate (not
reported) bring every key, connection, cache and page of the server in. A
ladder stops after the first rate whose orders are clearly not sustained:
acknowledged below 0.95 x offered, or p99 above 5 x the bound (a p99 just
over the bound on this shared machine may be a scheduling hiccup, so the
ladder goes on; that rate still does not count as sustained).

The orders. Connection k is a buyer when k is even and a seller when odd, and
every order is a GTC LIMIT for 0.001 BTC at 30000.00 USDT on BTC_USDT. Requests
go out interleaved (connection 0, 1, 2, ...), so buys and sells alternate: an
order either trades in full with the oldest resting order of the other side or
rests, and the book, one price level holding one side at a time, stays as deep
as the count of buys minus sells so far (bounded by the in-flight requests).
Half the orders trade as takers; the other half are the makers they hit. Fees
are taken from what a user receives, so the deposits (sized from the ladder)
cover every order.

Sustained: acknowledged orders (HTTP 2xx, code 0) per second at least 0.95 x
the offered rate, and p99 acknowledgement latency below --p99-bound-ms
(default 50 ms), both as loadgen.Report defines them.

Where the time goes, measured from outside (the server's code is not touched):
at each rate of the first policy the same generator also sends
  (a) GET /api/v1/health, unsigned: HTTP parsing, routing and the answer;
  (b) GET /api/v1/private/balances/all, signed: (a) + signature check + nonce
      write (SQLite) + a balance read;
  (c) the order: (b)'s HTTP and auth + the ring to UBSCore, the ME, the WAL's
      fsync under the policy, and the answer back through settlement.
Each run also prints the CPU each server process spent per request (psutil's
user + system time of the pids serve.json names, before and after the run,
over the requests sent): on a machine this small CPU is the budget the
stages share, so (c)'s gateway figure against (a)'s and (b)'s shows what auth
and the order route cost the gateway, and the rest shows what the pipeline's
processes cost per order.
The breakdown prints each one's p50 and p99, and the differences of the p50s:
auth ~ (b) - (a), pipeline ~ (c) - (b). These are differences of medians of
separate runs at the same offered rate, so they are estimates: (b) includes a
store read and (c) does not, (c) hashes a body and (b) does not, and queueing
inflates every figure near saturation (read the low rates). The server's own
per-stage timings are the observability issue's (metrics in shared memory).

The bench checks what it reports: after each ladder it asks the server for
one buyer's orders and refuses to finish unless every acknowledged order of
that connection (up to the query's limit of 1000) is there.

Ends with (all under every_batch): max_sustained_orders_per_sec (Ed25519),
max_sustained_orders_per_sec_hmac, p99_ack_ms_at_1000 (Ed25519 at 1000/s
offered); a figure not measured in this run prints as n/a.
"""
from __future__ import annotations

import json
import math
import os
import pathlib
import shutil
import tempfile
import time

import psutil

from xinfinity.accounts.cli import accounts_db, key_file
from xinfinity.accounts.signing import ED25519, HMAC
from xinfinity.accounts.store import AccountStore
from xinfinity.app.st import add_config_argument
from xinfinity.client import KeyFile, XinfClient
from xinfinity.client import keys as client_keys
from xinfinity.runtime import progress
from xinfinity.tools.serve_process import HOST, ServeProcess, config_with
from xinfinity.tools.loadgen import Report, build_request, build_signed_requests, interleave, run_open_loop

POLICIES = ("every_batch", "interval_ms", "off")
KINDS = (ED25519, HMAC)
DEFAULT_RATES = "500,1000,2000,3000,4000,5000,6000"

SYMBOL, PRICE, QTY = "BTC_USDT", "30000.00", "0.001"
ORDER_PATH = "/api/v1/private/order"
BALANCES_PATH = "/api/v1/private/balances/all"
HEALTH_PATH = "/api/v1/health"
STOP_TIMEOUT_SEC = 60
REQUEST_TIMEOUT_SEC = 15
ORDERS_LIMIT = 1000          # the most GET /private/orders answers at once


def add_arguments(p) -> None:
    add_config_argument(p)
    p.add_argument("--rates", default=DEFAULT_RATES, help="offered order rates per second, ascending "
                                                           "(default %(default)s)")
    p.add_argument("--seconds", type=float, default=5.0, help="seconds of load per rate (default %(default)s)")
    p.add_argument("--connections", type=int, default=32,
                   help="connections, one user and key each; even: half buy, half sell (default %(default)s)")
    p.add_argument("--policies", default="every_batch,interval_ms",
                   help=f"WAL fsync policies, one server each ({', '.join(POLICIES)}; default %(default)s)")
    p.add_argument("--kinds", default="ed25519,hmac", help="key kinds (default %(default)s)")
    p.add_argument("--workers", type=int, default=None, help="gateway processes (default: the config's)")
    p.add_argument("--p99-bound-ms", type=float, default=50.0,
                   help="a rate is sustained only with p99 below this (default %(default)s)")
    p.add_argument("--warmup-seconds", type=float, default=2.0,
                   help="orders at the lowest rate before the ladder, not reported (default %(default)s)")
    p.add_argument("--no-breakdown", action="store_true",
                   help="orders only: skip the health and signed-read runs")
    p.add_argument("--start-timeout", type=float, default=900.0,
                   help="seconds to wait for the server's health (the first start compiles; default %(default)s)")
    p.add_argument("--keep", default=None, metavar="DIR",
                   help="put the data dirs, configs, key files and server logs here and keep them")


# -- the server -------------------------------------------------------------------------------

class Server(ServeProcess):
    """`xinf serve` (tools/serve_process.py) with the bench's config, and its processes' CPU."""

    def __init__(self, data_dir: pathlib.Path, config: pathlib.Path, log: pathlib.Path, workers: int | None):
        super().__init__(data_dir, log=log,
                         args=["--config", config, *(["--workers", workers] if workers is not None else [])])

    def wait_healthy(self, timeout_sec: float) -> float:
        """Seconds until GET /health answers; progress every 15 s (the first start compiles)."""
        t0 = time.monotonic()
        prog = progress.current()
        prog.stage("starting xinf serve")
        prog.note = lambda: f"its log: {self.tail(1).strip() or 'empty so far'}"

        def waiting(waited):
            last = self.tail(1).strip() or "(no output yet)"
            print(f"  waiting for the server: {waited:.0f} s; its log: {last}", flush=True)

        if not self.wait_ready(timeout_sec, progress=waiting):
            raise RuntimeError(f"xinf serve not healthy after {timeout_sec:.0f} s (exit {self.proc.poll()}):\n"
                               f"{self.tail()}")
        return time.monotonic() - t0

    def cpu_sec(self) -> dict[str, float]:
        """User + system CPU seconds so far of each process serve.json names (the supervisor as `serve`)."""
        info = self.info()
        if info is None:
            return {}
        out = {}
        for name, pid in {"serve": info["pid"], **info["processes"]}.items():
            try:
                t = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            out[name] = t.user + t.system
        return out


# -- users, keys, money -------------------------------------------------------------------------

def make_keys(data_dir: pathlib.Path, kind: str, n: int, keys_dir: pathlib.Path) -> list[KeyFile]:
    """n users bench-<kind>-<k>, one key each, written to the account store the server reads; the key
    files (the shape `xinf apikey create --json` prints) go to keys_dir, readable by the owner only."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    out = []
    with AccountStore(accounts_db(data_dir)) as store:
        for k in range(n):
            user_id, _ = store.get_or_create_user(f"bench-{kind}-{k}")
            key = store.create_api_key(user_id, label="bench gateway", kind=kind)
            doc = key_file(key, user_id)
            fd = os.open(keys_dir / f"bench-{kind}-{k}.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f)
            out.append(KeyFile.from_json(doc))
    return out


def fund(url: str, operator: KeyFile, keys: list[KeyFile], orders_per_key: int) -> None:
    """Enough USDT for every order as a buy and BTC for every order as a sell, to every user, with 10 % spare."""
    usdt = math.ceil(orders_per_key * float(QTY) * float(PRICE) * 1.1) + 1000
    btc = f"{orders_per_key * float(QTY) * 1.1 + 1:.8f}"
    with XinfClient(url, operator, timeout=30) as op:
        for key in keys:
            op.deposit(key.user_id, "USDT", str(usdt))
            op.deposit(key.user_id, "BTC", btc)


# -- requests ---------------------------------------------------------------------------------------

def order_body(side: str) -> bytes:
    return json.dumps({"symbol": SYMBOL, "side": side, "order_type": "LIMIT", "time_in_force": "GTC",
                       "price": PRICE, "qty": QTY}, separators=(",", ":")).encode()


def per_key(rate: float, seconds: float, connections: int) -> int:
    return max(1, math.ceil(rate * seconds / connections))


def order_requests(keys: list[KeyFile], n_each: int, step_ms: float, host: str) -> list[bytes]:
    """n_each orders per key (even index: buyer), signed, interleaved for pinned connections."""
    bodies = (order_body("BUY"), order_body("SELL"))
    lists = []
    for k, key in enumerate(keys):
        body = bodies[k % 2]
        lists.append(build_signed_requests(key, n_each, lambda i, b=body: b, ORDER_PATH, host,
                                           client_keys.next_nonce(key.api_key), step_ms))
    return interleave(*lists)


def signed_get_requests(keys: list[KeyFile], n_each: int, step_ms: float, host: str, path: str) -> list[bytes]:
    """As build_signed_requests, for a GET (no body), interleaved."""
    lists = []
    for key in keys:
        start = client_keys.next_nonce(key.api_key)
        nonce, reqs = start - 1, []
        for i in range(n_each):
            nonce = max(start + int(i * step_ms), nonce + 1)
            reqs.append(build_request("GET", path, host, b"",
                                      (("Authorization", key.authorization(nonce, "GET", path)),)))
        client_keys.reserve_nonces(key.api_key, nonce)
        lists.append(reqs)
    return interleave(*lists)


def unsigned_get_requests(n: int, host: str, path: str) -> list[bytes]:
    one = build_request("GET", path, host)
    return [one] * n


# -- runs -------------------------------------------------------------------------------------------

def run(what: str, server: Server, requests: list[bytes], rate: float, connections: int, bound_ms: float
        ) -> Report:
    cpu0 = server.cpu_sec()
    rep = run_open_loop(HOST, server.port, requests, rate, connections, p99_bound_ms=bound_ms, pinned=True,
                        timeout_sec=REQUEST_TIMEOUT_SEC)
    cpu1 = server.cpu_sec()
    errors = " ".join(f"{s}/{c}:{k}" for (s, c), k in sorted(rep.errors.items(), key=str)) or "none"
    print(f"  {what:9} offered={rate:>6.0f}/s acked={rep.achieved_acks_per_sec:>7.0f}/s "
          f"p50={rep.latency_ms_p50:7.2f} p99={rep.latency_ms_p99:8.2f} p99.9={rep.latency_ms_p999:8.2f} "
          f"max={rep.latency_ms_max:8.2f} ms  acks={rep.acks}/{rep.requests} errors={errors} "
          f"sustained={'yes' if rep.sustained else 'no'}  (generator: cpu {rep.generator_cpu_sec:.2f} s, "
          f"lag max {rep.dispatch_lag_ms_max:.1f} ms)", flush=True)
    spent = {k: cpu1[k] - cpu0[k] for k in cpu1 if k in cpu0}
    if spent:
        per = " ".join(f"{k} {v * 1e3 / rep.requests:.2f}" for k, v in spent.items())
        print(f"  {'':9} server cpu ms/request: {per} (all {sum(spent.values()) * 1e3 / rep.requests:.2f}; "
              f"{sum(spent.values()) / rep.window_sec:.2f} cores over the run)", flush=True)
    time.sleep(0.5)     # let the server settle before the next run
    return rep


def ladder(server: Server, keys: list[KeyFile], rates: list[float], args, breakdown: tuple[bool, bool]
           ) -> list[dict]:
    """Each rate: (health, balances if asked), orders; stops after the first rate whose orders are clearly
    not sustained. Returns one dict per rate: {"rate", "order", "health", "balances"} (Reports or None)."""
    host = f"{HOST}:{server.port}"
    c = args.connections
    rows = []
    prog = progress.current()
    for k, rate in enumerate(rates):
        prog.stage("", total=len(rates), unit="rates", done=k)
        prog.note = f"offering {fmt(rate)} orders/s for {args.seconds:g} s"
        n_each = per_key(rate, args.seconds, c)
        step_ms = 1000.0 * c / rate
        row = {"rate": rate, "health": None, "balances": None}
        if breakdown[0]:
            row["health"] = run("health", server, unsigned_get_requests(n_each * c, host, HEALTH_PATH),
                                rate, c, args.p99_bound_ms)
        if breakdown[1]:
            row["balances"] = run("balances", server,
                                  signed_get_requests(keys, n_each, step_ms, host, BALANCES_PATH),
                                  rate, c, args.p99_bound_ms)
        row["order"] = run("order", server, order_requests(keys, n_each, step_ms, host),
                           rate, c, args.p99_bound_ms)
        rows.append(row)
        if clearly_not_sustained(row["order"], rate, args.p99_bound_ms):
            break
    return rows


def clearly_not_sustained(rep: Report, rate: float, bound_ms: float) -> bool:
    return rep.achieved_acks_per_sec < 0.95 * rate or rep.latency_ms_p99 > 5 * bound_ms


def warm_up(server: Server, keys: list[KeyFile], rate: float, seconds: float, connections: int) -> None:
    if seconds <= 0:
        return
    n_each = per_key(rate, seconds, connections)
    reqs = order_requests(keys, n_each, 1000.0 * connections / rate, f"{HOST}:{server.port}")
    rep = run_open_loop(HOST, server.port, reqs, rate, connections, pinned=True, timeout_sec=REQUEST_TIMEOUT_SEC)
    print(f"  warm-up: {rep.acks}/{rep.requests} orders acknowledged at {rate:.0f}/s, "
          f"p99 {rep.latency_ms_p99:.2f} ms (not reported)", flush=True)
    time.sleep(0.5)


def check_orders_stored(server: Server, key: KeyFile, rows: list[dict], connections: int) -> int:
    """The acknowledged orders of connection 0 (key 0) are all in the server's order store (up to the
    query limit); returns how many the store has. Refuses (RuntimeError) otherwise."""
    acked = 0
    for row in rows:
        rep = row["order"]
        mine = rep.status[0::connections]
        acked += int(((mine >= 200) & (mine < 300)).sum())
    with XinfClient(server.url, key, timeout=30) as cl:
        stored = len(cl.orders(symbol=SYMBOL, status="all", limit=ORDERS_LIMIT))
    if stored < min(acked, ORDERS_LIMIT):
        raise RuntimeError(f"user {key.user_id}: {acked} orders acknowledged, the server lists {stored}")
    return stored


# -- the report -------------------------------------------------------------------------------------

def max_sustained(rows: list[dict]) -> float:
    return max((r["rate"] for r in rows if r["order"].sustained), default=0)


def print_breakdown(policy: str, kind: str, rows: list[dict]) -> None:
    if not any(r["balances"] for r in rows):
        return
    print(f"breakdown ({policy}, {kind}): latency ms p50/p99 of each request at the same offered rate;")
    print("  auth ~ p50(b) - p50(a): signature, nonce write, store read;"
          " pipeline ~ p50(c) - p50(b): ring, UBSCore, ME, WAL fsync, settlement")
    print(f"  {'rate/s':>7} {'(a) health':>16} {'(b) balances':>16} {'(c) order':>16} {'auth':>8} {'pipeline':>9}")
    for r in rows:
        a, b, c = r["health"], r["balances"], r["order"]

        def pp(x):
            return f"{x.latency_ms_p50:.2f}/{x.latency_ms_p99:.2f}" if x is not None else "-"

        auth = f"{b.latency_ms_p50 - a.latency_ms_p50:.2f}" if a is not None and b is not None else "-"
        pipe = f"{c.latency_ms_p50 - b.latency_ms_p50:.2f}" if b is not None else "-"
        print(f"  {r['rate']:>7.0f} {pp(a):>16} {pp(b):>16} {pp(c):>16} {auth:>8} {pipe:>9}")


def fmt(x, digits: int = 0) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


@progress.reported
def measure(args, rates: list[float], policies: list[str], kinds: list[str]) -> dict[tuple[str, str], list[dict]]:
    """Each policy's server, each kind's ladder (`ladder`'s rows), printed as they run; the servers are
    stopped and (without --keep) their files removed before it returns. args: this module's options."""
    orders_each = (sum(per_key(r, args.seconds, args.connections) for r in rates)
                   + per_key(rates[0], args.warmup_seconds, args.connections))
    root = pathlib.Path(args.keep) if args.keep else pathlib.Path(tempfile.mkdtemp(prefix="xinf-bench-gw-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"bench gateway: rates {','.join(fmt(r) for r in rates)}/s x {args.seconds:g} s, "
          f"{args.connections} connections (one key each; half buy, half sell 0.001 BTC_USDT @ {PRICE} GTC), "
          f"p99 bound {args.p99_bound_ms:g} ms, policies {policies}, kinds {kinds}, "
          f"gateway workers {args.workers or 'from the config'}; files in {root}", flush=True)
    results: dict[tuple[str, str], list[dict]] = {}
    health: dict[float, Report | None] = {}
    prog = progress.current()
    try:
        for pi, policy in enumerate(policies):
            data_dir = root / policy
            config = config_with(args.config, root / f"{policy}.yaml", fsync=policy)
            server = Server(data_dir, config, root / f"{policy}-serve.log", args.workers)
            prog.context = f"{policy} ({pi + 1} of {len(policies)})"
            try:
                print(f"{policy}: starting xinf serve on {server.url} (log {server.log_path})", flush=True)
                print(f"{policy}: healthy after {server.wait_healthy(args.start_timeout):.1f} s; load average "
                      f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
                operator = KeyFile.load(data_dir / "operator.json")
                for ki, kind in enumerate(kinds):
                    prog.context = f"{policy} ({pi + 1} of {len(policies)}), {kind}"
                    prog.stage("making keys and funding the users")
                    keys = make_keys(data_dir, kind, args.connections, root / f"{policy}-keys")
                    fund(server.url, operator, keys, orders_each)
                    print(f"{policy} {kind}: {len(keys)} users funded", flush=True)
                    want = (not args.no_breakdown and pi == 0 and ki == 0, not args.no_breakdown and pi == 0)
                    warm_up(server, keys, rates[0], args.warmup_seconds, args.connections)
                    rows = ladder(server, keys, rates, args, want)
                    # (a) is unsigned: one run serves every kind's breakdown.
                    for row in rows:
                        health.setdefault(row["rate"], row["health"])
                        row["health"] = row["health"] or health.get(row["rate"])
                    stored = check_orders_stored(server, keys[0], rows, args.connections)
                    print(f"{policy} {kind}: checked: user {keys[0].user_id}'s acknowledged orders are in the "
                          f"store ({stored} listed)", flush=True)
                    results[(policy, kind)] = rows
                    print_breakdown(policy, kind, rows)
            finally:
                code = server.stop(STOP_TIMEOUT_SEC)
                print(f"{policy}: server stopped (exit {code})", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return results


def main(args) -> int:
    rates = sorted(float(r) for r in args.rates.split(",") if r.strip())
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if not rates or rates[0] <= 0:
        raise SystemExit("xinf bench gateway: --rates needs positive rates")
    if args.connections < 2 or args.connections % 2:
        raise SystemExit("xinf bench gateway: --connections must be even (half buy, half sell)")
    if set(policies) - set(POLICIES) or set(kinds) - set(KINDS):
        raise SystemExit(f"xinf bench gateway: --policies from {POLICIES}, --kinds from {KINDS}")
    results = measure(args, rates, policies, kinds)
    print(f"load average at the end (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores (other work on the machine competes with the server and the generator)")
    print("highest sustained order rate (offered/s; acks >= 0.95 x offered and "
          f"p99 < {args.p99_bound_ms:g} ms):")
    for (policy, kind), rows in results.items():
        last = rows[-1]["order"]
        print(f"  {policy:12} {kind:8} {fmt(max_sustained(rows)):>6}   (ladder stopped at {fmt(rows[-1]['rate'])}/s: "
              f"acked {last.achieved_acks_per_sec:.0f}/s, p99 {last.latency_ms_p99:.2f} ms)")
    acks = sum(r["order"].acks for rows in results.values() for r in rows)
    print(f"orders_acked_total={acks}")
    eb_ed, eb_hm = results.get(("every_batch", ED25519)), results.get(("every_batch", HMAC))
    at_1000 = next((r["order"].latency_ms_p99 for r in eb_ed or [] if r["rate"] == 1000), None)
    print(f"max_sustained_orders_per_sec={fmt(max_sustained(eb_ed) if eb_ed else None)}")
    print(f"max_sustained_orders_per_sec_hmac={fmt(max_sustained(eb_hm) if eb_hm else None)}")
    print(f"p99_ack_ms_at_1000={fmt(at_1000, 3)}")
    return 0
