"""Snapshots of the core's state: written atomically, checked when loaded.

A snapshot is a directory `snap-<seq>` (seq zero-padded, so names sort by
seq) holding, for each state array, the rows (along its first axis) that
differ from the array's initial state, as two .npy files (`<name>.idx.npy`,
`<name>.rows.npy`), and `manifest.json`: the seq it was cut at, each array's
shape and each file's SHA-256. Most of the state (1M order slots, hash
tables, price buckets) is unused most of the time: only what was touched is
written, and restoring applies the rows to a freshly built core. It is written under a temporary name,
every file and the directory fsynced, then renamed into place and the parent
fsynced: a crash leaves either the whole snapshot or none (a leftover
temporary directory is removed at the next load). The newest two are kept;
when the newest fails its checksums, loading says so and uses the one before.

In the MT pipeline a snapshot is cut at one seq by two processes: UBSCore
stops sequencing at the seq it has reached and, once every settle of it is
applied and the ME has cut its book there, forks a child that writes its
part (`PartWriter`; the fork is the cut, so both go on at once); the ME does
the same when everything up to that seq is run and out. The supervisor's
`Scheduler` asks for snapshots and seals each when both parts are written.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import signal
import time
from typing import NamedTuple

import numpy as np

from .wal import fsync_path

_PREFIX = "snap-"
_TMP = ".tmp-"
_PART = ".part.json"
KEEP = 2


class Changes(NamedTuple):
    """An array as the rows that differ from its initial state."""
    shape: tuple
    idx: np.ndarray                     # int64 row numbers (first axis)
    rows: np.ndarray                    # the array's rows there


class Loaded(NamedTuple):
    seq: int                            # 0 when there is no usable snapshot
    arrays: dict | None                 # name -> Changes
    rejected: list[str]                 # snapshots skipped, each with why


def changes(a: np.ndarray, initial: np.ndarray) -> Changes:
    """The rows of `a` that differ from `initial` (same shape and dtype)."""
    a2 = a.reshape(1) if a.ndim == 0 else a
    n = len(a2)
    if n == 0 or a2.nbytes == 0:
        return Changes(a.shape, np.zeros(0, np.int64), a2[:0].copy())
    row = a2.nbytes // n
    unit = np.uint64 if row % 8 == 0 else np.uint32 if row % 4 == 0 else np.uint8
    x = np.frombuffer(np.ascontiguousarray(a2), unit).reshape(n, -1)
    y = np.frombuffer(np.ascontiguousarray(initial.reshape(a2.shape)), unit).reshape(n, -1)
    idx = np.flatnonzero((x != y).any(axis=1)).astype(np.int64)
    return Changes(a.shape, idx, a2[idx])


def _dir(root: pathlib.Path, prefix: str, seq: int) -> pathlib.Path:
    """A snapshot's directory (prefix _PREFIX) or the one it is written in (_TMP)."""
    return root / f"{prefix}{seq:020d}"


def snapshots_in(root) -> list[pathlib.Path]:
    """The sealed snapshots in root, oldest first."""
    return sorted(pathlib.Path(root).glob(f"{_PREFIX}*"))


def seq_of(snap: pathlib.Path) -> int:
    """The seq a snapshot directory was cut at (from its name)."""
    return int(snap.name[len(_PREFIX):])


