"""Test doubles for the gateway: FakeExchange, FakeAccountStore, FakeTokenIssuer,
and a client that drives the RSGI app in-process (FakeScope, FakeProto).

The fakes keep state in dicts and record every command and every nonce
advance, so a test can assert that a refused request changed nothing. They
implement the interfaces the gateway codes against (gateway/model.py's
Exchange; the account store's methods), with just enough behaviour to check
the routes: FakeExchange locks balances and rests orders but never matches
(a test queues fills with `next_fills`).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import secrets
import socket
import subprocess
import sys
import time
from typing import NamedTuple

import msgspec
import pytest

from xinfinity.accounts import signing
from xinfinity.accounts.errors import AccountError
from xinfinity.accounts.permissions import ADMIN, READ, TRADE
from xinfinity.accounts.store import KeyInfo, KeyRecord, NewKey   # the records the real store returns
from xinfinity.config import DEFAULT_ASSETS, DEFAULT_SYMBOLS, Gateway
from xinfinity.engine.records import R_INSUFFICIENT_BALANCE, R_ORDER_NOT_FOUND, REASON_TEXT
from xinfinity.gateway import model
from xinfinity.gateway.app import build_app

T0_MS = 1_700_000_000_000
BTC, USDT, ETH = 1, 2, 3
BTC_USDT, ETH_USDT = 0, 1
OPEN = (model.NEW, model.PARTIALLY_FILLED)


# -- FakeExchange ------------------------------------------------------------------------
class FakeExchange:
    """gateway/model.py's Exchange over dicts. `commands` lists every command
    received, as (name, args); `fail_next` makes the next command raise."""

    def __init__(self):
        self.assets = list(DEFAULT_ASSETS)
        self.symbols = list(DEFAULT_SYMBOLS)
        self._symbols = {s.id: s for s in self.symbols}
        self.is_ready = True
        self.clock_ms = T0_MS
        self.commands: list[tuple] = []
        self.balance: dict[tuple[int, int], list[int]] = {}     # (user, asset) -> [avail, frozen]
        self.orders_by_id: dict[int, model.Order] = {}
        self.locks: dict[int, tuple[int, int]] = {}              # order -> (asset, amount)
        self.trade_list: list[model.Trade] = []
        self.next_fills: tuple = ()
        self.fail_next: BaseException | None = None
        self.seq = 0
        self.next_order_id = 100

    def ready(self) -> bool:
        return self.is_ready

    def now_ms(self) -> int:
        return self.clock_ms

    def _command(self, name, *args) -> int:
        self.commands.append((name, args))
        if self.fail_next is not None:
            e, self.fail_next = self.fail_next, None
            raise e
        self.seq += 1
        return self.seq

    def _reject(self, seq, order_id, reason):
        return model.Result(seq, order_id, model.REJECTED, REASON_TEXT[reason], reason, self.clock_ms)

    def _cost(self, s, price, qty):
        base = self.assets[[a.id for a in self.assets].index(s.base_asset_id)]
        quote = self.assets[[a.id for a in self.assets].index(s.quote_asset_id)]
        return price * qty * 10**quote.decimals // 10**(s.price_decimals + base.decimals)

    async def place(self, user_id, symbol_id, side, order_type, time_in_force, price, qty, quote_qty, cid):
        seq = self._command("place", user_id, symbol_id, side, order_type, time_in_force, price, qty, quote_qty,
                            cid)
        s = self._symbols[symbol_id]
        if side == "BUY":
            asset, amount = s.quote_asset_id, (self._cost(s, price, qty) if order_type == "LIMIT" else quote_qty)
        else:
            asset, amount = s.base_asset_id, qty
        bal = self.balance.setdefault((user_id, asset), [0, 0])
        if bal[0] < amount:
            return self._reject(seq, 0, R_INSUFFICIENT_BALANCE)
        bal[0] -= amount
        bal[1] += amount
        order_id, self.next_order_id = self.next_order_id, self.next_order_id + 1
        fills, self.next_fills = self.next_fills, ()
        filled = sum(f.qty for f in fills)
        status = model.NEW if not filled else model.FILLED if filled >= qty else model.PARTIALLY_FILLED
        self.orders_by_id[order_id] = model.Order(
            order_id, user_id, symbol_id, side, order_type, time_in_force, price, qty, quote_qty, filled,
            sum(f.quote_qty for f in fills), status, cid, self.clock_ms, self.clock_ms, seq)
        self.locks[order_id] = (asset, amount)
        return model.Result(seq, order_id, status, "", 0, self.clock_ms, filled, tuple(fills))

    def _open_order(self, user_id, order_id):
        o = self.orders_by_id.get(order_id)
        return o if o is not None and o.user_id == user_id and o.status in OPEN else None

    async def cancel(self, user_id, order_id):
        seq = self._command("cancel", user_id, order_id)
        o = self._open_order(user_id, order_id)
        if o is None:
            return self._reject(seq, order_id, R_ORDER_NOT_FOUND)
        asset, amount = self.locks.pop(order_id)
        bal = self.balance[(user_id, asset)]
        bal[0] += amount
        bal[1] -= amount
        self.orders_by_id[order_id] = o._replace(status=model.CANCELED, updated_at=self.clock_ms)
        return model.Result(seq, order_id, model.CANCELED, "", 0, self.clock_ms, o.filled_qty)

    async def reduce(self, user_id, order_id, reduce_qty):
        seq = self._command("reduce", user_id, order_id, reduce_qty)
        o = self._open_order(user_id, order_id)
        if o is None:
            return self._reject(seq, order_id, R_ORDER_NOT_FOUND)
        o = o._replace(qty=max(o.filled_qty, o.qty - reduce_qty), updated_at=self.clock_ms)
        if o.qty == o.filled_qty:
            o = o._replace(status=model.CANCELED)
        self.orders_by_id[order_id] = o
        return model.Result(seq, order_id, o.status, "", 0, self.clock_ms, o.filled_qty)

    async def move(self, user_id, order_id, new_price):
        seq = self._command("move", user_id, order_id, new_price)
        o = self._open_order(user_id, order_id)
        if o is None:
            return self._reject(seq, order_id, R_ORDER_NOT_FOUND)
        self.orders_by_id[order_id] = o._replace(price=new_price, updated_at=self.clock_ms)
        return model.Result(seq, order_id, o.status, "", 0, self.clock_ms, o.filled_qty)

    async def deposit(self, user_id, asset_id, amount):
        seq = self._command("deposit", user_id, asset_id, amount)
        bal = self.balance.setdefault((user_id, asset_id), [0, 0])
        bal[0] += amount
        return model.Result(seq, 0, model.FILLED, "", 0, self.clock_ms, avail=bal[0], frozen=bal[1])

    async def withdraw(self, user_id, asset_id, amount):
        seq = self._command("withdraw", user_id, asset_id, amount)
        bal = self.balance.setdefault((user_id, asset_id), [0, 0])
        if bal[0] < amount:
            return self._reject(seq, 0, R_INSUFFICIENT_BALANCE)
        bal[0] -= amount
        return model.Result(seq, 0, model.FILLED, "", 0, self.clock_ms, avail=bal[0], frozen=bal[1])

    def order(self, user_id, order_id):
        o = self.orders_by_id.get(order_id)
        return o if o is not None and o.user_id == user_id else None

    def order_by_cid(self, user_id, cid):
        return next((o for o in self.orders_by_id.values() if o.user_id == user_id and o.cid == cid), None)

    def orders(self, user_id, symbol_id, open_only, limit):
        mine = [o for o in self.orders_by_id.values() if o.user_id == user_id
                and (symbol_id is None or o.symbol_id == symbol_id) and (not open_only or o.status in OPEN)]
        return sorted(mine, key=lambda o: -o.order_id)[:limit]

    def trades(self, user_id, symbol_id, limit):
        mine = [t for t in self.trade_list if t.user_id == user_id and (symbol_id is None or t.symbol_id == symbol_id)]
        return sorted(mine, key=lambda t: -t.trade_id)[:limit]

    def balances(self, user_id):
        return [model.Balance(asset, *b) for (user, asset), b in sorted(self.balance.items()) if user == user_id]


# -- FakeAccountStore, FakeTokenIssuer ------------------------------------------------------------
class User(NamedTuple):
    user_id: int
    username: str
    email: str
    password: str


class FakeAccountStore:
    """The account store's interface over dicts; plain-text passwords (a test
    double). `nonce_advances` records every advance_nonce call and its answer,
    `signature_claims` every claim_signature call and its answer."""

    def __init__(self, now_ms=lambda: T0_MS):
        self.now_ms = now_ms
        self.users: dict[int, User] = {}
        self.keys: dict[str, KeyRecord] = {}
        self.infos: dict[str, KeyInfo] = {}
        self.nonces: dict[str, int] = {}
        self.nonce_advances: list[tuple[str, int, bool]] = []
        self.claims: dict[tuple[str, bytes], int] = {}          # (api key, digest) -> ts_ms
        self.signature_claims: list[tuple[str, bytes, int, bool]] = []

    def register(self, username, email, password):
        if len(password) < 8:
            raise AccountError(1001, "password: at least 8 characters")
        if any(u.username == username or u.email == email for u in self.users.values()):
            raise AccountError(1005, "username or email is taken")
        user_id = len(self.users) + 1001
        self.users[user_id] = User(user_id, username, email, password)
        return user_id

    def login(self, email_or_username, password):
        return next((u for u in self.users.values()
                     if email_or_username in (u.email, u.username) and u.password == password), None)

    def create_api_key(self, user_id, label="", permissions=READ | TRADE, kind="ed25519"):
        api_key = "AK_" + secrets.token_hex(8).upper()
        secret = secrets.token_bytes(32)
        public = signing.public_key_of(secret) if kind == signing.ED25519 else None
        self.keys[api_key] = KeyRecord(api_key, user_id, kind, public, None if public else secret, permissions, False, 0)
        self.infos[api_key] = KeyInfo(api_key, kind, permissions, label, self.now_ms(), None)
        pem = signing.ed25519_pem(secret) if public else None
        return NewKey(api_key, kind, secret.hex(), pem, permissions)

    def api_keys(self, user_id):
        return [self.infos[k] for k, r in self.keys.items() if r.user_id == user_id]

    def revoke_api_key(self, user_id, api_key, now_ms):
        r = self.keys.get(api_key)
        if r is None or r.user_id != user_id or r.revoked:
            return False
        self.keys[api_key] = r._replace(revoked=True)
        self.infos[api_key] = self.infos[api_key]._replace(revoked_ms=now_ms)
        return True

    def key(self, api_key):
        return self.keys.get(api_key)

    def advance_nonce(self, api_key, ts_nonce):
        """As the real one: only above the mark, and never for a revoked key."""
        key = self.keys.get(api_key)
        ok = key is not None and not key.revoked and ts_nonce > self.nonces.get(api_key, 0)
        if ok:
            self.nonces[api_key] = ts_nonce
        self.nonce_advances.append((api_key, ts_nonce, ok))
        return ok

    def claim_signature(self, api_key, digest, ts_ms, forget_before_ms):
        """As the real one: once per (key, digest), never for a revoked key; older claims forgotten first."""
        self.claims = {k: t for k, t in self.claims.items() if t >= forget_before_ms}
        key = self.keys.get(api_key)
        ok = key is not None and not key.revoked and (api_key, digest) not in self.claims
        if ok:
            self.claims[(api_key, digest)] = ts_ms
        self.signature_claims.append((api_key, digest, ts_ms, ok))
        return ok


class FakeTokenIssuer:
    """TokenIssuer's interface: opaque tokens in a dict, expiring after ttl_s."""

    def __init__(self, ttl_s=3600):
        self.ttl_s = ttl_s
        self.tokens: dict[str, tuple[int, int]] = {}

    def issue(self, user_id, now_s):
        token = "tok_" + secrets.token_hex(16)
        self.tokens[token] = (user_id, now_s + self.ttl_s)
        return token

    def verify(self, token, now_s):
        user_id, expires_s = self.tokens.get(token, (None, 0))
        if user_id is None or now_s >= expires_s:
            raise AccountError(2002, "token is invalid or expired")
        return user_id


