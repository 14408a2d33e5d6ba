"""An open-loop HTTP/1.1 load generator: the engine of `xinf bench gateway`.

Open loop: request i is due at its intended time t0 + i/rate whatever the
server is doing, and its latency is measured from that intended time to the
last byte of its response. A request that waits for a free connection (all
busy with earlier requests) or for the generator itself to wake counts that
wait: there is no coordinated omission, and a server slower than the offered
rate shows latency growing with i rather than a flattered steady figure.

Limits and costs, by design:
- Requests are fully built bytes (pre-signed: `build_signed_requests`), so the
  run does no signing, encoding or formatting. The generator shares two cores
  with the server, so it is an asyncio Protocol per connection (no stream
  reader, no task or future per request) that parses only the status line,
  Content-Length and a body's leading `{"code":0,` (any other body is decoded
  to find its code). Chunked responses are not parsed (the connection is
  dropped and the request counted unanswered).
- One request in flight per connection (no pipelining): a connection sends its
  next request only after the previous response has been read completely.
- Connections are opened before t0; a connection the server drops fails only
  the request in flight on it and is reopened, and requests waiting meanwhile
  count that wait. A request not answered within `timeout_sec` (checked every
  100 ms) is an error with HTTP status 0.
- Nonces. The server takes a key's nonces only in strictly increasing order and
  within 30 s of its clock. Several connections sharing one key can deliver
  its requests out of order; give each connection its own key and run with
  `pinned=True` (request i goes on connection i % connections, in order), e.g.
  `interleave(*(build_signed_requests(key_k, ...) for key_k in keys))`. Sign
  at most a few seconds ahead of use: `nonce_start` near the run's start and
  `nonce_step_ms` near 1000 / (rate per key) keep every nonce near its send time.
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import msgspec
import numpy as np

from xinfinity.client.keys import KeyFile, reserve_nonces

_ACK_PREFIX = b'{"code":0,'
_NO_RESPONSE = 0          # the HTTP status recorded for a request with no response


class ProtocolError(Exception):
    """A response the minimal parser cannot frame."""


@dataclass(frozen=True)
class Report:
    """One open-loop run.

    sustained: the server kept up with the offered rate, defined as
    achieved_acks_per_sec >= 0.95 * offered_per_sec and latency_ms_p99 below
    p99_bound_ms. achieved_acks_per_sec counts responses with HTTP 2xx and
    code 0, over the window from the first intended send to the last response.
    Latency percentiles are over every answered request (refusals included),
    from its intended send time, in ms.
    """
    offered_per_sec: float
    achieved_acks_per_sec: float
    requests: int
    answered: int
    acks: int
    errors: dict           # (http_status, code) -> count; status 0: no response, code None: not an envelope
    latency_ms_p50: float
    latency_ms_p99: float
    latency_ms_p999: float
    latency_ms_max: float
    window_sec: float
    p99_bound_ms: float
    sustained: bool
    dispatch_lag_ms_max: float      # the generator's own lateness releasing a due request
    generator_cpu_sec: float        # this process's CPU time during the run
    intended_ns: np.ndarray = field(repr=False)   # per request, perf_counter ns
    sent_ns: np.ndarray = field(repr=False)       # -1: never sent
    done_ns: np.ndarray = field(repr=False)       # -1: never answered
    status: np.ndarray = field(repr=False)        # HTTP status, 0: no response

    @property
    def latency_ns(self) -> np.ndarray:
        """done - intended per answered request (ns)."""
        ok = self.status > 0
        return self.done_ns[ok] - self.intended_ns[ok]

    def lines(self) -> list[str]:
        errors = " ".join(f"{s}/{c}:{k}" for (s, c), k in sorted(self.errors.items(), key=str)) or "none"
        return [f"offered_per_sec={self.offered_per_sec:.0f}",
                f"achieved_acks_per_sec={self.achieved_acks_per_sec:.0f}",
                f"requests={self.requests} answered={self.answered} acks={self.acks} errors={errors}",
                f"latency_ms_p50={self.latency_ms_p50:.3f} latency_ms_p99={self.latency_ms_p99:.3f} "
                f"latency_ms_p999={self.latency_ms_p999:.3f} latency_ms_max={self.latency_ms_max:.3f}",
                f"sustained={'yes' if self.sustained else 'no'} (acks >= 0.95 x offered and "
                f"p99 < {self.p99_bound_ms:g} ms)",
                f"dispatch_lag_ms_max={self.dispatch_lag_ms_max:.3f} generator_cpu_sec={self.generator_cpu_sec:.2f}"]


# -- building requests ----------------------------------------------------------------

def build_request(method: str, path: str, host: str, body: bytes = b"", headers: tuple = ()) -> bytes:
    """One HTTP/1.1 request as bytes (keep-alive is HTTP/1.1's default)."""
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if body or method not in ("GET", "HEAD"):
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def build_signed_requests(key: KeyFile, n: int, make_body, path: str, host: str, nonce_start: int,
                          nonce_step_ms: float = 1.0) -> list[bytes]:
    """n POSTs to `path`, body make_body(i) (bytes), signed with nonces strictly increasing from nonce_start.

    Nonce i is max(nonce_start + floor(i * nonce_step_ms), nonce i-1 + 1). The
    key's in-process nonce counter is moved past the last one, so a client
    using the same key afterwards does not reuse them.
    """
    out = []
    nonce = nonce_start - 1
    for i in range(n):
        nonce = max(nonce_start + int(i * nonce_step_ms), nonce + 1)
        body = make_body(i)
        auth = key.authorization(nonce, "POST", path, body)
        out.append(build_request("POST", path, host, body, (("Authorization", auth),)))
    if n:
        reserve_nonces(key.api_key, nonce)
    return out


def interleave(*lists: list[bytes]) -> list[bytes]:
    """a0 b0 c0 a1 b1 c1 ...: with pinned=True and one list per connection, each list stays on its connection."""
    if len({len(x) for x in lists}) > 1:
        raise ValueError("interleave: the lists must have the same length")
    return [r for group in zip(*lists) for r in group]


# -- reading responses ------------------------------------------------------------------

def parse_response(buf: bytes) -> tuple[int, int, bytes, bool] | None:
    """(bytes used, status, body, server closes) of the response starting buf; None while incomplete.

    Framed by Content-Length only (1xx, 204 and 304 have no body); a chunked
    response is a ProtocolError, as is a head over 64 KiB.
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > 65536:
            raise ProtocolError("a response head over 64 KiB")
        return None
    if not buf.startswith(b"HTTP/1.") or end < 12:
        raise ProtocolError(f"not an HTTP/1.x status line: {buf[:40]!r}")
    status = int(buf[9:12])
    head = buf[:end + 2].lower()
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        length = int(head[at + 17:head.index(b"\r\n", at + 2)])
    elif status < 200 or status in (204, 304):
        length = 0
    else:
        raise ProtocolError("a response without Content-Length (chunked bodies are not parsed)")
    start = end + 4
    if len(buf) < start + length:
        return None
    return start + length, status, buf[start:start + length], b"\r\nconnection: close" in head


def response_code(body: bytes):
    """The envelope's code (None if the body is not an envelope)."""
    if body.startswith(_ACK_PREFIX):
        return 0
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    code = doc.get("code") if isinstance(doc, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


# -- the run -------------------------------------------------------------------------------

class _Connection(asyncio.Protocol):
    """One keep-alive connection: at most one request in flight (`current`, -1 when idle)."""

    def __init__(self, run: _Run, index: int):
        self.run, self.index = run, index
        self.transport = None
        self.buf = b""
        self.current = -1

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        buf = self.buf + data if self.buf else data
        try:
            parsed = parse_response(buf)
            if parsed is None:
                self.buf = buf
                return
            used, status, body, closes = parsed
            if self.current < 0 or used != len(buf):
                raise ProtocolError("bytes beyond the one response asked for")
        except (ProtocolError, ValueError):
            self.transport.abort()          # connection_lost fails the request in flight
            return
        self.buf = b""
        i, self.current = self.current, -1
        self.run.answered(i, status, body)
        if closes:
            self.transport.close()          # connection_lost reconnects
        else:
            self.run.next(self)

    def connection_lost(self, exc):
        self.run.lost(self)


class _Run:
    """The state of one open-loop run: requests due but waiting for a connection, and what each got.

    Shared mode: one backlog, any idle connection takes its head. Pinned mode:
    request i waits in connection i % connections's own backlog.
    """

    def __init__(self, host, port, requests, connections, pinned, timeout_sec):
        n = len(requests)
        self.loop = asyncio.get_running_loop()
        self.host, self.port, self.requests, self.pinned = host, port, requests, pinned
        self.timeout_ns = int(timeout_sec * 1e9)
        self.clock = time.perf_counter_ns
        self.sent = np.full(n, -1, np.int64)
        self.done = np.full(n, -1, np.int64)
        self.status = np.zeros(n, np.int32)
        self.codes: list = [None] * n
        self.intended = None
        self.conns: list[_Connection | None] = [None] * connections
        self.backlogs = [deque() for _ in range(connections if pinned else 1)]
        self.idle: deque[_Connection] = deque()
        self.remaining = n
        self.finished = self.loop.create_future()
        self.tasks: set = set()

    async def connect(self, index: int) -> None:
        while not self.finished.done():
            try:
                _, conn = await self.loop.create_connection(lambda: _Connection(self, index), self.host, self.port)
            except OSError:
                await asyncio.sleep(0.1)    # the watchdog times out what waits meanwhile
                continue
            self.conns[index] = conn
            self.next(conn)
            return

    def release(self, i: int) -> None:
        if self.pinned:
            conn = self.conns[i % len(self.conns)]
            if conn is not None and conn.current < 0 and self._alive(conn) and not self.backlogs[conn.index]:
                self.send(conn, i)
            else:
                self.backlogs[i % len(self.conns)].append(i)
            return
        while self.idle:
            conn = self.idle.popleft()
            if self._alive(conn):
                self.send(conn, i)
                return
        self.backlogs[0].append(i)

    @staticmethod
    def _alive(conn: _Connection) -> bool:
        return conn.transport is not None and not conn.transport.is_closing()

    def send(self, conn: _Connection, i: int) -> None:
        conn.current = i
        self.sent[i] = self.clock()
        conn.transport.write(self.requests[i])

    def next(self, conn: _Connection) -> None:
        backlog = self.backlogs[conn.index if self.pinned else 0]
        if backlog:
            self.send(conn, backlog.popleft())
        elif not self.pinned:
            self.idle.append(conn)

    def answered(self, i: int, status: int, body: bytes) -> None:
        self.done[i] = self.clock()
        self.status[i] = status
        self.codes[i] = response_code(body)
        self._count()

    def _count(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self.finished.set_result(None)

    def lost(self, conn: _Connection) -> None:
        if conn.current >= 0:
            conn.current = -1
            self._count()                   # unanswered: status stays 0
        conn.transport = None
        if self.conns[conn.index] is conn and not self.finished.done():
            self.conns[conn.index] = None
            task = self.loop.create_task(self.connect(conn.index))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def watchdog(self) -> None:
        """Every 100 ms: abort a connection whose request is older than the timeout, drop backlog that old."""
        while not self.finished.done():
            await asyncio.sleep(0.1)
            too_old = self.clock() - self.timeout_ns
            for conn in self.conns:
                if conn is not None and conn.current >= 0 and self.sent[conn.current] < too_old:
                    conn.transport.abort()
            for backlog in self.backlogs:
                while backlog and self.intended[backlog[0]] < too_old and not self.finished.done():
                    backlog.popleft()
                    self._count()


async def open_loop(host: str, port: int, requests: list[bytes], rate: float, connections: int, *,
                    p99_bound_ms: float = 100.0, pinned: bool = False, timeout_sec: float = 30.0) -> Report:
    """Send requests[i] at t0 + i/rate over `connections` keep-alive connections; see the module docstring."""
    n = len(requests)
    if n == 0 or rate <= 0 or connections <= 0:
        raise ValueError("open_loop: needs requests, a positive rate and at least one connection")
    run = _Run(host, port, requests, connections, pinned, timeout_sec)
    for w in range(connections):
        _, run.conns[w] = await run.loop.create_connection(lambda w=w: _Connection(run, w), host, port)
        if not pinned:
            run.idle.append(run.conns[w])
    clock = run.clock
    cpu0 = time.process_time()
    t0 = clock() + 1_000_000
    intended = run.intended = t0 + (np.arange(n, dtype=np.float64) * (1e9 / rate)).astype(np.int64)
    watchdog = asyncio.create_task(run.watchdog())
    lag_max = 0
    i = 0
    while i < n:
        now = clock()
        due = int(np.searchsorted(intended, now, side="right"))
        if due > i:
            lag_max = max(lag_max, now - int(intended[i]))
            for j in range(i, due):
                run.release(j)
            i = due
        if i < n:
            await asyncio.sleep(max(0, int(intended[i]) - clock()) / 1e9)
    await run.finished
    cpu = time.process_time() - cpu0
    watchdog.cancel()
    for task in list(run.tasks):
        task.cancel()
    for conn in run.conns:
        if conn is not None and conn.transport is not None:
            conn.transport.close()
    return _report(rate, intended, run.sent, run.done, run.status, run.codes, p99_bound_ms, lag_max, cpu)


def run_open_loop(host: str, port: int, requests: list[bytes], rate: float, connections: int, *,
                  p99_bound_ms: float = 100.0, pinned: bool = False, timeout_sec: float = 30.0) -> Report:
    """open_loop in a fresh event loop."""
    return asyncio.run(open_loop(host, port, requests, rate, connections, p99_bound_ms=p99_bound_ms,
                                 pinned=pinned, timeout_sec=timeout_sec))


def _report(rate, intended, sent, done, status, codes, p99_bound_ms, lag_max_ns, cpu) -> Report:
    n = len(intended)
    answered = status > 0
    acks = 0
    errors: Counter = Counter()
    for i in range(n):
        st = int(status[i])
        if 200 <= st < 300 and codes[i] == 0:
            acks += 1
        else:
            errors[(st, codes[i] if st else None)] += 1
    latency_ns = done[answered] - intended[answered]
    assert (latency_ns >= 0).all(), "a response before its intended send time"
    if len(latency_ns):
        p50, p99, p999 = np.percentile(latency_ns, [50, 99, 99.9]) / 1e6
        lat_max = latency_ns.max() / 1e6
        window_ns = max(int(done[answered].max()), int(intended[-1] + 1e9 / rate)) - int(intended[0])
    else:
        p50 = p99 = p999 = lat_max = float("inf")
        window_ns = int(n / rate * 1e9)
    achieved = acks / (window_ns / 1e9)
    sustained = achieved >= 0.95 * rate and p99 < p99_bound_ms
    return Report(float(rate), achieved, n, int(answered.sum()), acks, dict(errors), float(p50), float(p99),
                  float(p999), float(lat_max), window_ns / 1e9, float(p99_bound_ms), bool(sustained),
                  lag_max_ns / 1e6, cpu, intended, sent, done, status)
