"""Typed configuration: YAML or CSV decoded into msgspec Structs.

A bad key or type fails at load with its path (msgspec names it). Everything
has a default that runs on one machine with no external service.
"""
from __future__ import annotations

import pathlib

import msgspec
import yaml

CONFIG_DIR = pathlib.Path(__file__).resolve().parent


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
    stp: str = "none"               # none | expire_taker | expire_maker | expire_both


class Capacity(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_users: int = 1 << 16
    max_assets: int = 64
    max_symbols: int = 64
    max_orders: int = (1 << 20) - 1 # open orders at once (one more slot holds the taker)
    max_buckets: int = 1 << 12      # 4096-tick price buckets over all books (16 KiB each)


class Core(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    dust: str = "release"           # release | keep (compat with the Rust engine)
    batch: int = 4096               # commands per kernel call
    capacity: Capacity = Capacity()


class Pipeline(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The multi-process pipeline (DESIGN.md sections 1, 4)."""
    wait: str = "auto"              # spin | yield | block | auto (by cores and processes)
    ring_capacity: int = 1 << 16    # records per ring (a power of two)
    batch: int = 8192               # records a process takes from a ring at once
    loop_spins: int = 20000         # UBSCore, ME: empty turns of the compiled loop (~1 ms) before that
    forward_every: int = 1024       # UBSCore, ME: most commands run between two publications
    heartbeat_timeout_s: float = 30.0   # a process whose heartbeat stands still this long is hung
    fsync: str = "every_batch"      # with a WAL: every_batch | interval_ms | off (group commit, DURABILITY.md)
    fsync_interval_ms: int = 5      # under interval_ms: most time between two syncs
    restarts: int = 3               # with a WAL: restarts through recovery after a crash before giving up
    snapshot_every_commands: int = 0    # with a WAL: snapshot every N commands (0: not by count)
    snapshot_every_s: float = 0.0       # with a WAL: snapshot every so many seconds (0: not by time)
    # CPU cores per process; a process not named here may run on any core.
    # Empty: UBSCore and the ME get a core each (when there are two or more).
    cores: dict[str, list[int]] = {}


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    core: Core = Core()
    pipeline: Pipeline = Pipeline()
    assets: list[Asset] = []
    symbols: list[Symbol] = []


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
