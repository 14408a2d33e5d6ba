"""`xinf serve`: the exchange, online.

The supervisor runs gateway workers, UBSCore, the ME, the journal and
settlement (runtime/topology.py `serving`), pinned as the config says. Every
file lives under the data dir:

    DIR/wal/          the order WAL, the market it trades, snapshots (storage/wal_dir.py)
    DIR/accounts.db   users, API keys, nonce high-water marks (accounts/store.py)
    DIR/orders.db     orders, trades, balances as the queries read them (storage/order_store.py)
    DIR/jwt.secret    the login tokens' key
    DIR/operator.json the operator's API key (deposits, withdrawals): `xinf deposit` signs with it
    DIR/serve.json    while serving: where (url, ws_url), the supervisor's pid, the metrics segment
                      (`xinf dashboard --data-dir DIR` reads it)

Started on a data dir that has a WAL, it recovers first: the core's state
from the newest snapshot and the WAL after it, the order store brought up to
the WAL's last seq. After a crash of any process the supervisor does the same
and starts them all again. SIGTERM or Ctrl-C stops it cleanly: the gateways
stop taking requests, answer what is in flight, and every ring drains.
"""
from __future__ import annotations

import csv
import json
import os
import pathlib
import shutil
import signal
import socket
import sys
import tempfile
import time

import msgspec
import numpy as np
import psutil

from ..accounts.cli import accounts_db, key_file
from ..accounts.signing import ED25519
from ..accounts.permissions import ADMIN, READ, TRADE
from ..accounts.store import AccountStore
from ..config import Config
from ..engine import records as R
from ..engine.core import Core, prefault_all
from ..ipc import shm
from ..runtime.balance_board import BalanceBoard
from ..runtime import progress
from ..runtime.control import DONE
from ..runtime.supervisor import Supervisor
from ..runtime.topology import serving
from ..runtime.wiring import Wiring
from ..services.answers import AnsweringSettlement, StepEvents
from ..services.audit import AuditProcess, AuditStage
from ..services.gateway import GatewayWorker, symbol_assets
from ..services.journal import Journal
from ..services.matching import Matching
from ..services.ubscore import UbsCore
from ..storage.order_store import OrderStore, checkpoint, connect
from ..storage.recovery import recover
from ..storage.snapshot import Scheduler
from ..storage.wal_dir import SNAPSHOTS, WAL_FILE, WalDir, WalDirError, open_wal_dir
from .mt import add_pipeline_arguments, load_config, snapshot_writer

DUST = "release"
OPERATOR = "operator"       # the operator's user name in the account store


class ServeError(RuntimeError):
    """The exchange cannot start as asked (the message says why and what to do)."""


def check_port(host: str, port: int, option: str = "--port") -> None:
    """Fail before anything starts if another program listens on host:port (`option` chooses another)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise ServeError(f"cannot listen on {host}:{port}: {e.strerror} (another server? {option} chooses "
                             "another)") from None


def paths(data_dir: pathlib.Path) -> dict[str, pathlib.Path]:
    return {"wal": data_dir / "wal", "orders": data_dir / "orders.db", "operator": data_dir / "operator.json",
            "serve": data_dir / "serve.json"}


def _write_market(d: pathlib.Path, cfg: Config) -> None:
    """The config's assets and symbols as the CSV files a WAL directory keeps (edge/dataset.py reads them)."""
    with open(d / "assets_config.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["asset_id", "asset", "decimals", "display_decimals"])
        w.writerows([a.id, a.name, a.decimals, a.display_decimals] for a in cfg.assets)
    with open(d / "symbols_config.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["symbol_id", "symbol", "base_asset_id", "quote_asset_id", "price_decimal",
                    "price_display_decimal", "maker_fee_ppm", "taker_fee_ppm", "fee_user_id", "stp"])
        w.writerows([s.id, s.name, s.base_asset_id, s.quote_asset_id, s.price_decimals, s.price_display_decimals,
                     s.maker_fee_ppm, s.taker_fee_ppm, s.fee_user_id, s.stp] for s in cfg.symbols)


def open_market(data_dir: pathlib.Path, cfg: Config) -> Config:
    """Create the WAL directory on a first start; on a later one, the market
    it was created with is the one served (a config that says otherwise is
    refused, naming the difference: the WAL's commands mean what they meant)."""
    wal_dir = paths(data_dir)["wal"]
    if not (wal_dir / WAL_FILE).exists():
        with tempfile.TemporaryDirectory() as tmp:
            _write_market(pathlib.Path(tmp), cfg)
            WalDir(wal_dir, tmp, DUST, 0, cfg.pipeline.fsync, cfg.pipeline.fsync_interval_ms, cfg.capacity).close()
        return cfg
    j = open_wal_dir(wal_dir)
    for what, mine, theirs in (("assets", j.assets, cfg.assets), ("symbols", j.symbols, cfg.symbols)):
        if list(mine) != list(theirs):
            raise WalDirError(f"{data_dir}: it serves the {what} {[x.name for x in mine]} it was created with; "
                              f"the config has {[x.name for x in theirs]} (use another --data-dir)")
    return msgspec.structs.replace(cfg, capacity=j.capacity)


