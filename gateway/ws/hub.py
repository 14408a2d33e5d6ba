"""The WebSocket hub of one gateway worker: connections, who subscribed to
which stream, and fan-out.

A stream has a key (a topic string, or a tuple for the private and Binance
streams: gateway/ws/streams.py names them). `publish(key, message)` encodes
the message once and builds its WebSocket text frame once (a server's frames
are unmasked, so the same bytes go to every client); each subscriber of the
key gets a reference to those bytes appended to its pending list. A flush
round (started with loop.call_soon) writes every connection with something
pending to its transport in one write: the cost of a message is one encode
and one frame plus one list append per subscriber, and a subscriber costs
one write (one send(2)) per round, however many messages it carries.

The send(2)s, not Python, are most of the fan-out's cost (measured on the
2-core VM: ~11 µs of CPU a write on loopback, the receiver's TCP path
included; 1,000 subscribers make a round of ~12 ms of CPU, 20-30 ms of wall
time on a busy machine), so rounds are spaced by what they cost:
- a round writes for at most `flush_slice_s` per loop turn and goes on in
  the next one (loop.call_soon), so HTTP requests and pushes are served
  between its slices instead of waiting for all of it; a message queued to a
  connection the round has not reached yet goes out with it;
- the next round starts no earlier than `flush_interval_s` after this one
  started, nor earlier than its writing time / `flush_share` after it
  started (at most that share of the loop's time is spent writing: under
  load, fewer and larger rounds, time left for the requests, and fewer
  wake-ups of every subscriber);
- when idle, the first message goes out at the end of its loop turn.
Writes reach the kernel inside `transport.write` (gateway/ws/app.py sets the
transports' write buffer limit to 0; uvloop otherwise defers a write to the
end of the loop turn), so a round's slices measure what writing costs.

The sockets are the `websockets` library's server connections (gateway/ws/app.py):
the hub writes frames to `ws.transport` itself and leaves everything else to
the library (the opening and closing handshakes, ping frames every
`ping_interval_s` and the pong timeout, clients' pings and close frames).
Writing beside the library is sound because (a) compression is off, so a
text frame is its header and its payload; (b) every write is whole frames,
on the loop's thread, so the library's control frames land between ours; and
(c) the hub writes only while the library's state is OPEN, so nothing
follows the library's close frame.

Invariants:
- A connection's messages reach it in the order they were queued; a message
  queued to a stream reaches every subscriber of the stream at that moment.
- A connection whose transport holds more than `send_buffer_bytes` unsent
  after its write reads slower than its streams are produced (a slow
  consumer): it is closed at once with close code 1008 and a reason saying
  why, what was not yet written to it is dropped, and no other subscriber
  waits for it or loses a message.
- Nothing here blocks: `publish` and `send` only append. A client that stops
  reading on a quiet stream is found by the library's keepalive (no pong
  within its timeout: closed 1011); a closing connection whose close
  handshake is stuck (its buffer full) is cut off after `abort_after_s`.
"""
from __future__ import annotations

import asyncio
import time
from typing import Callable, Hashable

import msgspec
from websockets.protocol import OPEN

SEND_BUFFER_BYTES = 1 << 20     # unsent bytes a connection may hold before it counts as a slow consumer
PING_INTERVAL_S = 20.0          # the library's ping frames (Binance pings every 20 s)
STALL_S = 60.0                  # a ping unanswered this long closes it (Binance drops a client 60 s without a pong)
ABORT_AFTER_S = 5.0             # a closing connection whose close handshake has not ended by then is cut off
FLUSH_INTERVAL_S = 0.005        # the least time between the starts of two flush rounds
FLUSH_SHARE = 0.5               # the most of the loop's time flush rounds may take (spaced by their cost)
FLUSH_SLICE_S = 0.002           # the longest a round writes before letting the loop serve others
POLICY_VIOLATION = 1008         # the close code of a slow consumer (RFC 6455 7.4.1)
NORMAL_CLOSURE = 1000


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked text frame (RFC 6455 5.2): what a server sends for one message."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


class Connection:
    """One accepted WebSocket: `ws` is the library's connection (or a test's stand-in with
    `transport`, `protocol.state` and `close(code, reason)`); `protocol` names what it speaks
    (gateway/ws/zxinf.py's PROTOCOL, binance.py's STREAMS or API)."""

    __slots__ = ("id", "protocol", "ws", "pending", "keys", "closing", "close_code")

    def __init__(self, conn_id: int, protocol, ws):
        self.id = conn_id
        self.protocol = protocol
        self.ws = ws
        self.pending: list[bytes] = []      # frames waiting for the next flush, in order
        self.keys: set = set()              # the stream keys it subscribed to
        self.closing = ""                   # why it is being closed ("": it is not)
        self.close_code = 0                 # the close code to send after the next flush (0: none)


