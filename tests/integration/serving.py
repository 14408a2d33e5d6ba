"""A real `xinf serve` for tests: a subprocess on a free loopback port, keys and money as a user makes them."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

from xinfinity.client import ApiError, KeyFile, XinfClient

XINF = [sys.executable, "-m", "xinfinity.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`xinf serve` in a subprocess; waits for /api/v1/health (the first start may compile)."""

    def __init__(self, data_dir, port, *extra):
        self.data_dir, self.port = data_dir, port
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(data_dir.parent / f"serve-{port}.log", "a")
        self.proc = subprocess.Popen(XINF + ["serve", "--data-dir", str(data_dir), "--port", str(port), *extra],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 900
        with XinfClient(self.url, timeout=5) as c:
            while True:
                assert self.proc.poll() is None, self.output()
                try:
                    if c.health() is not None:
                        return
                except (ApiError, OSError):
                    pass
                assert time.monotonic() < deadline, self.output()
                time.sleep(0.2)

    def output(self) -> str:
        self.log.flush()
        return (self.data_dir.parent / f"serve-{self.port}.log").read_text()[-4000:]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(120)
        self.log.close()
        return code


def xinf(*args) -> subprocess.CompletedProcess:
    return subprocess.run(XINF + [str(a) for a in args], capture_output=True, text=True, timeout=120)


def make_key(tmp_path, data_dir, user, *extra) -> KeyFile:
    r = xinf("apikey", "create", "--user", user, "--json", "--data-dir", data_dir, *extra)
    assert r.returncode == 0, r.stderr
    path = tmp_path / f"{user}.json"
    path.write_text(r.stdout)
    return KeyFile.load(path)
