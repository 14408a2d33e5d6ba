"""Snapshots: the state comes back exactly; a bad snapshot is detected and
the one before it used; recovery from snapshot + WAL tail equals a full replay;
a forked part writer does not outlive the process that forked it."""
import json
import os
import pathlib
import select
import signal
import subprocess
import sys

import numpy as np
import pytest

from xinfinity.config import Capacity
from xinfinity.engine import records as R
from xinfinity.engine.core import Core
from xinfinity.storage.snapshot import load_snapshot, write_snapshot
from xinfinity.edge.dataset import load_dataset
from xinfinity.storage.recovery import recover
from xinfinity.app.st import run_st

ROOT = pathlib.Path(__file__).resolve().parents[2]
CAP = Capacity(max_users=1024, max_orders=4095, max_buckets=256)


@pytest.fixture(scope="module")
def ds():
    return load_dataset(ROOT / "fixtures" / "zxi-cancel-1294")


def fresh(ds):
    core = Core(ds.assets, ds.symbols, R.DUST_RELEASE, CAP)
    core.apply(ds.deposits.copy())
    return core


def initial(ds, capacity=CAP):
    return Core(ds.assets, ds.symbols, R.DUST_RELEASE, capacity).state_arrays()


def same_state(a: Core, b: Core):
    assert np.array_equal(a.balances(), b.balances())
    assert np.array_equal(a.open_orders(), b.open_orders())
    assert a.counters() == b.counters()


def test_a_restored_core_carries_on_exactly_as_the_original(ds, tmp_path):
    a = fresh(ds)
    a.apply(ds.commands[:600].copy())
    write_snapshot(tmp_path, 600, a.state_arrays(), initial(ds))
    b = Core(ds.assets, ds.symbols, R.DUST_RELEASE, CAP)
    loaded = load_snapshot(tmp_path)
    assert loaded.seq == 600 and loaded.rejected == []
    b.restore(loaded.arrays)
    same_state(a, b)
    ea, eb = a.apply(ds.commands[600:].copy()), b.apply(ds.commands[600:].copy())
    for x, y in zip(ea, eb):
        assert x.tobytes() == y.tobytes()
    same_state(a, b)


def test_a_corrupt_newest_snapshot_is_reported_and_the_previous_used(ds, tmp_path):
    core = fresh(ds)
    core.apply(ds.commands[:300].copy())
    write_snapshot(tmp_path, 300, core.state_arrays(), initial(ds))
    core.apply(ds.commands[300:700].copy())
    newest = write_snapshot(tmp_path, 700, core.state_arrays(), initial(ds))
    victim = newest / "u.balances.rows.npy"
    data = bytearray(victim.read_bytes())
    data[-7] ^= 0x40
    victim.write_bytes(bytes(data))
    loaded = load_snapshot(tmp_path)
    assert loaded.seq == 300
    assert len(loaded.rejected) == 1 and "u.balances.rows.npy fails its checksum" in loaded.rejected[0]


def test_an_interrupted_write_leaves_the_previous_snapshot_whole(ds, tmp_path):
    core = fresh(ds)
    write_snapshot(tmp_path, 1, core.state_arrays(), initial(ds))
    (tmp_path / ".tmp-00000000000000000099").mkdir()              # a crash mid-write
    (tmp_path / ".tmp-00000000000000000099" / "u.balances.npy").write_bytes(b"half")
    loaded = load_snapshot(tmp_path)
    assert loaded.seq == 1 and not list(tmp_path.glob(".tmp-*"))


def test_only_the_newest_two_are_kept(ds, tmp_path):
    core = fresh(ds)
    for seq in (10, 20, 30):
        write_snapshot(tmp_path, seq, core.state_arrays(), initial(ds))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap-00000000000000000020", "snap-00000000000000000030"]


def test_recovery_from_snapshot_and_wal_tail_equals_the_run(ds, tmp_path):
    run_st(ROOT / "fixtures" / "zxi-cancel-1294", tmp_path / "out", wal_dir=tmp_path / "wal",
           batch=200, capacity=CAP, snapshot_every=500)
    meta = json.loads((tmp_path / "wal" / "meta.json").read_text())
    assert meta["capacity"]["max_orders"] == CAP.max_orders
    core, _, figures = recover(tmp_path / "wal")
    assert figures["snapshot_seq"] > 0 and figures["replayed"] < figures["wal_commands"]
    whole = fresh(ds)
    whole.apply(ds.commands.copy())
    same_state(core, whole)
    # Without a usable snapshot it replays everything, to the same state.
    for snap in (tmp_path / "wal" / "snapshots").iterdir():
        (snap / "manifest.json").write_text("{")
    core, _, figures = recover(tmp_path / "wal")
    assert figures["snapshot_seq"] == 0 and figures["snapshots_rejected"] == 2
    same_state(core, whole)


