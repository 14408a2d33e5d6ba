"""`xinf drill serve`: SIGKILL processes of a running `xinf serve` under
signed traffic, and prove that no acknowledged command was lost and none
applied twice.

The drill starts `xinf serve` on a data dir (a temporary one, or --data-dir)
with a config whose `pipeline.restarts` covers every kill, makes a few users
and their keys, and sends each of them crossing limit orders, cancels of its
own open orders and deposits (through the operator's key), one thread per
user. Every request is recorded with its outcome:

    ok        answered with code 0: durable, and its seq (and order id) known
    rejected  a clean refusal (a 4xx code): durable as well, or never sent on
    unknown   the connection dropped, timed out, or a 5xx answer: the command
              may or may not have happened
    unsent    no connection could be opened: nothing left the client

Nothing is ever resent: a request whose outcome is unknown stays unknown,
which is what a retry without a client order id would make a duplicate of.

Kill k happens once a seeded number of answers (ok or rejected) arrived since
the server last became healthy; its target is seeded too (--target any: one
of the gateway, UBSCore, the ME, the journal and settlement each time). The
drill then waits until serve.json's `restarts` has grown and /health
answers: recovery_ms runs from the SIGKILL to that answer (the supervisor
seeing the death, stopping the rest, recovering the state from the WAL, the
new processes starting). At the end the server is stopped with SIGTERM and
the data dir is checked, the server no longer running:

1. lost: an acknowledged command that is not in the WAL at the seq its answer
   gave, with the fields it was sent with (user, kind, cid hash, order id,
   asset and amount), or whose effect the order store (DIR/orders.db) does
   not show: a placed order with its id, user, cid hash and (if final) its
   status; a cancelled order cancelled. A refused place whose command is in
   the WAL must have a refused order.
2. duplicated: a command in the WAL more than once: a cid hash among the
   places of one user, a deposit's (user, asset, amount) (each deposit's
   amount carries its request number in its lowest digits), a cancel of one
   order (the drill cancels an order at most once). Only the commands after
   the WAL's last seq at the drill's start are counted (a reused data dir).
3. the state: a single-process replay of the whole WAL (storage/recovery.py
   `recover`) gives the balances of every user and asset, and the open
   orders (ids, filled qty), that the order store holds; its applied_seq is
   the WAL's last seq.
4. the audit store (DATA/audit.db, written by the audit stage from the WAL):
   it holds exactly the events a replay of the whole WAL emits, each once,
   with its command's entry time, and its mark is the WAL's last seq
   (storage/audit `differences`): a kill mid-batch lost or doubled no row.

A kill passes if the server came back healthy, nothing sent between it and
the kill before it was lost or duplicated, and the state check held.
"""
from __future__ import annotations

import collections
import os
import pathlib
import shutil
import signal
import tempfile
import threading
import time
from typing import NamedTuple

import msgspec
import numpy as np

from xinfinity.config import CONFIG_DIR, load_yaml
from xinfinity.engine import records as R
from xinfinity.runtime import progress
from xinfinity.tools.serve_process import ServeProcess, config_with

TARGETS = ("gateway", "ubscore", "matching", "journal", "settlement", "audit")
SYMBOL = "BTC_USDT"
PRICE_USDT = 20000              # the traffic's prices are this, give or take PRICE_SPREAD dollars
PRICE_SPREAD = 5
QTY_STEP_BTC_UNITS = 10_000     # orders are 1 to 49 steps of 0.0001 BTC
INITIAL = {"USDT": 1_000_000, "BTC": 100}       # each user's first deposits, whole units
TOP_UP = {"USDT": 1_000, "BTC": 1}
STATUS_CODES = {"NEW": R.ST_ACCEPTED, "PARTIALLY_FILLED": R.ST_PARTIALLY_FILLED, "FILLED": R.ST_FILLED,
                "CANCELED": R.ST_CANCELLED, "EXPIRED": R.ST_EXPIRED, "REJECTED": R.ST_REJECTED}
FINAL = ("FILLED", "CANCELED", "EXPIRED")
OPEN_STATUSES = (R.ST_ACCEPTED, R.ST_PARTIALLY_FILLED)
OK, REJECTED, UNKNOWN, UNSENT = "ok", "rejected", "unknown", "unsent"


