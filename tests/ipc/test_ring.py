"""The SPSC ring: order, back-pressure, and a litmus test across real processes."""
import multiprocessing as mp
import os
import signal
import time
import uuid

import numpy as np
import pytest
from numba import njit

from xinfinity.ipc.ring import Ring

# 64-byte litmus record: a sequence number, six words derived from it, and a
# checksum over all of them. Any lost, duplicated, reordered or torn record
# breaks the sequence or the checksum.
LITMUS = np.dtype([("seq", "<u8"), ("w", "<u8", 6), ("check", "<u8")])
K = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
              0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53], np.uint64)


@njit(cache=True)
def fill(rec, first):
    for i in range(len(rec)):
        s = np.uint64(first + i)
        c = s
        for j in range(6):
            v = s * K[j]
            rec[i].w[j] = v
            c ^= v
        rec[i].seq = s
        rec[i].check = c


@njit(cache=True)
def verify(rec, n, expect):
    """Index of the first bad record in rec[:n] (records must run from expect), or -1."""
    for i in range(n):
        s = np.uint64(expect + i)
        if rec[i].seq != s:
            return i
        c = s
        for j in range(6):
            if rec[i].w[j] != s * K[j]:
                return i
            c ^= rec[i].w[j]
        if rec[i].check != c:
            return i
    return -1


def _name():
    return f"xinf-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def test_records_come_out_in_order_across_wraparound():
    ring = Ring.create(_name(), LITMUS, 8)
    try:
        out = np.zeros(8, LITMUS)
        seq = 0
        for batch in (3, 5, 7, 1, 8, 2, 6):
            rec = np.zeros(batch, LITMUS)
            fill(rec, seq)
            assert ring.publish(rec) == batch
            assert ring.consume(out[:batch]) == batch
            assert verify(out, batch, seq) == -1
            seq += batch
        assert ring.available() == 0
    finally:
        ring.close()


def test_full_ring_is_back_pressure_never_overwrite():
    ring = Ring.create(_name(), LITMUS, 8)
    try:
        rec = np.zeros(12, LITMUS)
        fill(rec, 0)
        assert ring.publish(rec) == 8                # only what fits
        assert ring.publish(rec[8:]) == 0            # full: nothing, nothing overwritten
        out = np.zeros(12, LITMUS)
        assert ring.consume(out[:3]) == 3
        assert ring.publish(rec[8:]) == 3            # room for 3 more
        assert ring.consume(out[3:]) == 8
        assert verify(out, 11, 0) == -1
    finally:
        ring.close()


def test_wrong_dtype_and_bad_capacity_are_refused():
    with pytest.raises(ValueError, match="power of two"):
        Ring.create(_name(), LITMUS, 12)
    ring = Ring.create(_name(), LITMUS, 8)
    try:
        with pytest.raises(TypeError, match="carries"):
            ring.publish(np.zeros(2, np.int64))
    finally:
        ring.close()


def _producer(name, n, seed, full_seen, in_place):
    ring = Ring.attach(name, LITMUS, 1 << 12)
    rng = np.random.default_rng(seed)
    buf = np.zeros(512, LITMUS)
    slots, mask = ring.records(), ring.capacity - 1
    seq = 0
    full = 0
    while seq < n:
        k = min(int(rng.integers(1, 512)), n - seq)
        if in_place:                    # claim, fill where the records lie (up to the wrap), commit
            first, k = ring.claim(k)
            k = min(k, ring.capacity - (first & mask))
            if k == 0:
                full += 1
                continue
            fill(slots[first & mask:(first & mask) + k], seq)
            ring.commit(first + k)
            seq += k
            continue
        fill(buf[:k], seq)
        done = 0
        while done < k:
            m = ring.publish(buf[done:k])
            if m == 0:
                full += 1
            done += m
        seq += k
    ring.close_producer()
    full_seen.value = full
    ring.close()


def _consumer(name, n, result, in_place):
    ring = Ring.attach(name, LITMUS, 1 << 12)
    out = np.zeros(1024, LITMUS)
    slots, mask = ring.records(), ring.capacity - 1
    seq = 0
    while True:
        if in_place:                    # peek, check where the records lie (up to the wrap), release
            first, k = ring.peek(1024)
            k = min(k, ring.capacity - (first & mask))
            if k:
                bad = verify(slots[first & mask:], k, seq)
                if bad >= 0:
                    result.value = -(seq + bad) - 1
                    ring.close()
                    return
                ring.release(first + k)
                seq += k
                continue
            if ring.closed and ring.available() == 0:
                break
            continue
        k = ring.consume(out)
        if k:
            bad = verify(out, k, seq)
            if bad >= 0:
                result.value = -(seq + bad) - 1
                ring.close()
                return
            seq += k
        elif ring.closed and ring.available() == 0:
            break
    result.value = seq
    ring.close()


@pytest.mark.slow
@pytest.mark.parametrize("in_place", [False, True], ids=["copied", "in-place"])
@pytest.mark.parametrize("pause_consumer", [False, True], ids=["running", "sigstopped"])
def test_litmus_two_processes_no_loss_duplication_reordering_or_tearing(pause_consumer, in_place):
    """Millions of sequence-numbered, checksummed records from one process to
    another through a 4096-slot ring; with SIGSTOP the consumer is frozen mid-run
    so the ring fills and the producer must wait, not overwrite."""
    n = 3_000_000
    fill(np.zeros(1, LITMUS), 0)          # compile before forking
    verify(np.zeros(1, LITMUS), 1, 0)
    ring = Ring.create(_name(), LITMUS, 1 << 12)
    ctx = mp.get_context("fork")
    result, full_seen = ctx.Value("q", 0), ctx.Value("q", 0)
    cons = ctx.Process(target=_consumer, args=(ring.name, n, result, in_place))
    prod = ctx.Process(target=_producer, args=(ring.name, n, 7, full_seen, in_place))
    try:
        cons.start()
        prod.start()
        if pause_consumer:
            time.sleep(0.05)
            os.kill(cons.pid, signal.SIGSTOP)
            time.sleep(0.3)
            os.kill(cons.pid, signal.SIGCONT)
        prod.join(300)
        cons.join(300)
        assert prod.exitcode == 0 and cons.exitcode == 0
        assert result.value == n, f"first bad record at seq {-result.value - 1}" if result.value < 0 else result.value
        if pause_consumer:
            assert full_seen.value > 0, "the producer never saw a full ring"
    finally:
        for p in (prod, cons):
            if p.is_alive():
                p.kill()
        ring.close()
