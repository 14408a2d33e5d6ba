"""Snapshots of the core's state: written atomically, checked when loaded.

A snapshot is a directory `snap-<seq>` (seq zero-padded, so names sort by
seq) holding one .npy file per state array and `manifest.json`: the seq it
was cut at and each file's SHA-256. It is written under a temporary name,
every file and the directory fsynced, then renamed into place and the parent
fsynced: a crash leaves either the whole snapshot or none (a leftover
temporary directory is removed at the next load). The newest two are kept;
when the newest fails its checksums, loading says so and uses the one before.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
from typing import NamedTuple

import numpy as np

_PREFIX = "snap-"
_TMP = ".tmp-"
KEEP = 2


class Loaded(NamedTuple):
    seq: int                            # 0 when there is no usable snapshot
    arrays: dict | None
    rejected: list[str]                 # snapshots skipped, each with why


def _fsync(path: pathlib.Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def write_snapshot(root, seq: int, arrays: dict[str, np.ndarray]) -> pathlib.Path:
    """Write the arrays as the snapshot at `seq`; returns its directory."""
    root = pathlib.Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"{_TMP}{seq:020d}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    files = {}
    for name, a in arrays.items():
        path = tmp / f"{name}.npy"
        np.save(path, a, allow_pickle=False)
        _fsync(path)
        files[name] = _sha256(path)
    manifest = tmp / "manifest.json"
    manifest.write_text(json.dumps({"seq": seq, "files": files}, indent=1) + "\n")
    _fsync(manifest)
    _fsync(tmp)
    final = root / f"{_PREFIX}{seq:020d}"
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync(root)
    for old in sorted(root.glob(f"{_PREFIX}*"))[:-KEEP]:
        shutil.rmtree(old)
    return final


def _check(snap: pathlib.Path) -> tuple[int, dict] | str:
    """(seq, arrays) of a snapshot, or why it cannot be used."""
    try:
        manifest = json.loads((snap / "manifest.json").read_text())
        seq, files = int(manifest["seq"]), manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"manifest unreadable ({e})"
    arrays = {}
    for name, digest in files.items():
        path = snap / f"{name}.npy"
        if not path.exists():
            return f"{path.name} is missing"
        if _sha256(path) != digest:
            return f"{path.name} fails its checksum"
        arrays[name] = np.load(path, allow_pickle=False)
    return seq, arrays


def load_snapshot(root, at_most: int | None = None) -> Loaded:
    """The newest snapshot that passes its checks (older ones if it does not);
    with at_most, the newest of those cut at or before that seq."""
    root = pathlib.Path(root)
    if not root.exists():
        return Loaded(0, None, [])
    for tmp in root.glob(f"{_TMP}*"):            # a write a crash interrupted
        shutil.rmtree(tmp)
    rejected = []
    for snap in sorted(root.glob(f"{_PREFIX}*"), reverse=True):
        if at_most is not None and int(snap.name[len(_PREFIX):]) > at_most:
            continue
        got = _check(snap)
        if isinstance(got, str):
            rejected.append(f"{snap}: {got}")
            continue
        return Loaded(got[0], got[1], rejected)
    return Loaded(0, None, rejected)