def _digest(body: dict) -> str:
    """The manifest's own checksum (of its other keys)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def write_part(root, seq: int, part: str, arrays: dict[str, np.ndarray], initial: dict[str, np.ndarray]) -> None:
    """Write one process's arrays (as their changes from `initial`) into the
    snapshot at `seq` being assembled (MT: UBSCore and the ME each write
    theirs, cut at the same seq), with a part manifest written last."""
    root = pathlib.Path(root)
    tmp = _dir(root, _TMP, seq)
    tmp.mkdir(parents=True, exist_ok=True)
    files, shapes = {}, {}
    for name, a in arrays.items():
        ch = changes(a, initial[name])
        shapes[name] = list(ch.shape)
        for kind, data in (("idx", ch.idx), ("rows", ch.rows)):
            path = tmp / f"{name}.{kind}.npy"
            np.save(path, data, allow_pickle=False)
            fsync_path(path)
            files[path.name] = _sha256(path)
    part_file = tmp / f"{part}{_PART}"
    part_file.with_suffix(".tmp").write_text(json.dumps({"files": files, "shapes": shapes}) + "\n")
    os.rename(part_file.with_suffix(".tmp"), part_file)


def _pdeathsig_setter():
    """Linux: a function that asks to be killed when the process that forked
    us dies, so a crash leaves no writer behind to race the recovery that
    removes its directory. Resolved in the parent, before the fork: loading
    ctypes and libc in the child would widen the window in which the parent
    can die before the request is made."""
    import ctypes
    PR_SET_PDEATHSIG = 1
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class PartWriter:
    """Writes a process's part of a snapshot from a forked child: the fork is
    the cut (the child's copy-on-write pages hold the state as it was), so the
    process goes on at once while the child writes. One at a time."""

    def __init__(self, root, part: str, initial):
        """initial(): the part's arrays as freshly built (called in the child)."""
        self.root, self.part, self.initial = pathlib.Path(root), part, initial
        self.pid = 0
        self._die_with_parent = _pdeathsig_setter()

    def start(self, seq: int, arrays: dict[str, np.ndarray]) -> None:
        self.wait()
        die_with_parent, parent = self._die_with_parent, os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                # PDEATHSIG only covers a parent that dies after it is set: one
                # that died between the fork and here (the child may not run
                # for a while on a busy machine) has left us adopted by another
                # process, which getppid() then names.
                die_with_parent()
                if os.getppid() != parent:
                    os._exit(code)
                write_part(self.root, seq, self.part, arrays, self.initial())
                code = 0
            finally:
                os._exit(code)
        self.pid = pid

    def busy(self) -> bool:
        if self.pid and os.waitpid(self.pid, os.WNOHANG)[0]:
            self.pid = 0
        return self.pid != 0

    def wait(self) -> None:
        if self.pid:
            os.waitpid(self.pid, 0)
            self.pid = 0


def seal(root, seq: int, parts: tuple[str, ...]) -> pathlib.Path | None:
    """Once every part of the snapshot at `seq` is written: its manifest, fsync,
    rename into place, keep the newest KEEP. Returns its directory, or None
    while a part is missing."""
    root = pathlib.Path(root)
    tmp = _dir(root, _TMP, seq)
    part_files = [tmp / f"{p}{_PART}" for p in parts]
    if not all(f.exists() for f in part_files):
        return None
    files, shapes = {}, {}
    for f in part_files:
        got = json.loads(f.read_text())
        files.update(got["files"])
        shapes.update(got["shapes"])
        f.unlink()
    manifest = tmp / "manifest.json"
    body = {"seq": seq, "shapes": shapes, "files": files}
    manifest.write_text(json.dumps({**body, "check": _digest(body)}, indent=1) + "\n")
    fsync_path(manifest)
    fsync_path(tmp)
    final = _dir(root, _PREFIX, seq)
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    fsync_path(root)
    for old in snapshots_in(root)[:-KEEP]:
        shutil.rmtree(old)
    return final


class Scheduler:
    """The supervisor's side of MT snapshots: asks UBSCore for one (SNAP_REQ)
    every `every_commands` journaled commands, every `every_s` seconds, or on
    demand (`request`, from `xinf snapshot`), and seals each once both
    parts are written."""

    PARTS = ("u", "me")

    def __init__(self, root, every_commands: int = 0, every_s: float = 0.0):
        self.root, self.every_commands, self.every_s = pathlib.Path(root), every_commands, every_s
        self.sealed = 0             # seq of the last snapshot sealed
        self.pending = 0            # seq being written
        self.last_t = time.monotonic()
        self.requested = False
        self.last_journaled = 0

    def request(self) -> None:
        self.requested = True

    def poll(self, control) -> None:
        from ..runtime.control import DURABLE, SNAP_AT, SNAP_REQ
        at = control.get(SNAP_AT)
        if at > self.sealed:
            self.pending = at
        self.finish()
        journaled = control.get(DURABLE)
        if self.pending or control.get(SNAP_REQ):
            return
        due = (self.requested or (self.every_commands and journaled - self.last_journaled >= self.every_commands)
               or (self.every_s and time.monotonic() - self.last_t >= self.every_s))
        if due and journaled > self.sealed:
            control.put(SNAP_REQ, 1)
            self.requested = False
            self.last_journaled, self.last_t = journaled, time.monotonic()

    def finish(self) -> None:
        """Seal the pending snapshot if both parts are written."""
        if self.pending and seal(self.root, self.pending, self.PARTS) is not None:
            self.sealed, self.pending = self.pending, 0

    def restarted(self) -> None:
        """After a crash the pending snapshot is abandoned (recovery removed it)."""
        self.pending = 0


def write_snapshot(root, seq: int, arrays: dict[str, np.ndarray], initial: dict[str, np.ndarray]) -> pathlib.Path:
    """Write the arrays (as their changes from `initial`) as the snapshot at
    `seq`; returns its directory."""
    tmp = _dir(pathlib.Path(root), _TMP, seq)
    if tmp.exists():
        shutil.rmtree(tmp)
    write_part(root, seq, "core", arrays, initial)
    return seal(root, seq, ("core",))


def _check(snap: pathlib.Path) -> tuple[int, dict] | str:
    """(seq, arrays) of a snapshot, or why it cannot be used."""
    try:
        manifest = json.loads((snap / "manifest.json").read_text())
        check = manifest.pop("check")
        seq, files, shapes = int(manifest["seq"]), manifest["files"], manifest["shapes"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return f"manifest unreadable ({e})"
    if _digest(manifest) != check or snap != _dir(snap.parent, _PREFIX, seq):
        return "manifest fails its checksum"
    data = {}
    for name, digest in files.items():
        path = snap / name
        if not path.exists():
            return f"{path.name} is missing"
        if _sha256(path) != digest:
            return f"{path.name} fails its checksum"
        data[name] = np.load(path, allow_pickle=False)
    arrays = {}
    for name, shape in shapes.items():
        if f"{name}.idx.npy" not in data or f"{name}.rows.npy" not in data:
            return f"{name}: its files are not in the manifest"
        arrays[name] = Changes(tuple(shape), data[f"{name}.idx.npy"], data[f"{name}.rows.npy"])
    return seq, arrays


def load_snapshot(root, at_most: int | None = None, tidy: bool = True) -> Loaded:
    """The newest snapshot that passes its checks (older ones if it does not);
    with at_most, the newest of those cut at or before that seq. tidy: remove
    the unfinished writes a crash left; False for a reader beside a live
    pipeline (services/audit.py), which may be writing the next snapshot or
    removing the oldest while this reads."""
    root = pathlib.Path(root)
    if not root.exists():
        return Loaded(0, None, [])
    if tidy:
        for tmp in root.glob(f"{_TMP}*"):        # a write a crash interrupted
            shutil.rmtree(tmp)
    rejected = []
    for snap in reversed(snapshots_in(root)):
        if at_most is not None and seq_of(snap) > at_most:
            continue
        try:
            got = _check(snap)
        except OSError as e:                    # removed while read (tidy=False)
            got = f"unreadable ({e})"
        if isinstance(got, str):
            rejected.append(f"{snap}: {got}")
            continue
        return Loaded(got[0], got[1], rejected)
    return Loaded(0, None, rejected)
