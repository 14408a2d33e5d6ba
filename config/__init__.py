"""Typed configuration: YAML decoded into msgspec Structs; assets and symbols
come from a dataset's CSV files (edge/dataset.py).

A bad key, type or value fails at load with its path (msgspec names it: an
enum is a `Literal`, a bound is a `Meta` constraint, what neither can say is
checked in `__post_init__`, whose error msgspec reports at the section's
path). The Literals below are the one list of each set of names: the modules
that act on them take their tuples from here with `typing.get_args`.
Everything has a default that runs on one machine with no external service.
"""
from __future__ import annotations

import pathlib
from typing import Annotated, Literal, get_args

import msgspec
import yaml
from msgspec import Meta

from ..runtime.topology import ROLES

CONFIG_DIR = pathlib.Path(__file__).resolve().parent

WaitStrategy = Literal["spin", "yield", "block", "auto"]        # ipc/wait.py
FsyncPolicy = Literal["every_batch", "interval_ms", "off"]      # storage/wal.py, docs/DURABILITY.md
DustPolicy = Literal["release", "keep"]                         # engine/records.py DUST_CODES
StpMode = Literal["none", "expire_taker", "expire_maker", "expire_both"]    # engine/records.py STP_CODES
# The pipeline's processes, as runtime/topology.py declares them; "ingestion"
# and "gateway" in pipeline.cores cover every source of that kind.
ProcessName = Literal[ROLES]

AtLeast1 = Annotated[int, Meta(ge=1)]
AtLeast0 = Annotated[int, Meta(ge=0)]