class Hub:
    def __init__(self, send_buffer_bytes: int = SEND_BUFFER_BYTES, ping_interval_s: float = PING_INTERVAL_S,
                 stall_s: float = STALL_S, abort_after_s: float = ABORT_AFTER_S,
                 flush_interval_s: float = FLUSH_INTERVAL_S, flush_share: float = FLUSH_SHARE,
                 flush_slice_s: float = FLUSH_SLICE_S, now_ms: Callable[[], int] | None = None):
        """ping_interval_s, stall_s: the library's keepalive (gateway/ws/app.py passes them on);
        flush_*: the spacing and slicing of flush rounds (the module's docstring);
        now_ms: the clock the feed stamps event times with (default: the wall clock)."""
        assert send_buffer_bytes >= 1 and ping_interval_s > 0 and stall_s > 0 and abort_after_s > 0
        assert flush_interval_s >= 0 and 0 < flush_share <= 1 and flush_slice_s > 0
        self.send_buffer_bytes = send_buffer_bytes
        self.flush_interval_s = flush_interval_s
        self.flush_share = flush_share
        self.flush_slice_s = flush_slice_s
        self.ping_interval_s = ping_interval_s
        self.stall_s = stall_s
        self.abort_after_s = abort_after_s
        self.now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self.encoder = msgspec.json.Encoder()
        self.connections: dict[int, Connection] = {}
        self._subscribers: dict[Hashable, dict[Connection, None]] = {}
        self._user_keys: dict[int, set] = {}        # user -> the private keys with a subscriber
        self._owner: dict[Hashable, int] = {}       # private key -> its user
        self._next_id = 0
        self._dirty: list[Connection] = []          # connections with frames pending, for the next round
        self._flush_handle: asyncio.Handle | None = None    # the round's next slice, or the timer before it
        self._round: list[Connection] | None = None  # the connections of the round being written
        self._round_pos = 0                         # how many of them it went through
        self._round_at = 0.0                        # loop time it started
        self._round_cost = 0.0                      # seconds its slices took so far
        self._next_round_at = float("-inf")         # loop time before which no round starts
        self._closing: set[asyncio.Task] = set()    # close handshakes in progress (held: tasks are weak)
        self.encodes = 0                            # messages encoded (publish and send), for tests and stats
        self.slow_consumers = 0                     # connections closed for reading too slowly
        self.flushes = 0                            # transport writes, for stats
        self.rounds = 0                             # flush rounds, for stats
        self.sent = 0                               # messages (frames) written, for stats
        self.subscriptions = 0                      # (connection, key) pairs now subscribed, for stats

    # -- connections ------------------------------------------------------------------
    def connect(self, protocol, ws) -> Connection:
        self._next_id += 1
        conn = Connection(self._next_id, protocol, ws)
        self.connections[conn.id] = conn
        return conn

    def disconnect(self, conn: Connection) -> None:
        """Forget `conn` and its subscriptions (its handler is ending: the socket closes)."""
        self._forget(conn)
        if not conn.closing:
            conn.closing = "disconnected"
        conn.pending.clear()
        conn.close_code = 0

    def close(self, conn: Connection, reason: str, code: int = POLICY_VIOLATION) -> None:
        """Close `conn` now with `code` and `reason` (at most 123 bytes: RFC 6455 5.5.1): it gets
        nothing more; if its close handshake is stuck, it is cut off after abort_after_s."""
        if conn.closing:
            return
        conn.closing = reason
        self._forget(conn)
        conn.pending.clear()
        self._close(conn, code, reason)

    def end(self, conn: Connection) -> None:
        """Close `conn` normally once what is queued for it is written (after a refusal that ends it)."""
        if conn.closing:
            return
        conn.closing = "ended"
        self._forget(conn)
        conn.close_code = NORMAL_CLOSURE
        self._mark(conn)

    def _forget(self, conn: Connection) -> None:
        for key in list(conn.keys):
            self.unsubscribe(conn, key)
        self.connections.pop(conn.id, None)

    def _close(self, conn: Connection, code: int, reason: str) -> None:
        ws = conn.ws
        if ws.protocol.state is not OPEN:
            return
        task = asyncio.get_running_loop().create_task(ws.close(code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        asyncio.get_running_loop().call_later(self.abort_after_s, _abort, ws)

    # -- subscriptions ------------------------------------------------------------------
    def subscribe(self, conn: Connection, key: Hashable, user_id: int = 0) -> None:
        """user_id: the owner of a private stream (`user_keys` lists it), 0 for a public one."""
        if conn.closing:
            return
        subs = self._subscribers.get(key)
        if subs is None:
            subs = self._subscribers[key] = {}
            if user_id:
                self._owner[key] = user_id
                self._user_keys.setdefault(user_id, set()).add(key)
        subs[conn] = None
        if key not in conn.keys:
            conn.keys.add(key)
            self.subscriptions += 1

    def unsubscribe(self, conn: Connection, key: Hashable) -> None:
        if key in conn.keys:
            conn.keys.remove(key)
            self.subscriptions -= 1
        subs = self._subscribers.get(key)
        if subs is None:
            return
        subs.pop(conn, None)
        if not subs:
            del self._subscribers[key]
            user_id = self._owner.pop(key, 0)
            if user_id:
                keys = self._user_keys[user_id]
                keys.discard(key)
                if not keys:
                    del self._user_keys[user_id]

    def has(self, key: Hashable) -> bool:
        return key in self._subscribers

    def subscribers(self, key: Hashable) -> int:
        return len(self._subscribers.get(key, ()))

    def has_private(self) -> bool:
        """Has any private stream a subscriber?"""
        return bool(self._user_keys)

    def user_keys(self, user_id: int) -> set:
        """The private stream keys of `user_id` that someone subscribed to (empty: no one)."""
        return self._user_keys.get(user_id, _EMPTY)

    # -- sending ------------------------------------------------------------------------
    def encode(self, message) -> str:
        """A message as the text every subscriber is sent (counted in `encodes`)."""
        self.encodes += 1
        return self.encoder.encode(message).decode()

    def publish(self, key: Hashable, message) -> int:
        """Encode `message` once and queue it to every subscriber of `key`; the number queued."""
        subs = self._subscribers.get(key)
        if not subs:
            return 0
        return self.deliver(key, self.encode(message))

    def deliver(self, key: Hashable, data: str) -> int:
        """Queue encoded `data` to every subscriber of `key` (one frame, shared); the number queued."""
        subs = self._subscribers.get(key)
        if not subs:
            return 0
        frame = text_frame(data.encode())
        dirty = self._dirty
        for conn in subs:
            pending = conn.pending
            if not pending:
                dirty.append(conn)
            pending.append(frame)
        if self._flush_handle is None:
            self._schedule()
        return len(subs)

    def send(self, conn: Connection, message) -> None:
        """A reply to one connection (a subscription's answer, an error)."""
        if conn.closing:
            return
        conn.pending.append(text_frame(self.encoder.encode(message)))
        self.encodes += 1
        if len(conn.pending) == 1:
            self._mark(conn)

    def _mark(self, conn: Connection) -> None:
        """Flush `conn` in the next round."""
        if conn not in self._dirty:             # rare: send and end, a handful per connection
            self._dirty.append(conn)
        if self._flush_handle is None:
            self._schedule()

    def _schedule(self) -> None:
        """The next round: at the end of this loop turn, or once the last one's spacing is over."""
        loop = asyncio.get_running_loop()
        delay = self._next_round_at - loop.time()
        self._flush_handle = loop.call_soon(self._flush) if delay <= 0 else loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        """A slice of the round: write dirty connections' pending frames, each connection's in one
        write, for at most flush_slice_s (the rest in the next loop turn); close slow consumers."""
        self._flush_handle = None
        clock = time.perf_counter
        started = clock()
        loop = asyncio.get_running_loop()
        if self._round is None:                 # a new round: the connections dirty now
            self._round, self._dirty = self._dirty, []
            self._round_at, self._round_pos, self._round_cost = loop.time(), 0, 0.0
            self.rounds += 1
        conns, pos, end = self._round, self._round_pos, len(self._round)
        deadline = started + self.flush_slice_s
        bound = self.send_buffer_bytes
        slow = []
        writes = sent = 0
        while pos < end:
            conn = conns[pos]
            pos += 1
            frames = conn.pending
            if not frames and not conn.close_code:
                continue                        # closed since it was marked, or written already
            conn.pending = []
            ws = conn.ws
            if ws.protocol.state is not OPEN:
                continue                        # the library is closing it: nothing may follow its close frame
            transport = ws.transport
            if frames:
                transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
                writes += 1
                sent += len(frames)
            if conn.close_code:
                code, conn.close_code = conn.close_code, 0
                self._close(conn, code, "")
            elif transport.get_write_buffer_size() > bound:
                slow.append(conn)
            if not writes & 15 and clock() > deadline:
                break
        self.flushes += writes
        self.sent += sent
        for conn in slow:
            self.slow_consumers += 1
            self.close(conn, f"slow consumer: more than {bound} bytes were waiting to be sent")
        self._round_cost += clock() - started
        if pos < end:                           # the rest after what else the loop has to do
            self._round_pos = pos
            self._flush_handle = loop.call_soon(self._flush)
            return
        self._round = None
        self._next_round_at = self._round_at + max(self.flush_interval_s, self._round_cost / self.flush_share)
        if self._dirty:
            self._schedule()


def _abort(ws) -> None:
    """Cut a closing connection off if its close handshake has not ended."""
    if not ws.transport.is_closing():
        ws.transport.abort()


_EMPTY: set = frozenset()