def add_arguments(p) -> None:
    from xinfinity.app.st import add_config_argument
    p.add_argument("--kills", type=int, default=10, help="how many times to kill a process")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", choices=TARGETS + ("any",), default="any",
                   help="which process to kill (any: a seeded choice each time; gateway: a gateway worker)")
    p.add_argument("--data-dir", default=None, help="the exchange's data dir (default: a temporary one, removed after)")
    p.add_argument("--port", type=int, default=None, help="the server's port (default: a free one)")
    p.add_argument("--users", type=int, default=4, help="trading users, one client thread each")
    p.add_argument("--gap", type=int, default=40,
                   help="mean answers between a recovery and the next kill (seeded, from gap/2 to 3*gap/2)")
    p.add_argument("--start-timeout", type=float, default=900, help="seconds the first start may take (compiling)")
    p.add_argument("--recovery-timeout", type=float, default=120, help="seconds a restart may take")
    add_config_argument(p)


class Request(msgspec.Struct):
    """One request the drill sent, and what came of it."""
    n: int                  # request number, unique in the run: in the cid and a deposit's lowest digits
    epoch: int              # kills done when it was sent: kill epoch + 1 is the one it may suffer from
    kind: str               # "place" | "cancel" | "deposit"
    user_id: int
    cid: str = ""           # place
    order_id: int = 0       # place: from the answer; cancel: the order named
    asset_id: int = 0       # deposit
    amount: int = 0         # deposit, in the asset's units
    outcome: str = ""       # OK | REJECTED | UNKNOWN | UNSENT
    seq: int = 0            # from the answer (place, deposit)
    status: str = ""        # the order's status in the answer
    code: int = 0           # the refusal's code


class Kill(NamedTuple):
    target: str             # the process name in serve.json
    pid: int
    acked_before: int
    recovery_ms: float | None       # None: the server did not come back


class Plan(NamedTuple):
    gaps: np.ndarray        # answers between a recovery (or the start) and each kill
    targets: list[str]      # TARGETS entries


