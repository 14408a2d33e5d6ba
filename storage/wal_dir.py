"""A WAL directory: the order WAL and what is needed to replay it alone.

    DIR/wal.log            the sequenced commands (engine/wal.py records)
    DIR/assets_config.csv  the dataset's assets and symbols, as given
    DIR/symbols_config.csv
    DIR/meta.json          dust policy, capacity, and how many leading commands
                           are the initial deposits (balances_init.csv) rather than rows
    DIR/snapshots/         snapshots of the core's state (storage/snapshot.py)
    DIR/supervisor.pid     while an MT pipeline runs on it: where `xinf snapshot` signals

`WalDir.append(cmds)` persists sequenced commands before they are acted on;
`open_wal_dir(dir)` gives back the dataset they came from, as far as the WAL
holds it (a torn tail cut off and reported).
"""
from __future__ import annotations

import json
import pathlib
import shutil
from typing import NamedTuple

import numpy as np

import msgspec

from ..config import Asset, Capacity, Symbol
from .wal import WalWriter, open_wal

WAL_FILE = "wal.log"
SNAPSHOTS = "snapshots"
SUPERVISOR_PID = "supervisor.pid"    # while an MT pipeline writes this WAL: its supervisor's pid
META_FILE = "meta.json"
_CONFIGS = ("assets_config.csv", "symbols_config.csv")


class WalDirError(RuntimeError):
    pass


def check_fresh(wal_dir) -> pathlib.Path:
    """A directory a new WAL may be written into (not one that holds a WAL)."""
    d = pathlib.Path(wal_dir)
    if (d / WAL_FILE).exists() and (d / WAL_FILE).stat().st_size > 0:
        raise WalDirError(f"{d} already holds a WAL; replay it (xinf replay) or choose another directory")
    return d


class WalDir:
    def __init__(self, wal_dir, dataset_dir, dust: str, initial_deposits: int, policy: str = "every_batch",
                 interval_ms: int = 5, capacity: Capacity = Capacity()):
        d = check_fresh(wal_dir)
        d.mkdir(parents=True, exist_ok=True)
        for name in _CONFIGS:
            shutil.copyfile(pathlib.Path(dataset_dir) / name, d / name)
        (d / META_FILE).write_text(json.dumps({"dust": dust, "initial_deposits": initial_deposits,
                                               "capacity": msgspec.to_builtins(capacity),
                                               "format": 1}) + "\n")
        self.dir = d
        self.writer = WalWriter(d / WAL_FILE, policy, interval_ms)

    @classmethod
    def reopen(cls, wal_dir, policy: str = "every_batch", interval_ms: int = 5) -> "WalDir":
        """Append to the WAL of a directory that recovery opened (its torn tail cut)."""
        j = cls.__new__(cls)
        j.dir = pathlib.Path(wal_dir)
        j.writer = WalWriter(j.dir / WAL_FILE, policy, interval_ms)
        return j

    def append(self, cmds: np.ndarray) -> int:
        return self.writer.append(cmds)

    def close(self) -> None:
        self.writer.close()


class WalDirContents(NamedTuple):
    assets: list[Asset]
    symbols: list[Symbol]
    dust: str
    capacity: Capacity
    deposits: np.ndarray        # the initial deposits (sequenced)
    commands: np.ndarray        # the rows (sequenced)
    torn_bytes: int


class Market(NamedTuple):
    assets: list
    symbols: list
    dust: str
    capacity: Capacity
    initial_deposits: int


def read_market(wal_dir) -> Market:
    """What a WAL directory trades, without opening its WAL (opening cuts a torn
    tail: not a reader's to do while the journal appends, services/audit.py)."""
    from ..edge.dataset import load_assets, load_symbols
    d = pathlib.Path(wal_dir)
    for name in (WAL_FILE, META_FILE) + _CONFIGS:
        if not (d / name).exists():
            raise WalDirError(f"{d}: not a WAL directory ({name} is missing)")
    meta = json.loads((d / META_FILE).read_text())
    assets = load_assets(d / "assets_config.csv")
    return Market(assets, load_symbols(d / "symbols_config.csv", assets), meta["dust"],
                  msgspec.convert(meta.get("capacity", {}), Capacity), int(meta["initial_deposits"]))


def open_wal_dir(wal_dir) -> WalDirContents:
    d = pathlib.Path(wal_dir)
    m = read_market(d)
    opened = open_wal(d / WAL_FILE)
    n = min(m.initial_deposits, len(opened.commands))
    return WalDirContents(m.assets, m.symbols, m.dust, m.capacity, opened.commands[:n], opened.commands[n:],
                          opened.torn_bytes)
