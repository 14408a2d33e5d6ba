"""A real `xinf serve` for tests (tools/serve_process.py), ready when made; keys and money as a user makes them."""
from __future__ import annotations

import subprocess
import sys

from xinfinity.client import KeyFile
from xinfinity.tools.serve_process import ServeProcess, free_port

__all__ = ["Server", "free_port", "make_key", "xinf"]

XINF = [sys.executable, "-m", "xinfinity.cli"]


class Server(ServeProcess):
    """Waits for /api/v1/health (the first start may compile for minutes)."""

    def __init__(self, data_dir, port, *extra):
        super().__init__(data_dir, port, args=extra)
        assert self.wait_ready(900), self.output()

    def output(self) -> str:
        return self.tail(100)


def xinf(*args) -> subprocess.CompletedProcess:
    return subprocess.run(XINF + [str(a) for a in args], capture_output=True, text=True, timeout=120)


def make_key(tmp_path, data_dir, user, *extra) -> KeyFile:
    r = xinf("apikey", "create", "--user", user, "--json", "--data-dir", data_dir, *extra)
    assert r.returncode == 0, r.stderr
    path = tmp_path / f"{user}.json"
    path.write_text(r.stdout)
    return KeyFile.load(path)