def plan(kills: int, seed: int, target: str, gap: int) -> Plan:
    """Seeded: when each kill comes (in answers since the last recovery) and what it hits."""
    rng = np.random.default_rng(seed)
    gaps = rng.integers(max(1, gap // 2), max(2, gap + gap // 2 + 1), kills)
    names = [TARGETS[int(i)] for i in rng.integers(0, len(TARGETS), kills)] if target == "any" \
        else [target] * kills
    return Plan(gaps, names)


def units_text(units: int, decimals: int) -> str:
    """An amount in an asset's units as the decimal string the API takes."""
    whole, frac = divmod(units, 10 ** decimals)
    return f"{whole}.{frac:0{decimals}d}"


# -- the traffic ----------------------------------------------------------------------------------


class Traffic:
    """The users' threads and the record of every request."""

    def __init__(self, url: str, operator, users: list, assets: dict, seed: int, run: str):
        """users: (user_id, KeyFile) each; assets: name -> (id, decimals); run: in every cid (unique per run)."""
        self.url, self.operator, self.users, self.assets, self.seed, self.run = url, operator, users, assets, seed, run
        self.requests: list[Request] = []
        self.lock = threading.Lock()        # the request counter, the record, the figures
        self.operator_lock = threading.Lock()   # one operator request at a time: its nonces arrive in order
        self.next_n = 1
        self.answered = 0                   # ok + rejected
        self.epoch = 0
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        from xinfinity.client import XinfClient
        self.op_client = XinfClient(url, operator, timeout=30)

    def new(self, kind: str, user_id: int, **fields) -> Request:
        with self.lock:
            r = Request(self.next_n, self.epoch, kind, user_id, **fields)
            self.next_n += 1
            self.requests.append(r)
        return r

    def send(self, r: Request, call) -> dict | None:
        """Run call(), recording the outcome; the answer's data when ok."""
        from xinfinity.client import ApiError, ConnectionLost, ServerUnreachable
        data = None
        try:
            data = call()
            r.outcome = OK
        except ServerUnreachable:
            r.outcome = UNSENT
        except ConnectionLost:
            r.outcome = UNKNOWN
        except ApiError as e:
            # 5xx (the ack timed out, an internal error) or no envelope: the outcome is not known.
            r.outcome = UNKNOWN if e.code is None or e.code >= 5000 or e.http_status >= 500 else REJECTED
            r.code = e.code or 0
        if r.outcome in (OK, REJECTED):
            with self.lock:
                self.answered += 1
        return data

    def deposit(self, user_id: int, asset: str, whole: int) -> Request:
        """A deposit whose amount ends in its request number (unique: a second application shows)."""
        asset_id, decimals = self.assets[asset]
        r = self.new("deposit", user_id, asset_id=asset_id)
        r.amount = whole * 10 ** decimals + r.n
        with self.operator_lock:
            data = self.send(r, lambda: self.op_client.deposit(user_id, asset, units_text(r.amount, decimals)))
        if data is not None:
            r.seq = int(data["seq"])
        return r

    def start(self) -> None:
        for k, (user_id, key) in enumerate(self.users):
            t = threading.Thread(target=self._run, args=(k, user_id, key), name=f"drill-user{k}", daemon=True)
            t.start()
            self.threads.append(t)

    def join(self) -> None:
        """Stop the threads (each ends its request in flight) and close the operator's connection."""
        self.stop.set()
        for t in self.threads:
            t.join()
        self.op_client.close()

    def _run(self, k: int, user_id: int, key) -> None:
        try:
            self._trade(k, user_id, key)
        except BaseException as e:         # a bug of the drill's, reported at the end
            self.errors.append(e)

    def _trade(self, k: int, user_id: int, key) -> None:
        from xinfinity.client import XinfClient
        rng = np.random.default_rng([self.seed, k])
        open_orders: list[int] = []         # own orders an answer said are open, never cancelled yet
        with XinfClient(self.url, key, timeout=30) as c:
            while not self.stop.is_set():
                x = rng.random()
                if x < 0.06:
                    asset = "USDT" if rng.random() < 0.5 else "BTC"
                    r = self.deposit(user_id, asset, TOP_UP[asset])
                elif x < 0.26 and open_orders:
                    order_id = open_orders.pop(int(rng.integers(0, len(open_orders))))
                    r = self.new("cancel", user_id, order_id=order_id)
                    data = self.send(r, lambda: c.cancel(order_id))
                    if data is not None:
                        r.status = data["order_status"]
                else:
                    r = self.new("place", user_id)
                    r.cid = f"drill-{self.run}-{r.n}"
                    side = "BUY" if rng.random() < 0.5 else "SELL"
                    price = f"{PRICE_USDT + int(rng.integers(-PRICE_SPREAD, PRICE_SPREAD + 1))}.00"
                    qty = units_text(int(rng.integers(1, 50)) * QTY_STEP_BTC_UNITS, 8)
                    data = self.send(r, lambda: c.place(SYMBOL, side, "LIMIT", qty=qty, price=price, cid=r.cid))
                    if data is not None:
                        r.order_id, r.seq, r.status = int(data["order_id"]), int(data["seq"]), data["order_status"]
                        if r.status not in FINAL:
                            open_orders.append(r.order_id)
                if r.outcome in (UNKNOWN, UNSENT):
                    time.sleep(0.05)        # the server is down or restarting: do not spin on it


# -- the checks -----------------------------------------------------------------------------------


class Verdict(NamedTuple):
    lost: list[Request]             # acknowledged, and not in the WAL or the order store as answered
    duplicated: list[int]           # for each command in the WAL once too often: the epoch of its request
    state_diffs: list[str]          # how the order store differs from a replay of the WAL
    wal_commands: int
    audit_diffs: list[str]          # how the audit store differs from a replay's events


def check(data_dir: pathlib.Path, requests: list[Request], base_seq: int = 0) -> Verdict:
    """The checks of the module docstring, on a data dir no server runs on."""
    from xinfinity.services.answers import StepEvents
    from xinfinity.storage.order_store import OrderStore, cid_hash
    from xinfinity.storage.recovery import recover
    # The WAL, read once, and its replay from the first seq (no snapshot): the state, and every event
    # for the audit store's check.
    replayed = StepEvents()
    core, j, _ = recover(data_dir / "wal", sink=replayed, at_most=0, prefault=False)
    cmds = np.concatenate([j.deposits, j.commands])
    seqs = cmds["seq"]
    assert np.all(np.diff(seqs) > 0), "the WAL's seqs are not increasing"
    store = OrderStore(data_dir / "orders.db", {s.id: (s.base_asset_id, s.quote_asset_id) for s in j.symbols})
    try:
        lost = [r for r in requests if r.outcome in (OK, REJECTED) and not _held(r, cmds, seqs, store, cid_hash)]
        duplicated = _duplicates(cmds[seqs > base_seq], requests, cid_hash)
        diffs = _state_diffs(core, store, int(seqs[-1]) if len(seqs) else 0)
    finally:
        store.close()
    return Verdict(lost, duplicated, diffs, len(cmds), _audit_diffs(data_dir, cmds, replayed.take()))


def _audit_diffs(data_dir: pathlib.Path, cmds: np.ndarray, ev) -> list[str]:
    """The audit store against ev, the events of a single-process replay of the whole WAL (cmds)."""
    from xinfinity.storage.audit import differences
    from xinfinity.storage.audit.sqlite import SqliteAuditStore
    store = SqliteAuditStore(data_dir / "audit.db")
    try:
        return differences(store, ev, cmds["ts"].astype(np.int64), int(cmds["seq"][-1]) if len(cmds) else 0)
    finally:
        store.close()


def _at(cmds: np.ndarray, seqs: np.ndarray, seq: int):
    i = int(np.searchsorted(seqs, seq))
    return cmds[i] if i < len(seqs) and seqs[i] == seq else None


def _held(r: Request, cmds, seqs, store, cid_hash) -> bool:
    """An acknowledged request is in the WAL and its effect in the order store, as it was answered."""
    if r.kind == "place":
        h = cid_hash(r.cid)
        if r.outcome == REJECTED:           # refused by the gateway (never sent) or by the core (an order refused)
            mine = cmds[(cmds["kind"] == R.CMD_PLACE) & (cmds["user_id"] == r.user_id) & (cmds["cid"] == h)]
            if not len(mine):
                return True
            row = store.order_by_cid(r.user_id, h)
            return row is not None and row.status == R.ST_REJECTED
        c = _at(cmds, seqs, r.seq)
        if c is None or (int(c["kind"]), int(c["user_id"]), int(c["cid"])) != (R.CMD_PLACE, r.user_id, h):
            return False
        if int(c["order_id"]) not in (0, r.order_id) or (c["order_id"] == 0 and r.order_id != r.seq):
            return False
        row = store.order(r.order_id)
        if row is None or (row.user_id, row.cid_hash, row.seq) != (r.user_id, h, r.seq):
            return False
        if r.status in FINAL:
            return row.status == STATUS_CODES[r.status]
        return row.status != R.ST_REJECTED
    if r.kind == "cancel":
        if r.outcome == REJECTED:
            return True                     # the order had left the book (or was never found): nothing to hold
        n = np.count_nonzero((cmds["kind"] == R.CMD_CANCEL) & (cmds["user_id"] == r.user_id)
                             & (cmds["order_id"] == r.order_id))
        row = store.order(r.order_id)
        return n >= 1 and row is not None and row.status == R.ST_CANCELLED
    if r.kind == "deposit":
        if r.outcome == REJECTED:
            return True
        c = _at(cmds, seqs, r.seq)
        return c is not None and (int(c["kind"]), int(c["user_id"]), int(c["symbol"]), int(c["amount"])) == \
            (R.CMD_DEPOSIT, r.user_id, r.asset_id, r.amount)
    raise ValueError(f"request kind {r.kind!r}")


def _duplicates(cmds: np.ndarray, requests: list[Request], cid_hash) -> list[int]:
    """One entry per command found in the WAL once too often: the epoch of the request it came from (-1: none)."""
    epoch_of = {}
    for r in requests:
        if r.kind == "place":
            epoch_of[("place", r.user_id, cid_hash(r.cid))] = r.epoch
        elif r.kind == "cancel":
            epoch_of[("cancel", r.user_id, r.order_id)] = r.epoch
        else:
            epoch_of[("deposit", r.user_id, r.asset_id, r.amount)] = r.epoch
    keys = collections.Counter()
    for c in cmds[cmds["kind"] == R.CMD_PLACE][["user_id", "cid"]].tolist():
        if c[1]:
            keys[("place", *c)] += 1
    for c in cmds[cmds["kind"] == R.CMD_CANCEL][["user_id", "order_id"]].tolist():
        keys[("cancel", *c)] += 1
    for c in cmds[cmds["kind"] == R.CMD_DEPOSIT][["user_id", "symbol", "amount"]].tolist():
        keys[("deposit", *c)] += 1
    return [epoch_of.get(k, -1) for k, n in keys.items() for _ in range(n - 1)]


def _state_diffs(core, store, last_seq: int) -> list[str]:
    """The order store against `core`, a single-process replay of the whole WAL."""
    diffs = []
    if store.applied_seq() != last_seq:
        diffs.append(f"orders.db applied_seq {store.applied_seq()}, the WAL ends at seq {last_seq}")
    b = core.balances()
    want = {(u, a): (av, fr) for u, a, av, fr in zip(*(b[f].tolist() for f in ("user_id", "asset", "avail", "frozen")))}
    got = {(u, a): (av, fr) for u, a, av, fr in store.db.execute("SELECT user_id, asset_id, avail, frozen FROM balances")}
    for k in sorted(set(want) | set(got)):
        if want.get(k, (0, 0)) != got.get(k, (0, 0)):
            diffs.append(f"balance of user {k[0]} asset {k[1]}: replay {want.get(k)}, orders.db {got.get(k)}")
    o = core.open_orders()
    want_open = dict(zip(o["order_id"].tolist(), o["filled"].tolist()))
    got_open = dict(store.db.execute(f"SELECT order_id, filled_qty FROM orders WHERE status IN {OPEN_STATUSES}"))
    for k in sorted(set(want_open) | set(got_open)):
        if want_open.get(k) != got_open.get(k):
            diffs.append(f"open order {k}: replay filled {want_open.get(k)}, orders.db filled {got_open.get(k)}")
    return diffs


# -- the drill ------------------------------------------------------------------------------------


def _last_seq(wal_dir: pathlib.Path) -> int:
    from xinfinity.storage.wal_dir import open_wal_dir
    if not (wal_dir / "wal.log").exists():
        return 0
    j = open_wal_dir(wal_dir)
    cmds = np.concatenate([j.deposits, j.commands])
    return int(cmds["seq"][-1]) if len(cmds) else 0


def _make_users(data_dir: pathlib.Path, n: int, seed: int) -> list:
    """n trading users (made if new) and a new Ed25519 key each: (user_id, KeyFile)."""
    from xinfinity.accounts.cli import accounts_db, key_file
    from xinfinity.accounts.store import AccountStore
    from xinfinity.client import KeyFile
    out = []
    with AccountStore(accounts_db(data_dir)) as store:
        for k in range(n):
            user_id, _ = store.get_or_create_user(f"drill-{seed}-u{k}")
            out.append((user_id, KeyFile.from_json(key_file(store.create_api_key(user_id, label="drill"), user_id))))
    return out


@progress.reported
def drill(kills: int, seed: int, target: str = "any", data_dir=None, port: int | None = None, users: int = 4,
          gap: int = 40, config: str | None = None, start_timeout_s: float = 900,
          recovery_timeout_s: float = 120) -> dict:
    """Run the drill; returns its figures, the kills, the requests and the verdict."""
    from xinfinity.client import KeyFile
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="xinf-drill-serve-"))
    data_dir = pathlib.Path(data_dir) if data_dir else tmp / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    base_seq = _last_seq(data_dir / "wal")
    cfg = config_with(config or CONFIG_DIR / "dev.yaml", tmp / "drill.yaml", restarts=kills + 5)
    assets = {a.name: (a.id, a.decimals) for a in load_yaml(cfg).assets}
    p = plan(kills, seed, target, gap)
    print(f"xinf drill serve: kills={kills} seed={seed} target={target} data={data_dir}", flush=True)
    server = ServeProcess(data_dir, port, data_dir / "drill-serve.log", ["--config", cfg])
    prog = progress.current()
    prog.stage("starting xinf serve")
    prog.note = lambda: f"its log: {server.tail(1).strip() or 'empty so far'}"
    done: list[Kill] = []
    traffic = None
    code = None
    try:
        if not server.wait_ready(start_timeout_s, restarts=0):
            raise RuntimeError(f"xinf serve did not become healthy in {start_timeout_s:g} s:\n{server.tail()}")
        traffic = Traffic(server.url, KeyFile.load(data_dir / "operator.json"), _make_users(data_dir, users, seed),
                          assets, seed, f"{seed}-{base_seq}")
        for user_id, _ in traffic.users:
            for asset, whole in INITIAL.items():
                if traffic.deposit(user_id, asset, whole).outcome != OK:
                    raise RuntimeError(f"the first deposits were not answered:\n{server.tail()}")
        traffic.start()
        for i in range(kills):
            prog.stage("", total=kills, unit="kills", done=i)
            prog.note = lambda: f"{traffic.answered:,} requests answered"
            due = traffic.answered + int(p.gaps[i])
            while traffic.answered < due and server.proc.poll() is None and not traffic.errors:
                time.sleep(0.001)
            info = server.info()
            if server.proc.poll() is not None or traffic.errors or info is None:
                break
            names = sorted(n for n in info["processes"] if n.startswith("gateway")) \
                if p.targets[i] == "gateway" else [p.targets[i]]
            name = names[int(np.random.default_rng([seed, i]).integers(0, len(names)))]
            pid = int(info["processes"][name])
            acked = traffic.answered
            t_kill = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            prog.note = f"killed {name}, waiting for the server to recover"
            with traffic.lock:
                traffic.epoch = i + 1
            back = server.wait_ready(recovery_timeout_s, restarts=i + 1)
            ms = (time.perf_counter() - t_kill) * 1000 if back else None
            done.append(Kill(name, pid, acked, ms))
            print(f"kill={i + 1} target={name} pid={pid} acked_before={acked} "
                  f"recovery_ms={'none' if ms is None else f'{ms:.0f}'}", flush=True)
            if not back:
                print(f"the server did not come back within {recovery_timeout_s:g} s:\n{server.tail()}", flush=True)
                break
        # A last stretch of traffic after the last recovery, so its commands are checked too.
        prog.stage("traffic after the last recovery")
        due = traffic.answered + gap
        while traffic.answered < due and server.proc.poll() is None and not traffic.errors:
            time.sleep(0.001)
    finally:
        prog.stage("stopping xinf serve")
        if traffic is not None:
            traffic.join()
        code = server.stop()
    if traffic is not None and traffic.errors:
        raise traffic.errors[0]
    requests = traffic.requests if traffic else []
    prog.stage("checking the data dir (a replay of the whole WAL)")
    verdict = check(data_dir, requests, base_seq)
    result = _figures(kills, done, requests, verdict, code)
    result["data_dir"] = data_dir
    result["server_log"] = server.tail(40) if code != 0 else ""
    shutil.rmtree(tmp, ignore_errors=True)       # the data dir with it, unless it was given
    return result