class Asset(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: int
    name: str
    decimals: int
    display_decimals: int


class Symbol(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: int
    name: str
    base_asset_id: int
    quote_asset_id: int
    price_decimals: int
    price_display_decimals: int
    maker_fee_ppm: int = 0          # fee rate in parts per million of the amount received
    taker_fee_ppm: int = 0
    fee_user_id: int = -1           # account that receives the fees; -1: none (rates must be 0)
    stp: StpMode = "none"

    def __post_init__(self):
        # Symbols are built from CSV rows, not decoded, so the Literal alone
        # would not be checked: this holds for both.
        if self.stp not in get_args(StpMode):
            raise ValueError(f"symbol {self.name}: stp {self.stp!r} is not one of {get_args(StpMode)}")


class Capacity(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the core allocates at start (ST and MT alike; a WAL records it)."""
    max_users: AtLeast1 = 1 << 16
    max_assets: AtLeast1 = 64
    max_symbols: AtLeast1 = 64
    max_orders: AtLeast1 = (1 << 20) - 1    # open orders at once (one more slot holds the taker)
    max_buckets: AtLeast1 = 1 << 12         # 4096-tick price buckets over all books (16 KiB each)


class Pipeline(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The multi-process pipeline (DESIGN.md sections 1, 4); fsync and
    fsync_interval_ms serve the ST pipeline's WAL too."""
    wait: WaitStrategy = "auto"     # auto: spin only when every spinner has a core
    ring_capacity: Annotated[int, Meta(ge=2)] = 1 << 16     # records per ring (a power of two)
    batch: AtLeast1 = 8192          # records a process takes from a ring at once
    loop_spins: AtLeast1 = 20000    # UBSCore, ME: empty turns of the compiled loop (~1 ms) before that
    forward_every: AtLeast1 = 1024  # UBSCore, ME: most commands run between two publications
    heartbeat_timeout_s: Annotated[float, Meta(gt=0)] = 30.0    # a process whose heartbeat stands still this long is hung
    fsync: FsyncPolicy = "every_batch"      # with a WAL (group commit, DURABILITY.md)
    fsync_interval_ms: AtLeast1 = 5 # under interval_ms: most time between two syncs
    restarts: AtLeast0 = 3          # with a WAL: restarts through recovery after a crash before giving up
    snapshot_every_commands: AtLeast0 = 0   # with a WAL: snapshot every N commands (0: not by count)
    snapshot_every_s: Annotated[float, Meta(ge=0)] = 0.0    # with a WAL: snapshot every so many seconds (0: not by time)
    # CPU cores per process; a process not named here may run on any core.
    # Empty: UBSCore and the ME get a core each (when there are two or more).
    cores: dict[ProcessName, list[AtLeast0]] = {}
    # Per-stage latency histograms and counters in shared memory (runtime/metrics.py, `xinf dashboard`);
    # false: nothing is recorded (the segment still exists, empty).
    metrics: bool = True

    def __post_init__(self):
        # A ring indexes its slots with `seq & (capacity - 1)` (ipc/ring.py).
        if self.ring_capacity & (self.ring_capacity - 1):
            raise ValueError(f"ring_capacity {self.ring_capacity} is not a power of two")


class Gateway(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`xinf serve`'s HTTP and WebSocket sides (gateway/)."""
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 8080
    ws_port: Annotated[int, Meta(ge=0, le=65535)] = 8081    # the WebSocket streams (gateway/ws/app.py)
    workers: Annotated[int, Meta(ge=1, le=8)] = 1       # gateway processes, each with its own command ring
    max_body_bytes: AtLeast1 = 16384        # a larger request body is refused (413) unread
    nonce_window_ms: AtLeast1 = 30000       # a signed request's ts_nonce within this of the server's clock
    jwt_ttl_s: AtLeast1 = 86400             # lifetime of a login token
    ack_timeout_s: Annotated[float, Meta(gt=0)] = 10.0  # a command not acknowledged by then answers 503
    # Serving replaces pipeline.loop_spins with this: requests come one by one, and
    # UBSCore or the ME spinning ~1 ms for the next takes that core from the gateway
    # (measured at 300 orders/s: UBSCore 2.1 -> 0.4 ms of CPU per order, p50 8.7 -> 3.8 ms).
    loop_spins: AtLeast1 = 200


class Persistence(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The audit store (storage/audit/) and the stage that fills it from the WAL (services/audit.py)."""
    # Empty: SQLite in the data dir (audit.db). Else TDengine through taospy:
    # http://user:password@host:6041/db (REST) or taos://user:password@host:6030/db (native).
    tdengine_dsn: str = ""
    audit_batch: AtLeast1 = 65536           # most WAL records replayed and written in one store transaction
    audit_poll_ms: AtLeast1 = 100           # the stage's sleep when the WAL holds nothing new (each wake-up with work is a store transaction)
    audit_status_ms: AtLeast1 = 500         # most time between two writes of its lag to DATA/audit.json


# Embedded defaults: an exchange that trades out of the box (dev.yaml states them).
DEFAULT_ASSETS = (Asset(1, "BTC", 8, 6), Asset(2, "USDT", 6, 4), Asset(3, "ETH", 8, 6))
DEFAULT_SYMBOLS = tuple(Symbol(i, name, base, 2, 2, 2, maker_fee_ppm=1000, taker_fee_ppm=2000, fee_user_id=1)
                        for i, (name, base) in enumerate((("BTC_USDT", 1), ("ETH_USDT", 3))))


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pipeline: Pipeline = Pipeline()
    capacity: Capacity = Capacity()
    gateway: Gateway = Gateway()
    persistence: Persistence = Persistence()
    # What `xinf serve` trades (a dataset run takes its own from its CSV files).
    assets: list[Asset] = msgspec.field(default_factory=lambda: list(DEFAULT_ASSETS))
    symbols: list[Symbol] = msgspec.field(default_factory=lambda: list(DEFAULT_SYMBOLS))


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the key."""


def load_yaml(path: str | pathlib.Path) -> Config:
    """Load a YAML config; errors name the file and the offending path."""
    path = pathlib.Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: {e}") from None
    try:
        return msgspec.convert(raw, Config)
    except msgspec.ValidationError as e:
        raise ConfigError(f"{path}: {e}") from None
