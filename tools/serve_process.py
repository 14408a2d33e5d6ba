"""A real `xinf serve` in a subprocess, for the tools and tests that drive one
(the gateway bench, the serve drill, the integration tests): started in a
session of its own with its output in a log file, waited for until healthy,
stopped with SIGTERM (a clean stop), killed with its whole session if it
does not stop.
"""
from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import yaml

from xinfinity.client import ApiError, XinfClient

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def config_with(base, out: pathlib.Path, **pipeline) -> pathlib.Path:
    """A copy of the config file `base` with these pipeline values."""
    doc = yaml.safe_load(pathlib.Path(base).read_text()) or {}
    doc.setdefault("pipeline", {}).update(pipeline)
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


class ServeProcess:
    def __init__(self, data_dir: pathlib.Path, port: int | None = None, log: pathlib.Path | None = None,
                 args=(), ws_port: int | None = None):
        """port, ws_port: HTTP's and the WebSocket streams' (default: free ones); args: more
        `xinf serve` arguments (--config, --workers)."""
        self.data_dir = pathlib.Path(data_dir)
        self.port = port or free_port()
        self.ws_port = ws_port
        while not self.ws_port or self.ws_port == self.port:
            self.ws_port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.ws_url = f"ws://{HOST}:{self.ws_port}"         # + /ws, /ws/<stream>, /stream?streams=, /ws-api/v3
        self.log_path = log or self.data_dir.parent / f"serve-{self.port}.log"
        self.log = open(self.log_path, "ab")
        cmd = [sys.executable, "-m", "xinfinity.cli", "serve", "--data-dir", str(self.data_dir),
               "--port", str(self.port), "--ws-port", str(self.ws_port), *map(str, args)]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def info(self) -> dict | None:
        """serve.json: url, ws_url, pid, the processes' pids, restarts (None while there is none)."""
        try:
            return json.loads((self.data_dir / "serve.json").read_text())
        except (OSError, ValueError):
            return None

    def wait_ready(self, timeout_s: float, restarts: int | None = None, progress=None) -> bool:
        """Until /health answers (and serve.json counts `restarts`, if given); False if
        the server ended or time ran out. progress(seconds): called every 15 s."""
        t0 = said = time.monotonic()
        with XinfClient(self.url, timeout=2) as c:
            while self.proc.poll() is None:
                info = self.info() if restarts is not None else None
                if restarts is None or (info is not None and info.get("restarts") == restarts):
                    try:
                        c.health()
                        return True
                    except (ApiError, OSError):
                        pass
                now = time.monotonic()
                if now - t0 > timeout_s:
                    return False
                if progress and now - said >= 15:
                    said = now
                    progress(now - t0)
                time.sleep(0.005 if restarts is not None else 0.2)
        return False

    def tail(self, lines: int = 30) -> str:
        if not self.log.closed:             # stop() closes it; the file is still there to read
            self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 120) -> int:
        """SIGTERM (a clean stop) and the exit code; its whole session is killed if it
        has not stopped in timeout_s (-9 then)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)        # the supervisor and its children
            self.proc.wait()
        self.log.close()
        return self.proc.returncode
