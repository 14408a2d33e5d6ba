"""The WebSocket hub of one gateway worker: connections, who subscribed to
which stream, and fan-out.

A stream has a key (a topic string, or a tuple for the private and Binance
streams: gateway/ws/streams.py names them). `publish(key, message)` encodes
the message once and puts that same str on the send queue of every subscriber
of the key: the cost of a message is one encode plus one queue append per
subscriber, whatever the subscriber count. Each connection has one bounded
send queue and one writer task draining it in order; granian's RSGI transport
allows one send at a time per connection, so nothing else ever sends.

Invariants:
- A connection's messages reach it in the order they were queued; a message
  queued to a stream reaches every subscriber of the stream at that moment.
- A full send queue means the client reads slower than its streams are
  produced (a slow consumer): the connection is closed at once, its queue
  dropped and replaced by one last message that says why (the protocol's
  `notice`), and no other subscriber waits for it or loses a message.
- Nothing here blocks: `publish` and `send` only append; a writer stuck on
  one send for longer than `stall_s` (a peer that stopped reading, or died,
  on a quiet stream) is closed by the heartbeat as a slow consumer too.

Limits: granian 2.8.9's RSGI WebSocket transport can send text and binary
messages only, and closes an accepted connection without a status code. So
the server cannot send ping frames (it answers the client's: tungstenite does
it) nor close codes: the heartbeat (every `ping_interval_s`, 20 s as Binance)
sends each connection its protocol's keep-alive message, if it has one, and
checks the writers; a close reason travels as the last message.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Callable, Hashable

import msgspec

SEND_QUEUE = 1024           # messages waiting per connection before it counts as a slow consumer
PING_INTERVAL_S = 20.0      # the heartbeat's period (Binance pings every 20 s)
STALL_S = 60.0              # a send stuck this long closes it (Binance drops a client 60 s without a pong)
ABORT_AFTER_S = 5.0         # a closing connection whose writer is still stuck by then is cut off
_CLOSE = object()           # the writer's last item: end the connection


class Connection:
    """One accepted WebSocket. `protocol`, shared by the connections speaking it, gives
    their keep-alive and closing messages (gateway/ws/zxinf.py, binance.py); `writer` is
    the task running `write`."""

    __slots__ = ("id", "protocol", "queue", "capacity", "keys", "closing", "sending_since", "writer", "_wake")

    def __init__(self, conn_id: int, protocol, capacity: int):
        self.id = conn_id
        self.protocol = protocol
        self.queue: deque = deque()
        self.capacity = capacity
        self.keys: set = set()              # the stream keys it subscribed to
        self.closing = ""                   # why it is being closed ("": it is not)
        self.sending_since = 0.0            # loop time its writer started the send in progress (0: none)
        self.writer: asyncio.Task | None = None
        self._wake: asyncio.Future | None = None

    def offer(self, data: str) -> bool:
        """Queue `data`; False if the queue is full (nothing queued)."""
        if len(self.queue) >= self.capacity:
            return False
        self.queue.append(data)
        self.wake()
        return True

    def wake(self) -> None:
        """Wake the writer if it waits for something to send."""
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def write(self, transport) -> None:
        """The connection's writer: send what is queued, in order, until told to end."""
        loop = asyncio.get_running_loop()
        queue = self.queue
        while True:
            while queue:
                data = queue.popleft()
                if data is _CLOSE:
                    return
                self.sending_since = loop.time()
                await transport.send_str(data)
                self.sending_since = 0.0
            self._wake = loop.create_future()
            await self._wake

    def abort(self) -> None:
        """Cut a closing connection off if its writer is still stuck in a send."""
        if self.writer is not None and self.sending_since:
            self.writer.cancel()

    def _end(self, last: str | None) -> None:
        """Drop what is queued; send `last` (if any), then end the writer."""
        self.queue.clear()
        if last is not None:
            self.queue.append(last)
        self.queue.append(_CLOSE)
        self.wake()


