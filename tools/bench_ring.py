"""`xinf bench ring`: our ring against multiprocessing.Queue and faster-fifo.

All in one run, two processes each (producer, consumer, pinned to different
cores when there are two), 64-byte messages, timed from a start signal given
once both are set up to the consumer's last message (process start-up, the
same for every contender, is not the transport's cost):
- ring, batched, written and read in place (ring_claim/commit, ring_peek/
  release: `ring_msgs_per_sec`), and copied in and out (ring_publish/consume);
- ring, one message per call from Python (the cost a Python caller sees);
- faster-fifo, batched (put_many/get_many of 64-byte bytes objects);
- multiprocessing.Queue, one message per call;
- one-way latency of single messages through the ring, consumer busy-spinning
  in numba (ring_wait), and consumer blocking on the semaphore: the producer
  stamps the cycle counter into the message just before publishing it, the
  consumer stamps arrival.
Every run checks that each message arrived once and in order; a last
litmus run (--litmus N, 10^8 for the full test) checks every word of every
message against its checksum. No figure is printed for a run that did not
pass (the command exits with FAIL).
Ends with ring_msgs_per_sec, faster_fifo_msgs_per_sec, mp_queue_msgs_per_sec,
ratio_vs_faster_fifo, spin_p50_ns, spin_p999_ns, block_p50_ns.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time

import numpy as np

from xinfinity.engine.jit import kernel
from xinfinity.ipc import shm, wait
from xinfinity.ipc.atomics import cycles, cycles_per_ns, now_cycles
from xinfinity.ipc.ring import (Ring, attach_segment, ring_claim, ring_commit, ring_consume, ring_peek,
                                ring_publish, ring_release, ring_wait)

MSG = np.dtype([("seq", "<i8"), ("stamp", "<i8"), ("pad", "<i8", 6)])   # 64 bytes
assert MSG.itemsize == 64
CAP = 1 << 14


def add_arguments(p) -> None:
    p.add_argument("--messages", type=int, default=20_000_000, help="messages for the batched ring run")
    p.add_argument("--latency-samples", type=int, default=20_000)
    p.add_argument("--litmus", type=int, default=10_000_000,
                   help="checksummed messages for the litmus run (10^8 for the full test)")


@kernel()
def _produce_batched(ctrl, slots, n, buf):
    batch = len(buf)
    seq = 0
    full = 0
    while seq < n:
        k = min(batch, n - seq)
        for i in range(k):
            buf[i, 0] = seq + i
        done = 0
        while done < k:
            m = ring_publish(ctrl, slots, buf[done:k], k - done)
            if m == 0:
                full += 1
            done += m
        seq += k
    return full


_MIX = np.uint64(0x9E3779B97F4A7C15)


@kernel(inline="always")
def _fill(slots, row, s, checked):
    """One message: its sequence number and seven words; checked: six words
    derived from the sequence and their xor as a checksum (a torn or stale
    message shows), else plain payload."""
    check = s
    for w in range(1, 7):
        v = (s + np.uint64(w)) * _MIX if checked else np.uint64(w)
        slots[row, w] = v
        check ^= v
    slots[row, 0] = s
    slots[row, 7] = check if checked else np.uint64(7)


@kernel()
def _produce_in_place(ctrl, slots, n, batch, checked):
    """Batches written straight into the ring's slots (ring_claim/ring_commit)."""
    mask = len(slots) - 1
    seq = 0
    while seq < n:
        first, k = ring_claim(ctrl, slots, min(batch, n - seq))
        for i in range(k):
            _fill(slots, (first + i) & mask, np.uint64(seq + i), checked)
        if k > 0:
            ring_commit(ctrl, first + k)
            seq += k
    return 0


@kernel(inline="always")
def _intact(slots, row, s):
    check = s
    for w in range(1, 7):
        v = slots[row, w]
        if v != (s + np.uint64(w)) * _MIX:
            return False
        check ^= v
    return slots[row, 7] == check