def _figures(kills: int, done: list[Kill], requests: list[Request], v: Verdict, server_exit) -> dict:
    bad_epochs = collections.Counter(r.epoch for r in v.lost) + collections.Counter(v.duplicated)
    passed = sum(1 for i, k in enumerate(done)
                 if k.recovery_ms is not None and not bad_epochs[i] and not v.state_diffs and not v.audit_diffs)
    ms = np.array([k.recovery_ms for k in done if k.recovery_ms is not None])
    outcomes = collections.Counter(r.outcome for r in requests)
    return {"kills": kills, "done": done, "passed": passed, "lost": len(v.lost), "duplicated": len(v.duplicated),
            "verdict": v, "requests": requests, "outcomes": outcomes, "server_exit": server_exit,
            "recovery_p50_ms": float(np.percentile(ms, 50)) if len(ms) else 0.0,
            "recovery_p99_ms": float(np.percentile(ms, 99)) if len(ms) else 0.0}


def report(r: dict) -> int:
    """Print the checks' findings and the final line; the exit code."""
    v: Verdict = r["verdict"]
    for q in v.lost[:10]:
        print(f"lost: {q.kind} #{q.n} of user {q.user_id} ({q.outcome}, seq {q.seq}, order {q.order_id})")
    for d in v.state_diffs[:10]:
        print(f"state: {d}")
    for d in v.audit_diffs[:10]:
        print(f"audit store: {d}")
    if r["server_exit"] != 0:
        print(f"xinf serve did not stop cleanly (exit {r['server_exit']}):\n{r['server_log']}")
    o = r["outcomes"]
    print(f"requests={sum(o.values())} ok={o[OK]} rejected={o[REJECTED]} unknown={o[UNKNOWN]} unsent={o[UNSENT]} "
          f"wal_commands={v.wal_commands} state={'equal' if not v.state_diffs else 'DIFFERENT'} "
          f"audit={'equal' if not v.audit_diffs else 'DIFFERENT'}")
    print(f"drills_passed={r['passed']}/{r['kills']} lost={r['lost']} duplicated={r['duplicated']} "
          f"recovery_p50_ms={r['recovery_p50_ms']:.0f} recovery_p99_ms={r['recovery_p99_ms']:.0f}", flush=True)
    ok = r["passed"] == r["kills"] and r["lost"] == 0 and r["duplicated"] == 0 and r["server_exit"] == 0
    return 0 if ok else 1


def main(args) -> int:
    if args.kills < 1:
        raise SystemExit("xinf drill serve: --kills must be at least 1")
    r = drill(args.kills, args.seed, args.target, args.data_dir, args.port, args.users, args.gap, args.config,
              args.start_timeout, args.recovery_timeout)
    return report(r)