class Hub:
    def __init__(self, send_queue: int = SEND_QUEUE, ping_interval_s: float = PING_INTERVAL_S,
                 stall_s: float = STALL_S, abort_after_s: float = ABORT_AFTER_S,
                 now_ms: Callable[[], int] | None = None):
        """now_ms: the clock of the keep-alive messages (default: the wall clock)."""
        assert send_queue >= 1 and ping_interval_s > 0 and stall_s > 0 and abort_after_s > 0
        self.send_queue = send_queue
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
        self._heartbeat: asyncio.Task | None = None
        self.encodes = 0                            # messages encoded (publish and send), for tests and stats
        self.slow_consumers = 0                     # connections closed for reading too slowly

    # -- connections ------------------------------------------------------------------
    def connect(self, protocol) -> Connection:
        self._next_id += 1
        conn = Connection(self._next_id, protocol, self.send_queue)
        self.connections[conn.id] = conn
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat())
        return conn

    def disconnect(self, conn: Connection) -> None:
        """Forget `conn` and its subscriptions (its handler ends it)."""
        for key in list(conn.keys):
            self.unsubscribe(conn, key)
        self.connections.pop(conn.id, None)
        if not conn.closing:
            conn.closing = "disconnected"
            conn._end(None)

    def close(self, conn: Connection, reason: str) -> None:
        """Close `conn`: it gets nothing more but its protocol's notice of `reason`; if its
        writer is stuck, it is cut off after ABORT_AFTER_S."""
        if conn.closing:
            return
        conn.closing = reason
        for key in list(conn.keys):
            self.unsubscribe(conn, key)
        conn._end(self.encode(conn.protocol.notice(reason)))
        asyncio.get_running_loop().call_later(self.abort_after_s, conn.abort)

    def end(self, conn: Connection) -> None:
        """Close `conn` once what is queued for it is sent (after a refusal that ends it)."""
        if conn.closing:
            return
        conn.closing = "ended"
        for key in list(conn.keys):
            self.unsubscribe(conn, key)
        conn.queue.append(_CLOSE)
        conn.wake()

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
        conn.keys.add(key)

    def unsubscribe(self, conn: Connection, key: Hashable) -> None:
        conn.keys.discard(key)
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
        """Queue encoded `data` to every subscriber of `key`; the number queued."""
        subs = self._subscribers.get(key)
        if not subs:
            return 0
        slow = [conn for conn in subs if not conn.offer(data)]
        queued = len(subs) - len(slow)
        for conn in slow:
            self._slow(conn)
        return queued

    def send(self, conn: Connection, message) -> None:
        """A reply to one connection (a subscription's answer, an error)."""
        if not conn.closing and not conn.offer(self.encode(message)):
            self._slow(conn)

    def _slow(self, conn: Connection) -> None:
        self.slow_consumers += 1
        self.close(conn, f"slow consumer: {conn.capacity} messages were waiting to be sent")

    # -- heartbeat ------------------------------------------------------------------------
    async def _beat(self) -> None:
        """While there are connections: every ping_interval_s, a keep-alive message to each that
        has one, and close the ones whose writer is stuck."""
        loop = asyncio.get_running_loop()
        while self.connections:
            await asyncio.sleep(self.ping_interval_s)
            now, now_ms = loop.time(), self.now_ms()
            encoded: dict = {}
            for conn in list(self.connections.values()):
                if conn.closing:
                    continue
                if conn.sending_since and now - conn.sending_since > self.stall_s:
                    self.slow_consumers += 1
                    self.close(conn, f"slow consumer: one message has been waiting {now - conn.sending_since:.0f} s "
                                     "to be sent")
                    continue
                protocol = conn.protocol
                if protocol not in encoded:
                    ping = protocol.keepalive(now_ms)
                    encoded[protocol] = self.encode(ping) if ping is not None else None
                if encoded[protocol] is not None and not conn.offer(encoded[protocol]):
                    self._slow(conn)


_EMPTY: set = frozenset()
