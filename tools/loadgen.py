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
  with the server: it parses only the status line, Content-Length (or a
  chunked body) and a response's leading `{"code":0,` (anything else is
  decoded to find its code).
- One request in flight per connection (no pipelining): a connection sends its
  next request only after the previous response has been read completely.
- Connections are opened before t0; a connection the server drops is reopened
  and that time counts in the next request's latency. A request not answered
  within `timeout_sec` is an error with HTTP status 0.
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
from collections import Counter
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

async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server closes) of one response."""
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or len(head) < 12:
        raise ProtocolError(f"not an HTTP/1.x status line: {head[:40]!r}")
    status = int(head[9:12])
    lower = head.lower()
    closes = b"\r\nconnection: close" in lower
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        end = lower.index(b"\r\n", at + 2)
        body = await reader.readexactly(int(lower[at + 17:end]))
    elif b"\r\ntransfer-encoding: chunked" in lower:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(chunk[:-2])
        body = b"".join(parts)
    elif status in (204, 304) or 100 <= status < 200:
        body = b""
    else:
        raise ProtocolError("a response with neither Content-Length nor chunked encoding")
    return status, body, closes


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

async def open_loop(host: str, port: int, requests: list[bytes], rate: float, connections: int, *,
                    p99_bound_ms: float = 100.0, pinned: bool = False, timeout_sec: float = 30.0) -> Report:
    """Send requests[i] at t0 + i/rate over `connections` keep-alive connections; see the module docstring."""
    n = len(requests)
    if n == 0 or rate <= 0 or connections <= 0:
        raise ValueError("open_loop: needs requests, a positive rate and at least one connection")
    clock = time.perf_counter_ns
    sent = np.full(n, -1, np.int64)
    done = np.full(n, -1, np.int64)
    status = np.zeros(n, np.int32)
    codes: list = [None] * n
    streams = [await asyncio.open_connection(host, port) for _ in range(connections)]
    queues = [asyncio.Queue() for _ in range(connections if pinned else 1)]
    cpu0 = time.process_time()
    t0 = clock() + 2_000_000                  # 2 ms to get every worker waiting
    intended = t0 + (np.arange(n, dtype=np.float64) * (1e9 / rate)).astype(np.int64)

    async def worker(w: int) -> None:
        reader, writer = streams[w]
        queue = queues[w if pinned else 0]
        while True:
            i = await queue.get()
            if i < 0:
                break
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                sent[i] = clock()
                writer.write(requests[i])
                async with asyncio.timeout(timeout_sec):
                    st, body, closes = await read_response(reader)
                done[i] = clock()
                status[i] = st
                codes[i] = response_code(body)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                    ProtocolError, ValueError):
                done[i] = -1
                closes = True
            if closes and writer is not None:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    tasks = [asyncio.create_task(worker(w)) for w in range(connections)]
    lag_max = 0
    i = 0
    while i < n:
        now = clock()
        due = int(np.searchsorted(intended, now, side="right"))
        if due > i:
            lag_max = max(lag_max, now - int(intended[i]))
            for j in range(i, due):
                queues[j % connections if pinned else 0].put_nowait(j)
            i = due
        if i < n:
            await asyncio.sleep(max(0, int(intended[i]) - clock()) / 1e9)
    for w in range(connections):
        queues[w if pinned else 0].put_nowait(-1)
    await asyncio.gather(*tasks)
    cpu = time.process_time() - cpu0
    return _report(rate, intended, sent, done, status, codes, p99_bound_ms, lag_max, cpu)


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