def recover_state(data_dir: pathlib.Path, cfg: Config, core: Core | None = None) -> tuple[Core, int]:
    """The core from the newest snapshot and the WAL after it, and the order
    store brought up to the WAL's last seq (events it holds are skipped)."""
    p = paths(data_dir)
    events = StepEvents()
    core, j, figures = recover(p["wal"], events, prefault=False, core=core)
    cmds = np.concatenate([j.deposits, j.commands])
    store = OrderStore(p["orders"], symbol_assets(cfg))
    try:
        store.apply(events.take(), cmds)
    finally:
        store.close()
    return core, int(cmds["seq"][-1]) if len(cmds) else 0


def ensure_operator_key(data_dir: pathlib.Path) -> None:
    """The operator's key (deposits and withdrawals for any user), made on the first start, readable by the
    data dir's owner only."""
    path = paths(data_dir)["operator"]
    if path.exists():
        return
    store = AccountStore(accounts_db(data_dir))
    user_id, _ = store.get_or_create_user(OPERATOR)
    key = store.create_api_key(user_id, "operator", READ | TRADE | ADMIN, ED25519)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(key_file(key, user_id), f)
        f.write("\n")


def _builders(cfg: Config, data_dir: pathlib.Path, tmp: pathlib.Path, board: BalanceBoard, core: Core,
              journaled: int) -> dict:
    """How each process builds its service (in the child, after the fork), from the recovered core."""
    p = paths(data_dir)
    topology = serving(cfg.gateway.workers)

    def snapshots(part):
        return snapshot_writer(p["wal"], part, cfg.assets, cfg.symbols, R.DUST_CODES[DUST], cfg.capacity)

    def gateway(k, name):
        return lambda w, stats: GatewayWorker(w, name, k, cfg, data_dir, p["orders"], board)

    def ubscore(w, stats):
        prefault_all(core.ubs)
        return UbsCore(w, core.ubs, stats, journaled, snapshots("u"))

    def matching(w, stats):
        prefault_all(core.me)
        return Matching(w, core.me, tmp / "me.npz", snapshots("me"))

    def journal(w, stats):
        return Journal(w, WalDir.reopen(p["wal"], cfg.pipeline.fsync, cfg.pipeline.fsync_interval_ms), journaled)

    def settlement(w, stats):
        return AnsweringSettlement(w, core.ubs, OrderStore(p["orders"], symbol_assets(cfg), checkpoints=False), board)

    def audit(w, stats):
        return AuditProcess(AuditStage(data_dir, cfg), lambda: w.control.proc("journal")["state"] == DONE,
                            cfg.persistence.audit_poll_ms, w.metrics)

    return {**{name: gateway(k, name) for k, name in enumerate(topology.sources)},
            "ubscore": ubscore, "matching": matching, "journal": journal, "settlement": settlement, "audit": audit}


class Checkpoints:
    """SQLite's WAL checkpoints, taken here: the serving processes' connections never
    take one (it syncs the database file, milliseconds inside a request or a
    settlement step), so the supervisor, idle otherwise, does it every second."""

    def __init__(self, paths, every_s: float = 1.0):
        self.paths, self.every_s, self.dbs, self.last = paths, every_s, [], time.monotonic()

    def poll(self) -> None:
        if time.monotonic() - self.last < self.every_s:
            return
        self.last = time.monotonic()
        if not self.dbs:
            self.dbs = [connect(path) for path in self.paths]
        for db in self.dbs:
            checkpoint(db)


