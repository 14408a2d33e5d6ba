"""Segments of dead instances are cleaned at start; live ones are left alone."""
import multiprocessing as mp
import os

import numpy as np

from xinfinity.ipc import shm
from xinfinity.ipc.ring import Ring


def _dead_pid() -> int:
    p = mp.get_context("fork").Process(target=os._exit, args=(0,))
    p.start()
    p.join()
    return p.pid


def test_stale_segments_of_a_dead_instance_are_removed_and_live_ones_kept():
    dead = shm.part_name(shm.instance_name(_dead_pid()), "cmd")
    live = shm.part_name(shm.instance_name(), "cmd")
    stale_ring = Ring.create(dead, np.uint64, 8)
    live_ring = Ring.create(live, np.uint64, 8)
    stale_ring.shm.close()                       # the dead instance never unlinked it
    try:
        removed = shm.cleanup_stale()
        assert dead in removed
        assert not (shm.SHM_DIR / dead).exists()
        assert (shm.SHM_DIR / live).exists()
    finally:
        live_ring.close()
        # This process created the "dead" segment, so its resource tracker
        # still lists it: cleanup_stale already unlinked it.
        from multiprocessing import resource_tracker
        resource_tracker.unregister(stale_ring.shm._name, "shared_memory")
