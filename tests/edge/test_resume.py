"""Resuming output files after a crash (edge/outputs.py cut_*, edge/sink.py
Sink.resume): a file cut anywhere is brought back to a complete prefix, and
a recovery that replays the WAL writes exactly what the files lack."""
import dataclasses
import pathlib
import shutil

import numpy as np
import pytest

from xinfinity.engine import records as R
from xinfinity.edge import outputs as O
from xinfinity.edge.dataset import load_dataset
from xinfinity.app.mt import recover_pipeline
from xinfinity.tools.parity import compare_dirs
from xinfinity.storage.recovery import recover
from xinfinity.app.st import run_st
from xinfinity.edge.sink import Sink, write_finals
from xinfinity.storage.wal_dir import WalDirError

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMALL = ROOT / "fixtures" / "zxi-cancel-1294"


def _events(seqs):
    a = np.zeros(len(seqs), R.ORDER_EVENT)
    a["seq"] = seqs
    a["order_id"] = np.arange(len(seqs)) + 100
    return a


def test_cut_events_drops_a_partial_record_and_the_last_seq_it_may_have_cut_short(tmp_path):
    path = tmp_path / "e.bin"
    full = _events([1, 1, 2, 3, 3, 3])
    path.write_bytes(full.tobytes() + full[:1].tobytes()[:17])      # a crash mid-record
    assert O.cut_events(path, R.ORDER_EVENT) == 2                    # seq 3 may be incomplete
    assert np.array_equal(np.fromfile(path, R.ORDER_EVENT), full[:3])


def test_cut_events_through_a_seq_keeps_exactly_the_records_up_to_it(tmp_path):
    path = tmp_path / "e.bin"
    full = _events([1, 1, 2, 3, 3, 3])
    path.write_bytes(full.tobytes() + b"\x01\x02")
    assert O.cut_events(path, R.ORDER_EVENT, through=3) == 3
    assert np.array_equal(np.fromfile(path, R.ORDER_EVENT), full)
    assert O.cut_events(path, R.ORDER_EVENT, through=1) == 1
    assert np.array_equal(np.fromfile(path, R.ORDER_EVENT), full[:2])


def test_cut_events_of_an_empty_or_missing_file_is_complete_through_nothing(tmp_path):
    assert O.cut_events(tmp_path / "none.bin", R.ORDER_EVENT) == 0
    assert (tmp_path / "none.bin").stat().st_size == 0


def _ledger(tmp_path, trades, tail=b""):
    path = tmp_path / O.LEDGER_FILE
    body = b"".join(f"{t},7,1,debit,5,{t * 10}\n".encode() for t in trades)
    path.write_bytes(O.LEDGER_HEADER.encode() + b"\n" + body + tail)
    return path


def test_cut_ledger_drops_a_partial_line_and_the_rows_of_the_last_trade(tmp_path):
    path = _ledger(tmp_path, [1, 1, 2, 2, 3], tail=b"3,7,1,cre")
    assert O.cut_ledger(path) == 2
    assert path.read_bytes().decode().splitlines()[1:] == [f"{t},7,1,debit,5,{t * 10}" for t in (1, 1, 2, 2)]


def test_cut_ledger_without_drop_keeps_every_whole_line(tmp_path):
    path = _ledger(tmp_path, [1, 1, 2, 2, 3], tail=b"3,7")
    assert O.cut_ledger(path, drop_last=False) == 3
    assert len(path.read_bytes().decode().splitlines()) == 6


def test_cut_ledger_rewrites_a_header_the_crash_cut(tmp_path):
    path = tmp_path / O.LEDGER_FILE
    path.write_bytes(O.LEDGER_HEADER.encode()[:5])
    assert O.cut_ledger(path) == 0
    assert path.read_bytes() == O.LEDGER_HEADER.encode() + b"\n"


def test_cut_ledger_reads_only_the_tail_of_a_long_file(tmp_path):
    trades = np.repeat(np.arange(1, 5001), 4)                        # ~120 KB, beyond the tail window
    path = _ledger(tmp_path, trades, tail=b"5001,7,1")
    assert O.cut_ledger(path) == 4999
    lines = path.read_bytes().decode().splitlines()
    assert len(lines) == 1 + 4 * 4999 and lines[-1].startswith("4999,")


@pytest.fixture(scope="module")
def st_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("st")
    run_st(SMALL, base / "st", wal_dir=base / "wal")
    return base


@pytest.mark.parametrize("seed", range(4))
def test_recovery_after_files_cut_anywhere_writes_exactly_what_they_lack(st_run, tmp_path, seed):
    """Every event file and the ledger cut at an independent random byte (a
    crash with buffers half flushed): recovery cuts them back, replays the WAL
    and skips what is there; the files then equal the uninterrupted run's."""
    rng = np.random.default_rng(seed)
    out = tmp_path / "out"
    shutil.copytree(st_run / "st", out)
    for name in [n for n, _ in O.EVENT_FILES.values()] + [O.LEDGER_FILE]:
        size = (out / name).stat().st_size
        with open(out / name, "r+b") as f:
            f.truncate(int(rng.integers(0, size + 1)))
    sink = Sink.resume(out)
    core, _, figures = recover(st_run / "wal", sink, sink.through())
    ds = load_dataset(SMALL)
    write_finals(out, sink, core.balances(), core.open_orders(), core.best, ds)
    verdicts = [v for v in compare_dirs(st_run / "st", out)]
    assert all(ok for _, ok, _ in verdicts), verdicts


def test_recovery_refuses_a_wal_of_another_dataset(st_run):
    other = load_dataset(ROOT / "fixtures" / "zxi-100k")
    with pytest.raises(WalDirError, match="200 initial deposits, the dataset 2000: it is another dataset's"):
        recover_pipeline(other, None, st_run / "wal")
    ds = load_dataset(SMALL)
    changed = ds.commands.copy()
    changed["qty"][700] += 1
    with pytest.raises(WalDirError, match=r"command 901 differs from row 701 of the dataset's orders \(qty\)"):
        recover_pipeline(dataclasses.replace(ds, commands=changed), None, st_run / "wal")