def warm_kernels(cfg: Config, tmp: pathlib.Path) -> None:
    """Compile (first start) or load the services' kernels here, once, on a
    tiny state: the forked processes then start at once. On the first start
    of a source tree it says so, and every few seconds that it still compiles
    (runtime/progress.py, on stderr)."""
    import xinfinity
    prog = progress.current()
    t0 = time.monotonic()
    prog.stage("preparing the services", compiles="serve")      # a cold cache's lines add "compiling ..."
    try:
        tiny = msgspec.structs.replace(cfg.capacity, max_users=16, max_orders=15, max_buckets=4)
        small = msgspec.structs.replace(cfg, capacity=tiny,
                                        pipeline=msgspec.structs.replace(cfg.pipeline, ring_capacity=16, batch=8))
        topology = serving(1)
        w = Wiring.create(small.pipeline, instance=f"{os.getpid()}-warm", topology=topology)
        try:
            core = Core(cfg.assets, cfg.symbols, R.DUST_CODES[DUST], tiny, prefault=False)
            one = np.zeros(1, R.CMD)
            one["kind"], one["user_id"], one["symbol"], one["amount"] = R.CMD_DEPOSIT, 1, cfg.assets[0].id, 1
            core.run(one, lambda ev: None)          # recovery's replay
            stats = np.zeros(1, dtype=w.control.procs.dtype)[0]
            UbsCore(w, core.ubs, stats)
            Matching(w, core.me, tmp / "warm.npz")
            AnsweringSettlement(w, core.ubs, OrderStore(tmp / "warm.db", symbol_assets(cfg))).store.close()
        finally:
            w.close()
    finally:
        if xinfinity.COLD_CACHE:
            print(f"xinfinity: compiled in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)


def serve(cfg: Config, data_dir: pathlib.Path, on_ready=None, watch=None) -> dict:
    cfg = msgspec.structs.replace(cfg, pipeline=msgspec.structs.replace(cfg.pipeline, loop_spins=cfg.gateway.loop_spins))
    data_dir.mkdir(parents=True, exist_ok=True)
    p = paths(data_dir)
    _refuse_second(p["serve"])
    check_port(cfg.gateway.host, cfg.gateway.port)
    if cfg.gateway.ws_port == cfg.gateway.port:
        raise ServeError(f"the WebSocket port is the HTTP port ({cfg.gateway.port}): --ws-port chooses another")
    check_port(cfg.gateway.host, cfg.gateway.ws_port, "--ws-port")
    cfg = open_market(data_dir, cfg)
    ensure_operator_key(data_dir)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="xinf-serve-"))
    g = cfg.gateway
    url = f"http://{g.host}:{g.port}"
    ws_url = f"ws://{g.host}:{g.ws_port}"
    board = BalanceBoard.create(shm.instance_name(), cfg.capacity.max_users, max(a.id for a in cfg.assets) + 1)
    try:
        with progress.task() as prog:   # the start's report; none while serving
            warm_kernels(cfg, tmp)
            core, journaled = recover_state(data_dir, cfg)
            prog.stage(f"state ready (recovered through seq {journaled})" if journaled else "state ready (a new exchange)")
        if journaled:
            print(f"xinfinity: recovered {data_dir} through seq {journaled}", flush=True)
        scheduler = Scheduler(p["wal"] / SNAPSHOTS, cfg.pipeline.snapshot_every_commands, cfg.pipeline.snapshot_every_s)
        checkpoints = Checkpoints([p["orders"], accounts_db(data_dir)])

        def recover_and_rebuild():
            scheduler.restarted()
            return _builders(cfg, data_dir, tmp, board, *recover_state(data_dir, cfg))

        def ready(w):
            """Rewritten at every (re)start: the drill finds the processes it may kill here."""
            procs = {n: int(w.control.proc(n)["pid"]) for n in w.topology.names}
            p["serve"].write_text(json.dumps({"url": url, "ws_url": ws_url, "pid": os.getpid(),
                                              "started": psutil.Process().create_time(), "processes": procs,
                                              "restarts": len(sup.restarts), "metrics": sup.metrics.name}) + "\n")
            print(f"xinfinity: serving on {url} (API docs: {url}/docs; streams on {ws_url}/ws; data: {data_dir}; "
                  f"Ctrl-C stops)", flush=True)
            if on_ready:
                on_ready(w)

        def watch_run(sup):
            scheduler.poll(sup.wiring.control)
            checkpoints.poll()
            if watch:
                watch(sup)

        sup = Supervisor(cfg.pipeline, _builders(cfg, data_dir, tmp, board, core, journaled), recover_and_rebuild,
                         cfg.pipeline.restarts, serving(g.workers))
        stats = sup.run(ready, watch_run, (signal.SIGTERM, signal.SIGINT))
        scheduler.finish()
        print("xinfinity: stopped cleanly", flush=True)
        return stats
    finally:
        board.close()
        p["serve"].unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)


def _refuse_second(serve_file: pathlib.Path) -> None:
    """One exchange per data dir: a live supervisor named by serve.json keeps it."""
    if not serve_file.exists():
        return
    try:
        info = json.loads(serve_file.read_text())
        alive = abs(psutil.Process(info["pid"]).create_time() - info["started"]) < 0.01
    except (ValueError, KeyError, psutil.Error):
        alive = False
    if alive:
        raise ServeError(f"{serve_file.parent}: an exchange (pid {info['pid']}) is serving it already, at {info['url']}")


def add_arguments(ap) -> None:
    add_pipeline_arguments(ap)
    ap.add_argument("--host", default=None, help="address to listen on (default: the config's gateway.host)")
    ap.add_argument("--port", type=int, default=None, help="port (default: the config's gateway.port, 8080)")
    ap.add_argument("--ws-port", type=int, default=None,
                    help="the WebSocket streams' port (default: the config's gateway.ws_port, 8081)")
    ap.add_argument("--workers", type=int, default=None, help="gateway processes (default: the config's)")
    ap.add_argument("--data-dir", default="data", help="where the WAL, the stores and the keys live (default ./data)")


def main(args) -> int:
    cfg = load_config(args)
    over = {k: v for k, v in (("host", args.host), ("port", args.port), ("ws_port", args.ws_port),
                              ("workers", args.workers)) if v is not None}
    if over:
        cfg = msgspec.structs.replace(cfg, gateway=msgspec.convert(
            {**msgspec.to_builtins(cfg.gateway), **over}, type(cfg.gateway)))
    serve(cfg, pathlib.Path(args.data_dir))
    return 0