@kernel()
def _consume_in_place(ctrl, slots, n, batch, checked):
    """Batches read in place (ring_peek/ring_release). Returns how many
    messages arrived in order (== n when all did); checked: and intact, every
    word against the checksum, so loss, duplication, reordering or tearing
    stops the count."""
    mask = len(slots) - 1
    seq = 0
    while seq < n:
        first, k = ring_peek(ctrl, slots, batch)
        for i in range(k):
            row = (first + i) & mask
            if slots[row, 0] != seq or (checked and not _intact(slots, row, np.uint64(seq))):
                return seq
            seq += 1
        if k > 0:
            ring_release(ctrl, first + k)
    return seq


@kernel()
def _consume_batched(ctrl, slots, n, buf):
    """Returns the number of messages that arrived in order (== n when all did)."""
    batch = len(buf)
    seq = 0
    while seq < n:
        k = ring_consume(ctrl, slots, buf, batch)
        for i in range(k):
            if buf[i, 0] != seq:
                return seq
            seq += 1
    return seq


def _ring_proc(role, name, n, batch, in_place, go, out):
    ring = Ring.attach(name, MSG, CAP)
    buf = np.zeros((batch, 8), np.uint64)
    _ready(go, role)
    checked = in_place == "litmus"
    if role == "produce":
        if in_place:
            _produce_in_place(ring.ctrl, ring.slots, n, batch, checked)
        else:
            _produce_batched(ring.ctrl, ring.slots, n, buf)
    else:
        if in_place:
            out.value = _consume_in_place(ring.ctrl, ring.slots, n, batch, checked)
        else:
            out.value = _consume_batched(ring.ctrl, ring.slots, n, buf)
        _done(go)
    ring.close()


def _ring_single_proc(role, name, n, go, out):
    ring = Ring.attach(name, MSG, CAP)
    one = np.zeros(1, MSG)
    _ready(go, role)
    if role == "produce":
        for i in range(n):
            one["seq"] = i
            while ring.publish(one) == 0:
                pass
    else:
        seq = 0
        while seq < n:
            if ring.consume(one):
                if one["seq"][0] != seq:
                    break
                seq += 1
        out.value = seq
        _done(go)
    ring.close()


def _ready(go, role):
    """Child: pin to a core of its own (consumer on the first, producer on the
    second, as the pipeline pins UBSCore and the ME), say it is set up, then
    wait for the start (process start-up is not timed)."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) >= 2:
        os.sched_setaffinity(0, {cores[0] if role == "consume" else cores[1]})
    with go.get_lock():
        go[0] += 1
    while go[1] == 0:
        time.sleep(0.0005)


def _done(go):
    """Consumer: the last message arrived now."""
    go[2] = time.perf_counter_ns()


def _two(target, args_p, args_c, n):
    """Run producer and consumer processes; messages/s from the start signal
    to the consumer's last message. Exits if not every message arrived in order."""
    ctx = mp.get_context("fork")
    out = ctx.Value("q", 0)
    go = ctx.Array("q", 3)              # [children ready, start, end ns]
    c = ctx.Process(target=target, args=("consume",) + args_c + (go, out))
    p = ctx.Process(target=target, args=("produce",) + args_p + (go, out))
    c.start()
    p.start()
    while go[0] < 2 and p.is_alive() and c.is_alive():
        time.sleep(0.001)
    t0 = time.perf_counter_ns()
    go[1] = 1
    p.join()
    c.join()
    if p.exitcode != 0 or c.exitcode != 0 or out.value != n:
        raise SystemExit(f"FAIL: {target.__name__}: {out.value} of {n} messages arrived in order")
    return n / ((go[2] - t0) / 1e9)


def _ring_rate(n, in_place, batch=256):
    ring = Ring.create(shm.part_name(shm.instance_name(), "bench"), MSG, CAP)
    try:
        return _two(_ring_proc, (ring.name, n, batch, in_place), (ring.name, n, batch, in_place), n)
    finally:
        ring.close()