# -- driving the RSGI app in-process ----------------------------------------------------------------
class FakeHeaders:
    def __init__(self, headers: dict):
        self._h = {k.lower(): v for k, v in headers.items()}

    def get(self, key, default=None):
        return self._h.get(key.lower(), default)

    def __contains__(self, key):
        return key.lower() in self._h

    def items(self):
        return list(self._h.items())


class FakeScope(NamedTuple):
    method: str
    path: str
    query_string: str
    headers: FakeHeaders
    proto: str = "http"
    http_version: str = "1.1"
    scheme: str = "http"


class FakeProto:
    """An RSGI HTTP protocol over a body given as chunks; records the response."""

    def __init__(self, chunks: list[bytes]):
        self.chunks = chunks
        self.read = 0                  # bytes the app consumed
        self.status = None
        self.headers = None
        self.body = None
        self.file = None

    async def __call__(self):
        body = b"".join(self.chunks)
        self.read += len(body)
        return body

    def __aiter__(self):
        return self._iter()

    async def _iter(self):
        for c in self.chunks:
            self.read += len(c)
            yield c

    def response_bytes(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def response_file(self, status, headers, file):
        self.status, self.headers, self.file = status, headers, file


class Answer(NamedTuple):
    status: int
    json: dict | None
    proto: FakeProto

    @property
    def code(self):
        return self.json["code"]

    @property
    def data(self):
        return self.json["data"]


class Key(NamedTuple):
    api_key: str
    secret: bytes
    kind: str
    user_id: int


class Client:
    """Calls `app.__rsgi__` as granian would. `key=` signs the request with
    ts_nonce = the exchange's clock + a counter (so each is fresh)."""

    def __init__(self, app, exchange):
        self.app = app
        self.exchange = exchange
        self.counter = 0

    def nonce(self) -> int:
        self.counter += 1
        return self.exchange.clock_ms + self.counter

    def request(self, method, path, body=None, *, key: Key | None = None, token=None, headers=None,
                content_type="application/json", chunks=None, ts_nonce=None, sign_body=None,
                sign_path=None, content_length=True) -> Answer:
        raw = body if isinstance(body, bytes) else b"" if body is None else msgspec.json.encode(body)
        h = {}
        if raw or chunks is not None:
            if content_type:
                h["content-type"] = content_type
            if content_length and chunks is None:
                h["content-length"] = str(len(raw))
        if key is not None:
            h["authorization"] = signing.sign_request(
                key.kind, key.api_key, key.secret, self.nonce() if ts_nonce is None else ts_nonce, method,
                path if sign_path is None else sign_path, raw if sign_body is None else sign_body)
        if token is not None:
            h["authorization"] = f"Bearer {token}"
        h.update(headers or {})
        p, _, qs = path.partition("?")
        proto = FakeProto(chunks if chunks is not None else [raw])
        asyncio.run(self.app.__rsgi__(FakeScope(method, p, qs, FakeHeaders(h)), proto))
        answer = msgspec.json.decode(proto.body) if proto.body is not None and proto.headers[0][1] == \
            "application/json" else None
        return Answer(proto.status, answer, proto)


class World(NamedTuple):
    exchange: FakeExchange
    store: FakeAccountStore
    tokens: FakeTokenIssuer
    app: object
    client: Client
    alice: Key          # READ|TRADE, ed25519, user 1001, funded
    bob: Key            # READ|TRADE, hmac, user 1002
    admin: Key          # ADMIN, user 1003

    def key(self, user_id, permissions, kind="ed25519") -> Key:
        new = self.store.create_api_key(user_id, "", permissions, kind)
        # What a client signs with: the Ed25519 seed, or an HMAC key's secret text (accounts/signing.hmac_key).
        secret = bytes.fromhex(new.secret_hex) if kind == signing.ED25519 else new.secret_hex.encode()
        return Key(new.api_key, secret, kind, user_id)


def make_world(config=Gateway(), market=None) -> World:
    """`market`: the market data the Binance API reads (tests/gateway/binance's FakeMarketData)."""
    exchange = FakeExchange()
    store = FakeAccountStore(lambda: exchange.clock_ms)
    tokens = FakeTokenIssuer()
    app = build_app(exchange, store, tokens, config, market=market)
    users = [store.register(name, f"{name}@example.com", "password-" + name) for name in ("alice", "bob", "root")]
    w = World(exchange, store, tokens, app, Client(app, exchange), None, None, None)
    w = w._replace(alice=w.key(users[0], READ | TRADE), bob=w.key(users[1], READ | TRADE, "hmac"),
                   admin=w.key(users[2], ADMIN))
    exchange.balance[(users[0], USDT)] = [1_000_000 * 10**6, 0]
    exchange.balance[(users[0], BTC)] = [10 * 10**8, 0]
    return w


@pytest.fixture
def world() -> World:
    return make_world()


# -- a real granian server over the fakes, in a subprocess ------------------------------------
ROOT = pathlib.Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def served(module: str, args: list, ports: list[int], timeout_s: float = 20):
    """Run `python -m <module> <args>` (a serve_*.py of these tests), which prints one JSON line
    once its app is built and "stopped" when SIGTERM has stopped it; yields that JSON once every
    port in `ports` takes connections, and checks the clean stop afterwards."""
    proc = subprocess.Popen([sys.executable, "-m", module, *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline() or "{}")
        assert info, proc.stderr.read()
        deadline = time.monotonic() + timeout_s
        for port in ports:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
                    time.sleep(0.05)
        yield info
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "stopped" in out, err
    assert "Traceback" not in err, err
