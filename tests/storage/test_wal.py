"""The order WAL: what was acknowledged comes back; a torn tail is cut and
reported; corruption anywhere before the tail stops the open; a write error
fails stop with nothing acknowledged that was not written."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from xinfinity.engine import records as R
from xinfinity.engine.core import Core
from xinfinity.engine.wal import RECORD_BYTES
from xinfinity.storage.wal import WalCorrupt, WalWriter, open_wal
from xinfinity.edge.dataset import load_dataset

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sequenced():
    """zxi-cancel-1294's deposits and commands, with the seqs the core gives them."""
    ds = load_dataset(ROOT / "fixtures" / "zxi-cancel-1294")
    cmds = np.concatenate([ds.deposits, ds.commands])
    cmds["seq"] = np.arange(1, len(cmds) + 1)
    return ds, cmds


def write(path, cmds, batch=100, policy="every_batch"):
    w = WalWriter(path, policy)
    for i in range(0, len(cmds), batch):
        assert w.append(cmds[i:i + batch]) == cmds["seq"][min(i + batch, len(cmds)) - 1]
    w.close()


def state(ds, cmds):
    core = Core(ds.assets, ds.symbols, R.DUST_RELEASE)
    core.apply(cmds.copy())
    return core.balances(), core.open_orders()


def test_what_was_appended_comes_back(sequenced, tmp_path):
    _, cmds = sequenced
    write(tmp_path / "wal", cmds)
    opened = open_wal(tmp_path / "wal")
    assert opened.torn_bytes == 0
    assert opened.commands.tobytes() == cmds.tobytes()
    assert (tmp_path / "wal").stat().st_size == len(cmds) * RECORD_BYTES


@pytest.mark.slow
def test_a_cut_at_every_byte_of_the_last_records_recovers_the_complete_prefix(sequenced, tmp_path):
    ds, cmds = sequenced
    write(tmp_path / "full", cmds)
    full = (tmp_path / "full").read_bytes()
    n = len(cmds)
    states = {}
    for cut in range((n - 3) * RECORD_BYTES, n * RECORD_BYTES + 1):
        p = tmp_path / "cut"
        p.write_bytes(full[:cut])
        opened = open_wal(p)
        complete = cut // RECORD_BYTES
        assert opened.torn_bytes == cut - complete * RECORD_BYTES
        assert opened.commands.tobytes() == cmds[:complete].tobytes()
        assert p.stat().st_size == complete * RECORD_BYTES          # only the torn part was cut
        if complete not in states:                                  # replay: the state of the prefix
            bal, book = state(ds, opened.commands)
            want_bal, want_book = state(ds, cmds[:complete])
            assert np.array_equal(bal, want_bal) and np.array_equal(book, want_book)
            states[complete] = True
    assert len(states) == 4


@pytest.mark.slow
def test_every_bit_flip_in_a_middle_record_is_detected_and_nothing_is_cut(sequenced, tmp_path):
    _, cmds = sequenced
    write(tmp_path / "full", cmds[:50])
    full = bytearray((tmp_path / "full").read_bytes())
    victim = 20
    for bit in range(RECORD_BYTES * 8):
        data = bytearray(full)
        data[victim * RECORD_BYTES + bit // 8] ^= 1 << (bit % 8)
        p = tmp_path / "flipped"
        p.write_bytes(bytes(data))
        with pytest.raises(WalCorrupt) as e:
            open_wal(p)
        assert e.value.offset == victim * RECORD_BYTES and str(p) in str(e.value)
        assert p.read_bytes() == bytes(data)                        # opening never truncates good data


def test_a_swapped_or_repeated_record_is_corruption(sequenced, tmp_path):
    _, cmds = sequenced
    write(tmp_path / "full", cmds[:10])
    full = (tmp_path / "full").read_bytes()
    rec = [full[i * RECORD_BYTES:(i + 1) * RECORD_BYTES] for i in range(10)]
    p = tmp_path / "bad"
    p.write_bytes(b"".join(rec[:4] + [rec[5], rec[4]] + rec[6:]))
    with pytest.raises(WalCorrupt, match=f"offset {4 * RECORD_BYTES}: seq 6 where 5 was expected"):
        open_wal(p)
    p.write_bytes(b"".join(rec[:4] + [rec[3]] + rec[4:]))
    with pytest.raises(WalCorrupt, match="seq 4 where 5 was expected"):
        open_wal(p)


def test_a_flip_in_the_last_record_is_a_torn_tail_cut_and_reported(sequenced, tmp_path):
    _, cmds = sequenced
    write(tmp_path / "full", cmds[:10])
    data = bytearray((tmp_path / "full").read_bytes())
    data[-5] ^= 0x10
    (tmp_path / "full").write_bytes(bytes(data))
    opened = open_wal(tmp_path / "full")
    assert opened.torn_bytes == RECORD_BYTES and len(opened.commands) == 9


_DISK_FULL = r"""
import resource, signal, sys, numpy as np
from xinfinity.engine.wal import wal_seal
from xinfinity.storage.wal import WalError, WalWriter
cmds = np.load(sys.argv[2])
w = WalWriter(sys.argv[1], "every_batch")
wal_seal(w.buf, w.words, cmds, cmds.view(np.uint64).reshape(len(cmds), -1), 0)   # load the kernel first
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)         # over the limit: EFBIG instead of a signal
resource.setrlimit(resource.RLIMIT_FSIZE, (CAP_BYTES, CAP_BYTES))
acked = 0
try:
    for i in range(0, len(cmds), 7):
        acked = w.append(cmds[i:i + 7])
except WalError as e:
    print("ERROR", e)
try:
    w.append(cmds[:1])
except WalError as e:
    print("AFTER", e)
print("ACKED", acked)
"""


@pytest.mark.slow
def test_a_full_disk_fails_stop_and_acknowledges_only_what_was_written(sequenced, tmp_path):
    _, cmds = sequenced
    np.save(tmp_path / "cmds.npy", cmds[:100])
    limit = 40 * RECORD_BYTES + 17                                  # room for 40 records and a bit
    script = _DISK_FULL.replace("CAP_BYTES", str(limit))
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path / "wal"), str(tmp_path / "cmds.npy")],
                       capture_output=True, text=True, timeout=120)
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"ERROR {tmp_path / 'wal'}: write failed: File too large (errno 27); "
                               "acknowledged up to seq 35, nothing after it"), r.stdout + r.stderr
    assert "the WAL failed earlier" in lines[1] and lines[2] == "ACKED 35"
    assert os.path.getsize(tmp_path / "wal") == limit
    opened = open_wal(tmp_path / "wal")
    assert len(opened.commands) == 40 and opened.torn_bytes == 17
    assert opened.commands["seq"][34] == 35                         # every acknowledged command is there