def _ring_single_rate(n):
    ring = Ring.create(shm.part_name(shm.instance_name(), "bench1"), MSG, CAP)
    try:
        return _two(_ring_single_proc, (ring.name, n), (ring.name, n), n)
    finally:
        ring.close()


def _ff_proc(role, q, n, go, out):
    msg = bytes(64)
    _ready(go, role)
    if role == "produce":
        batch = 256
        sent = 0
        while sent < n:
            k = min(batch, n - sent)
            q.put_many([msg] * k, timeout=60)
            sent += k
    else:
        got = 0
        while got < n:
            got += len(q.get_many(max_messages_to_get=1024, timeout=60))
        out.value = got
        _done(go)


def _faster_fifo_rate(n):
    from faster_fifo import Queue
    q = Queue(max_size_bytes=CAP * 64 * 4)
    return _two(_ff_proc, (q, n), (q, n), n)


def _mpq_proc(role, q, n, go, out):
    msg = bytes(64)
    _ready(go, role)
    if role == "produce":
        for _ in range(n):
            q.put(msg)
    else:
        for _ in range(n):
            q.get()
        out.value = n
        _done(go)


def _mp_queue_rate(n):
    q = mp.get_context("fork").Queue(maxsize=CAP)
    return _two(_mpq_proc, (q, n), (q, n), n)


@kernel()
def _ping(ctrl, slots, n, gap_cycles, buf):
    """Send n single messages, spaced out, each written in place and stamped
    with the cycle counter just before it is published."""
    mask = len(slots) - 1
    for i in range(n):
        t = cycles()
        while cycles() - t < gap_cycles:
            pass
        k = 0
        while k == 0:
            first, k = ring_claim(ctrl, slots, 1)
        row = first & mask
        slots[row, 0] = i
        for w in range(2, 8):
            slots[row, w] = 0
        slots[row, 1] = cycles()
        ring_commit(ctrl, first + 1)
    return 0


@kernel()
def _spin_receive(ctrl, slots, n, lat, buf):
    """Busy-poll for each message, read it in place; latency = arrival - stamp."""
    mask = len(slots) - 1
    for i in range(n):
        first = ring_wait(ctrl, slots)
        stamp = np.int64(slots[first & mask, 1])
        lat[i] = cycles() - stamp
        if slots[first & mask, 0] != i:
            return i
        ring_release(ctrl, first + 1)
    return n


def _latency_proc(role, name, n, strategy, lat_name, go, out):
    ring = Ring.attach(name, MSG, CAP)
    _ready(go, role)
    if role == "produce":
        waker = wait.Waker(ring, strategy)
        one = np.zeros((1, 8), np.uint64)
        if strategy == "spin":
            _ping(ring.ctrl, ring.slots, n, 20_000, one)
        else:
            for i in range(n):
                time.sleep(0.0002)
                one[0, 0] = i
                one[0, 1] = now_cycles()
                while ring_publish(ring.ctrl, ring.slots, one, 1) == 0:
                    pass
                waker.published()
        waker.close()
    else:
        lat = np.ndarray(n, np.int64, buffer=shm_buf(lat_name))
        if strategy == "spin":
            if _spin_receive(ring.ctrl, ring.slots, n, lat, np.zeros((1, 8), np.uint64)) != n:
                raise SystemExit("FAIL: latency messages out of order")
        else:
            waiter = wait.Waiter(ring, strategy, spin_polls=100)
            one = np.zeros((1, 8), np.uint64)
            for i in range(n):
                while ring_consume(ring.ctrl, ring.slots, one, 1) == 0:
                    waiter.idle()
                waiter.busy()
                lat[i] = now_cycles() - np.int64(one[0, 1])
            waiter.close()
        out.value = n
        _done(go)
    ring.close()



_SHM = {}


def shm_buf(name):
    if name not in _SHM:
        _SHM[name] = attach_segment(name)
    return _SHM[name].buf