def test_restore_refuses_another_capacity(ds, tmp_path):
    write_snapshot(tmp_path, 1, fresh(ds).state_arrays(), initial(ds))
    other = Core(ds.assets, ds.symbols, R.DUST_RELEASE, Capacity(max_users=2048, max_orders=4095, max_buckets=256))
    with pytest.raises(ValueError, match="another capacity"):
        other.restore(load_snapshot(tmp_path).arrays)


@pytest.mark.slow
def test_a_snapshot_holds_only_the_rows_the_run_touched(ds, tmp_path):
    """At the default capacity the state is ~365 MB, nearly all of it unused
    slots; the snapshot holds the changed rows, and restores exactly."""
    core = Core(ds.assets, ds.symbols, R.DUST_RELEASE)
    core.apply(ds.deposits.copy())
    core.apply(ds.commands.copy())
    snap = write_snapshot(tmp_path, 1494, core.state_arrays(), Core(ds.assets, ds.symbols, R.DUST_RELEASE).state_arrays())
    state_bytes = sum(a.nbytes for a in core.state_arrays().values())
    snap_bytes = sum(p.stat().st_size for p in snap.iterdir())
    assert state_bytes > 300e6 and snap_bytes < state_bytes / 100
    loaded = load_snapshot(tmp_path)
    assert len(loaded.arrays["me.orders"].idx) <= len(ds.commands)
    back = Core(ds.assets, ds.symbols, R.DUST_RELEASE)
    back.restore(loaded.arrays)
    for name, a in core.state_arrays().items():
        assert a.tobytes() == back.state_arrays()[name].tobytes(), name
    with pytest.raises(ValueError, match="freshly built core only"):
        back.restore(loaded.arrays)


@pytest.mark.slow
def test_a_bit_flip_in_any_file_of_a_snapshot_is_detected(ds, tmp_path):
    core = fresh(ds)
    core.apply(ds.commands[:500].copy())
    snap = write_snapshot(tmp_path, 500, core.state_arrays(), initial(ds))
    rng = np.random.default_rng(0)
    flips = [(path, int(rng.integers(path.stat().st_size * 8))) for path in sorted(snap.iterdir())]
    manifest = snap / "manifest.json"
    flips += [(manifest, int(b)) for b in rng.choice(manifest.stat().st_size * 8, 300, replace=False)]
    for path, bit in flips:
        original = path.read_bytes()
        data = bytearray(original)
        data[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(data))
        loaded = load_snapshot(tmp_path)
        assert loaded.seq == 0 and loaded.arrays is None and len(loaded.rejected) == 1, (path.name, bit)
        path.write_bytes(original)
    assert load_snapshot(tmp_path).seq == 500


def test_a_snapshot_writer_dies_with_the_process_that_forked_it(tmp_path):
    """The parent is killed as soon as the writer's pid is known, so the
    writer may not even have run yet: it must die all the same, without
    writing its part. The writer cannot finish before the parent is dead: its
    initial() blocks on stdin, which the test closes only after the parent is
    reaped, so a writer that outlived its parent writes its part and exits 0."""
    code = f"""
import sys
from xinfinity.storage.snapshot import PartWriter
w = PartWriter({str(tmp_path)!r}, "u", lambda: sys.stdin.read() or {{}})
w.start(1, {{}})
print(w.pid, flush=True)
sys.stdin.read()
"""
    parent = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    writer = int(parent.stdout.readline())
    writer_fd = os.pidfd_open(writer)                   # ends when the writer does, zombie or reaped
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    parent.stdin.close()                                # a writer still alive now goes on and writes
    try:
        # The bound only keeps a hung writer from hanging the suite: either
        # way the writer ends promptly once its parent is dead.
        ended, _, _ = select.select([writer_fd], [], [], 120)
        assert ended, f"writer {writer} neither died nor finished"
    finally:
        os.close(writer_fd)
    assert not list(tmp_path.glob("*/u.part.json")), f"writer {writer} outlived its parent and wrote its part"
