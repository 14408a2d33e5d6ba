"""Shared-memory lifecycle: names per instance, and cleaning up after dead ones.

Every segment and semaphore of a running exchange is named
`xinf-<instance>-<part>`, where the instance is `<supervisor pid>`: the
supervisor creates them all, unlinks them on a clean exit, and at start
removes those of instances whose supervisor is no longer alive (a crash or a
SIGKILL leaves them in /dev/shm otherwise).
"""
from __future__ import annotations

import os
import pathlib
import re

SHM_DIR = pathlib.Path("/dev/shm")
PREFIX = "xinf-"
# Segments appear as /dev/shm/<name>, posix semaphores as /dev/shm/sem.<name>.
_NAME = re.compile(r"^(?:sem\.)?xinf-(\d+)-")


def instance_name(pid: int | None = None) -> str:
    return f"{PREFIX}{pid if pid is not None else os.getpid()}"


def part_name(instance: str, part: str) -> str:
    return f"{instance}-{part}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale(shm_dir: pathlib.Path = SHM_DIR) -> list[str]:
    """Remove the segments and semaphores of instances whose supervisor is dead;
    returns the names removed."""
    removed = []
    for entry in sorted(shm_dir.iterdir()) if shm_dir.exists() else []:
        m = _NAME.match(entry.name)
        if m and not _alive(int(m.group(1))):
            try:
                entry.unlink()
                removed.append(entry.name)
            except FileNotFoundError:
                pass
    return removed
