"""Wait strategies: every strategy delivers everything; `block` really sleeps
and is really woken; `auto` adapts to the cores."""
import multiprocessing as mp
import time

import numpy as np
import pytest

from tests.ipc.test_ring import LITMUS, _name, fill, verify
from xinfinity.ipc import wait
from xinfinity.ipc.ring import Ring

CAP = 1 << 10


def _bursty_producer(name, strategy, n, burst, pause_s, posts):
    ring = Ring.attach(name, LITMUS, CAP)
    waker = wait.Waker(ring, strategy)
    buf = np.zeros(burst, LITMUS)
    seq = 0
    while seq < n:
        k = min(burst, n - seq)
        fill(buf[:k], seq)
        done = 0
        while done < k:
            done += ring.publish(buf[done:k])
            waker.published()
        seq += k
        time.sleep(pause_s)            # idle gaps: the consumer runs dry and waits
    ring.close_producer()
    waker.published()
    posts.value = waker.posts
    waker.close()
    ring.close()


def _waiting_consumer(name, strategy, result, sleeps):
    ring = Ring.attach(name, LITMUS, CAP)
    waiter = wait.Waiter(ring, strategy, spin_polls=200)
    out = np.zeros(256, LITMUS)
    seq = 0
    while True:
        k = ring.consume(out)
        if k:
            waiter.busy()
            if verify(out, k, seq) >= 0:
                result.value = -1
                return
            seq += k
        elif ring.closed and ring.available() == 0:
            break
        else:
            waiter.idle()
    result.value = seq
    sleeps.value = waiter.sleeps
    waiter.close()
    ring.close()


@pytest.mark.parametrize("strategy", ["spin", "yield", "block"])
def test_every_wait_strategy_delivers_every_record_in_order(strategy):
    n = 20_000
    fill(np.zeros(1, LITMUS), 0)
    verify(np.zeros(1, LITMUS), 1, 0)
    ring = Ring.create(_name(), LITMUS, CAP)
    ctx = mp.get_context("fork")
    result, sleeps, posts = ctx.Value("q", 0), ctx.Value("q", 0), ctx.Value("q", 0)
    cons = ctx.Process(target=_waiting_consumer, args=(ring.name, strategy, result, sleeps))
    prod = ctx.Process(target=_bursty_producer, args=(ring.name, strategy, n, 500, 0.002, posts))
    try:
        cons.start()
        prod.start()
        prod.join(120)
        cons.join(120)
        assert prod.exitcode == 0 and cons.exitcode == 0
        assert result.value == n
        if strategy == "block":
            assert sleeps.value > 0, "the consumer never blocked"
            assert posts.value > 0, "the producer never woke it"
    finally:
        for p in (prod, cons):
            if p.is_alive():
                p.kill()
        wait.unlink_semaphore(ring.name)
        ring.close()


def test_auto_spins_only_when_every_spinner_has_a_core():
    assert wait.choose("auto", spinning_processes=4, cores=2) == "block"
    assert wait.choose("auto", spinning_processes=2, cores=8) == "spin"
    assert wait.choose("yield", spinning_processes=4, cores=2) == "yield"
