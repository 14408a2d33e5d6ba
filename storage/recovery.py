"""Recovery: the core's state from the newest good snapshot and the WAL after it.

Replay goes through the live code path (`engine.core.Core.run`), never a
second copy of the rules; the replayed commands' events go to a sink that
skips what the output files already hold, so nothing is written twice.
"""
from __future__ import annotations

import pathlib
import time

import numpy as np

from xinfinity.engine import records as R
from xinfinity.engine.core import Core
from xinfinity.runtime import progress

from .snapshot import load_snapshot
from .wal_dir import SNAPSHOTS, open_wal_dir


@progress.reported
def recover(wal_dir, sink=None, at_most: int | None = None, prefault: bool = True, core=None):
    """The core's state from the newest good snapshot (cut at or before seq
    at_most, if given) and the WAL after it, the replayed commands' events
    going to sink: (core, journaled, figures). What a restarted pipeline does
    before it takes traffic. recovery_s: opening and checking the WAL, loading
    the snapshot, replaying the rest (allocating the core's arrays is not
    counted). prefault: as engine.core.Core's; core: a fresh one allocated
    beforehand for it (the restarting supervisor keeps one ready)."""
    t0 = time.perf_counter()
    prog = progress.current()
    prog.stage("recovery: reading the WAL", compiles="wal")
    j = open_wal_dir(wal_dir)
    t_opened = time.perf_counter()
    if core is None:
        core = Core(j.assets, j.symbols, R.DUST_CODES[j.dust], j.capacity, prefault)   # allocation: not recovery
    t_built = time.perf_counter()
    loaded = load_snapshot(pathlib.Path(wal_dir) / SNAPSHOTS, at_most)
    if loaded.arrays is not None:
        core.restore(loaded.arrays)
    sink = sink or (lambda ev: None)
    replayed = 0
    tails = [part[np.searchsorted(part["seq"], loaded.seq, side="right"):] for part in (j.deposits, j.commands)]
    prog.stage("recovery: replaying the WAL", total=sum(map(len, tails)), unit="commands", per_s=True,
               compiles="st")
    for tail in tails:                          # the WAL's own arrays: the core may write into them
        for i in range(0, len(tail), 65536):
            core.run(tail[i:i + 65536], sink)
            prog.update(add=min(65536, len(tail) - i))
        replayed += len(tail)
    t_end = time.perf_counter()
    n = len(j.deposits) + len(j.commands)
    return core, j, {"snapshot_seq": loaded.seq, "snapshots_rejected": len(loaded.rejected),
                     "wal_commands": n, "replayed": replayed, "torn_bytes": j.torn_bytes,
                     "recovery_s": round((t_opened - t0) + (t_end - t_built), 3), "rejected": loaded.rejected}
