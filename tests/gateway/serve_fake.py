"""Serve the gateway over FakeExchange and FakeAccountStore with a real granian
server, for test_server.py: `python -m tests.gateway.serve_fake PORT`.

Prints one JSON line (alice's and the admin's keys, the exchange clock) once
the app is built, then serves until SIGTERM or SIGINT.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from tests.gateway.conftest import make_world
from xinfinity.gateway.app import make_server


async def serve_forever(app, host: str, port: int, stop: asyncio.Event | None = None, **granian_options):
    """Serve `app` on host:port in the running loop until `stop` is set (if given)
    or the task is cancelled."""
    server = make_server(app, host, port, **granian_options)
    if stop is None:
        await server.serve()
        return
    serving = asyncio.ensure_future(server.serve())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait((serving, stopping), return_when=asyncio.FIRST_COMPLETED)
    if not serving.done():
        server.stop()
        await serving
    stopping.cancel()


async def main(port: int):
    w = make_world()
    keys = {name: {"api_key": k.api_key, "secret": k.secret.hex(), "kind": k.kind, "user_id": k.user_id}
            for name, k in (("alice", w.alice), ("admin", w.admin))}
    print(json.dumps({"keys": keys, "clock_ms": w.exchange.clock_ms}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve_forever(w.app, "127.0.0.1", port, stop=stop, log_enabled=False)
    print("stopped", flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
    # granian's runtime threads outlive the stopped server; at interpreter finalization one of them
    # may call into Python and abort the process (SIGABRT, seen 1 run in 3 on a loaded machine).
    # The gateway's processes leave by os._exit (runtime/supervisor.py); so does this stand-in.
    sys.stdout.flush()
    os._exit(0)
