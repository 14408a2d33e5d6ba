"""The order WAL on disk: group commit, and opening with torn-tail repair.

Writing (UBSCore, before it acts): `WalWriter.append(cmds)` seals a batch of
sequenced commands, writes it with one write call and syncs it as the policy
says, and returns only then: what it returns is acknowledged. Policies:
`every_batch` (fdatasync after every batch), `interval_ms` (at most that long
between syncs: a crash may lose the last interval, which the policy accepts),
`off` (the OS decides). A failed write or sync (disk full, I/O error) raises
WalError naming the file and the last seq acknowledged, and the writer
refuses everything after: fail-stop, nothing half-acknowledged.

Opening: records are checked in order. A record that is partial or fails its
check, with no intact record after it, is a torn tail: a crash cut the last
write. It is cut off and reported, and only it, since nothing after it was
intact. A bad record followed by an intact one is corruption: opening stops
with WalCorrupt naming the file and the byte offset, and changes nothing.
"""
from __future__ import annotations

import os
import pathlib
import time
from typing import NamedTuple, get_args

import numpy as np

from ..config import FsyncPolicy
from ..engine import records as R
from ..engine.wal import (RECORD_BYTES, WAL_RECORD, commands_of, wal_count_intact, wal_intact, wal_seal,
                          wal_verify)

POLICIES = get_args(FsyncPolicy)        # a bad name fails at config load (config/__init__.py)


class WalError(RuntimeError):
    pass


class WalCorrupt(WalError):
    def __init__(self, path, offset: int, why: str):
        super().__init__(f"{path}: corrupt record at byte offset {offset}: {why}")
        self.path, self.offset = path, offset


class Opened(NamedTuple):
    commands: np.ndarray        # R.CMD, seq order
    torn_bytes: int             # bytes cut off the tail (0: none)


def fsync_path(path: pathlib.Path) -> None:
    """fsync a file or a directory (a directory: its entries, after a create or rename)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_wal(path, first_seq: int = 1) -> Opened:
    """The intact records of the WAL at `path` (created empty if absent); a torn
    tail is cut off the file and reported."""
    path = pathlib.Path(path)
    if not path.exists():
        path.touch()
        fsync_path(path.parent)
        return Opened(np.zeros(0, R.CMD), 0)
    data = np.fromfile(path, np.uint8)
    n = len(data) // RECORD_BYTES
    recs = data[:n * RECORD_BYTES].view(WAL_RECORD)
    words = R.words(recs)
    good = int(wal_verify(recs, words, n, first_seq))
    if good < n:
        later = int(wal_count_intact(words, good + 1, n))
        if later:
            r = recs[good]
            why = ("checksum mismatch" if not wal_intact(words, good)
                   else f"seq {int(r['seq'])} where {first_seq + good} was expected")
            raise WalCorrupt(path, good * RECORD_BYTES, f"{why}; {later} intact record(s) follow")
    torn = len(data) - good * RECORD_BYTES
    if torn:
        with open(path, "r+b") as f:
            f.truncate(good * RECORD_BYTES)
            os.fsync(f.fileno())
    return Opened(commands_of(recs[:good]), torn)


class WalWriter:
    def __init__(self, path, policy: FsyncPolicy = "every_batch", interval_ms: int = 5, batch: int = 8192):
        assert policy in POLICIES, policy       # any other name would silently never sync
        self.path, self.policy, self.interval_ns = pathlib.Path(path), policy, interval_ms * 1_000_000
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        fsync_path(self.path.parent)
        self.buf = np.zeros(batch, WAL_RECORD)
        self.words = R.words(self.buf)
        self.last_sync = time.monotonic_ns()
        self.acknowledged = 0       # last seq acknowledged
        self.failed: str | None = None
        self.syncs = 0

    def append(self, cmds: np.ndarray) -> int:
        """Make the sequenced commands durable (as the policy says); returns the
        last seq acknowledged. Raises WalError, and fails stop, if it cannot."""
        if self.failed:
            raise WalError(f"{self.path}: the WAL failed earlier ({self.failed}); nothing more is accepted")
        for i in range(0, len(cmds), len(self.buf)):
            chunk = np.ascontiguousarray(cmds[i:i + len(self.buf)])
            k = len(chunk)
            wal_seal(self.buf, self.words, chunk, R.words(chunk), k)
            self._write(memoryview(self.buf[:k].view(np.uint8)), int(chunk["seq"][-1]))
        return self.acknowledged

    def _write(self, data: memoryview, last_seq: int) -> None:
        try:
            done = 0
            while done < len(data):
                done += os.write(self.fd, data[done:])
            now = time.monotonic_ns()
            if self.policy == "every_batch" or (self.policy == "interval_ms"
                                                and now - self.last_sync >= self.interval_ns):
                os.fdatasync(self.fd)
                self.last_sync = now
                self.syncs += 1
        except OSError as e:
            self.failed = f"{e.strerror or e} (errno {e.errno})"
            raise WalError(f"{self.path}: write failed: {self.failed}; acknowledged up to seq "
                           f"{self.acknowledged}, nothing after it") from None
        self.acknowledged = last_seq

    def sync(self) -> None:
        """Make everything written durable now (at a clean stop)."""
        if not self.failed:
            os.fdatasync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            if not self.failed:
                self.sync()
            os.close(self.fd)
            self.fd = -1
