"""Serve the gateway over FakeExchange, FakeMarketData and a real AccountStore
with a real granian server, for test_clients.py:
`python -m tests.gateway.binance.serve_binance PORT DATA_DIR`.

The keys are made as an operator makes them, by `xinf apikey create --json`
(accounts/cli.py, in this process), in DATA_DIR's account store: one user per
client and key kind (USERS), each with one key of that kind, funded with
10 BTC and 1,000,000 USDT and given the seeded trades, so each client's test
starts from the same account. The server's clock is the real one (clients sign
with it); the market and the users' trades are seeded at T0 = now
(tests/gateway/binance/conftest.py), so a test can rebuild what the server
holds. Prints one JSON line {keys: {user: key file}, t0_ms} once the app is
built, then serves until SIGTERM or SIGINT.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import signal
import sys
import time

from tests.gateway.binance.conftest import FakeMarketData, seed_market, seed_user_trades
from tests.gateway.conftest import BTC, USDT, FakeExchange, FakeTokenIssuer
from tests.gateway.serve_fake import serve_forever
from xinfinity.accounts import cli
from xinfinity.accounts.store import AccountStore
from xinfinity.config import Gateway
from xinfinity.gateway.app import build_app


USERS = {"ccxt_hmac": ("--hmac",), "ccxt_ed25519": (), "pb_hmac": ("--hmac",), "pb_ed25519": ()}


def xinf_apikey_create(data_dir: str, user: str, *flags: str) -> dict:
    """What `xinf apikey create --user USER --json [flags]` prints, as a dict."""
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(parser.parse_args(["create", "--user", user, "--json", "--data-dir", data_dir, *flags])) == 0
    return json.loads(out.getvalue())


async def main(port: int, data_dir: str):
    keys = {user: xinf_apikey_create(data_dir, user, *flags) for user, flags in USERS.items()}
    t0_ms = time.time_ns() // 1_000_000
    exchange = FakeExchange()
    exchange.clock_ms = t0_ms
    for key in keys.values():
        exchange.balance[(key["user_id"], USDT)] = [1_000_000 * 10**6, 0]
        exchange.balance[(key["user_id"], BTC)] = [10 * 10**8, 0]
        seed_user_trades(exchange, key["user_id"], t0_ms)
    market = seed_market(FakeMarketData(exchange.symbols), t0_ms)
    store = AccountStore(cli.accounts_db(data_dir))
    app = build_app(exchange, store, FakeTokenIssuer(), Gateway(), now_ms=lambda: time.time_ns() // 1_000_000,
                    market=market)
    print(json.dumps({"keys": keys, "t0_ms": t0_ms}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve_forever(app, "127.0.0.1", port, stop=stop, log_enabled=False)
    print("stopped", flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
    # As serve_fake.py: granian's threads may abort the interpreter's finalization; leave at once.
    sys.stdout.flush()
    os._exit(0)