def _latency(n, strategy, per_ns):
    from multiprocessing import shared_memory
    inst = shm.instance_name()
    ring = Ring.create(shm.part_name(inst, f"lat-{strategy}"), MSG, CAP)
    lat_shm = shared_memory.SharedMemory(name=shm.part_name(inst, f"latbuf-{strategy}"), create=True, size=8 * n)
    try:
        _two(_latency_proc, (ring.name, n, strategy, lat_shm.name), (ring.name, n, strategy, lat_shm.name), n)
        lat = np.ndarray(n, np.int64, buffer=lat_shm.buf).copy()[n // 10:]     # drop warm-up
        ns = lat / per_ns
        return np.percentile(ns, 50), np.percentile(ns, 99.9)
    finally:
        ring.close()
        lat_shm.close()
        lat_shm.unlink()
        wait.unlink_semaphore(ring.name)


def main(args) -> int:
    shm.cleanup_stale()
    # Compile every kernel before forking, so no child compiles.
    tmp = Ring.create(shm.part_name(shm.instance_name(), "warm"), MSG, CAP)
    try:
        buf = np.zeros((256, 8), np.uint64)
        _produce_batched(tmp.ctrl, tmp.slots, 1000, buf)
        _consume_batched(tmp.ctrl, tmp.slots, 1000, buf)
        for checked in (False, True):
            _produce_in_place(tmp.ctrl, tmp.slots, 1000, 256, checked)
            _consume_in_place(tmp.ctrl, tmp.slots, 1000, 256, checked)
        _ping(tmp.ctrl, tmp.slots, 1, 0, buf[:1])
        _spin_receive(tmp.ctrl, tmp.slots, 1, np.zeros(1, np.int64), buf[:1])
    finally:
        tmp.close()
    per_ns = cycles_per_ns(0.2)
    print(f"cores: {os.cpu_count()}, 64-byte messages, ring capacity {CAP}, cycle counter {per_ns:.2f}/ns")

    copied = _ring_rate(args.messages, in_place=False)
    print(f"ring batched, copied in and out:    {copied:14,.0f} msgs/s")
    ring_rate = _ring_rate(args.messages, in_place=True)
    print(f"ring batched, written/read in place:{ring_rate:14,.0f} msgs/s")
    single = _ring_single_rate(1_000_000)
    print(f"ring one message per Python call:   {single:14,.0f} msgs/s")
    ff = _faster_fifo_rate(2_000_000)
    print(f"faster-fifo batched (put_many):     {ff:14,.0f} msgs/s")
    mpq = _mp_queue_rate(200_000)
    print(f"multiprocessing.Queue, one per call:{mpq:14,.0f} msgs/s")
    spin50, spin999 = _latency(args.latency_samples, "spin", per_ns)
    print(f"one-way latency, busy-spin:  p50 {spin50:8.0f} ns  p99.9 {spin999:10.0f} ns")
    block50, block999 = _latency(min(args.latency_samples, 5000), "block", per_ns)
    print(f"one-way latency, blocking:   p50 {block50:8.0f} ns  p99.9 {block999:10.0f} ns")
    litmus = _ring_rate(args.litmus, in_place="litmus")
    print(f"litmus: {args.litmus:,} checksummed messages, every one in order and intact ({litmus:,.0f}/s)")
    print(f"litmus_messages={args.litmus}")
    print(f"ring_msgs_per_sec={ring_rate:.0f}")
    print(f"ring_copied_msgs_per_sec={copied:.0f}")
    print(f"ring_single_msgs_per_sec={single:.0f}")
    print(f"faster_fifo_msgs_per_sec={ff:.0f}")
    print(f"mp_queue_msgs_per_sec={mpq:.0f}")
    print(f"ratio_vs_faster_fifo={ring_rate / ff:.1f}")
    print(f"spin_p50_ns={spin50:.0f}")
    print(f"spin_p999_ns={spin999:.0f}")
    print(f"block_p50_ns={block50:.0f}")
    return 0
