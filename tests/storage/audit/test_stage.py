"""The audit stage against a real WAL (services/audit.py): the store ends up
holding exactly the events an ST replay emits, and the K-lines MarketData
closes; a SIGKILL in the middle of a store transaction, then a restart,
leaves no gap and no duplicate; it follows a WAL that grows, waits on a
half-written record, stops on a corrupt one; its lag is reported."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal

import msgspec
import numpy as np
import pytest

from xinfinity.config import Config, Persistence
from xinfinity.engine import records as R
from xinfinity.engine.wal import RECORD_BYTES
from xinfinity.services import audit as A
from xinfinity.storage.audit import AuditBatch
from xinfinity.storage.audit import sqlite as S
from xinfinity.storage.wal import WalCorrupt

from tests.storage.audit import wals as W

SNAPSHOTS_AT = (600, 1100)


def _cfg(batch: int, status_ms: int = 500) -> Config:
    return msgspec.structs.replace(Config(), persistence=Persistence(audit_batch=batch, audit_status_ms=status_ms))


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """A data dir whose WAL holds the whole fixture, snapshots at SNAPSHOTS_AT; its
    commands; the ST replay's events; the K-lines those close."""
    ds, cmds = W.history()
    d = tmp_path_factory.mktemp("full") / "data"
    W.write_wal(d, ds, cmds, SNAPSHOTS_AT)
    ev = W.replay_st(ds, cmds)
    assert len(ev.trades) > 500
    return d, ds, cmds, ev, W.closed_klines(ds, ev, cmds)


def _status(data_dir) -> dict:
    return json.loads((data_dir / A.STATUS_FILE).read_text())


def test_the_store_holds_exactly_the_events_of_an_st_replay_and_the_closed_klines(full, tmp_path):
    src, ds, cmds, ev, klines = full
    d = tmp_path / "data"
    W.cut_copy(src, d, len(cmds))
    stage = A.AuditStage(d, _cfg(batch=400))
    stage.caught_up()
    assert stage.mark == len(cmds) and stage.store.mark() == len(cmds)
    W.assert_store_holds(stage.store, ev, cmds, len(cmds))
    assert sum(map(len, klines.values())) > 20
    W.assert_klines(stage.store, klines)
    stage.close()


def test_lag_is_reported_while_behind_and_zero_once_caught_up(full, tmp_path):
    src, ds, cmds, ev, _ = full
    d = tmp_path / "data"
    wal = W.cut_copy(src, d, 1000)
    stage = A.AuditStage(d, _cfg(batch=300, status_ms=1))
    assert stage.lag() == 1000 and _status(d)["lag"] == 1000
    stage.step()
    assert stage.lag() == 700 and _status(d) | {"updated_ms": 0, "pid": 0} == {
        "backend": "sqlite", "mark": 300, "wal_last_seq": 1000, "lag": 700, "replayed_seq": 300, "rows_written":
        stage.rows, "snapshot_seq": 0, "pid": 0, "updated_ms": 0}
    stage.caught_up()
    assert stage.lag() == 0 and _status(d)["lag"] == 0 and _status(d)["mark"] == 1000
    W.append_bytes(wal, src / "wal" / "wal.log", len(cmds) * RECORD_BYTES)      # the journal writes on
    assert stage.lag() == len(cmds) - 1000
    stage.step()
    assert _status(d)["lag"] == len(cmds) - 1300 > 0
    stage.caught_up()
    assert stage.lag() == 0 and _status(d)["lag"] == 0
    W.assert_store_holds(stage.store, ev, cmds, len(cmds))
    stage.close()


def test_a_half_written_record_waits_until_it_is_whole(full, tmp_path):
    src, ds, cmds, ev, _ = full
    d = tmp_path / "data"
    wal = W.cut_copy(src, d, 700)
    stage = A.AuditStage(d, _cfg(batch=10_000))
    stage.caught_up()
    W.append_bytes(wal, src / "wal" / "wal.log", 900 * RECORD_BYTES + RECORD_BYTES // 2)
    assert stage.step() == 200 and stage.step() == 0
    assert stage.mark == 900 and stage.lag() == 0
    W.assert_store_holds(stage.store, ev, cmds, 900)
    W.append_bytes(wal, src / "wal" / "wal.log", len(cmds) * RECORD_BYTES)
    stage.caught_up()
    W.assert_store_holds(stage.store, ev, cmds, len(cmds))
    stage.close()


def _die_mid_batch(data_dir, from_seq: int, after_rows: int) -> None:
    """Run the stage; in the first store transaction of a batch past from_seq, be
    killed (SIGKILL) while inserting its order events, `after_rows` of them in."""
    real = S._table

    def dying(ev, names, *front):
        rows = real(ev, names, *front)
        if names is not S._ORDER_COLS or not len(ev) or ev["seq"][0] <= from_seq:
            return rows

        def rows_then_death():
            for i, r in enumerate(rows):
                if i == after_rows:
                    os.kill(os.getpid(), signal.SIGKILL)
                yield r
        return rows_then_death()
    S._table = dying
    A.AuditStage(data_dir, _cfg(batch=150)).caught_up()
    os._exit(3)         # not reached: the kill comes first


def test_a_sigkill_mid_transaction_then_a_restart_leaves_no_gap_and_no_duplicate(full, tmp_path):
    src, ds, cmds, ev, klines = full
    d = tmp_path / "data"
    W.cut_copy(src, d, len(cmds))
    child = mp.get_context("fork").Process(target=_die_mid_batch, args=(d, 1050, 25))
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL
    killed = S.SqliteAuditStore(d / "audit.db")
    assert killed.mark() == 1050                     # batches of 150: the one through 1200 died with its rows
    W.assert_store_holds(killed, ev, cmds, 1050)
    killed.close()
    stage = A.AuditStage(d, _cfg(batch=150))
    assert stage.snapshot_seq == 600                 # the newest at or below the mark, not 1100
    stage.caught_up()
    W.assert_store_holds(stage.store, ev, cmds, len(cmds))
    W.assert_klines(stage.store, klines)
    stage.close()


def test_a_restart_with_no_snapshot_at_or_below_the_mark_replays_from_the_start(full, tmp_path):
    src, ds, cmds, ev, klines = full
    d = tmp_path / "data"
    W.cut_copy(src, d, len(cmds))
    first = A.AuditStage(d, _cfg(batch=500))
    first.step()
    first.close()
    stage = A.AuditStage(d, _cfg(batch=500))
    assert stage.mark == 500 and stage.snapshot_seq == 0
    stage.caught_up()
    W.assert_store_holds(stage.store, ev, cmds, len(cmds))
    W.assert_klines(stage.store, klines)
    stage.close()


def test_a_corrupt_record_with_intact_ones_after_stops_the_stage_naming_its_offset(full, tmp_path, monkeypatch):
    src, ds, cmds, ev, _ = full
    d = tmp_path / "data"
    wal = W.cut_copy(src, d, len(cmds))
    data = bytearray(wal.read_bytes())
    data[499 * RECORD_BYTES + 40] ^= 0x01            # a payload byte of seq 500's record
    wal.write_bytes(bytes(data))
    stage = A.AuditStage(d, _cfg(batch=10_000))
    assert stage.step() == 499 and stage.step() == 0     # a write in flight looks the same at first: it waits
    monkeypatch.setattr(A, "SUSPECT_S", 0.0)
    with pytest.raises(WalCorrupt, match=rf"corrupt record at byte offset {499 * RECORD_BYTES}: checksum mismatch; "
                                         rf"{len(cmds) - 500} intact record\(s\) follow"):
        stage.step()
    W.assert_store_holds(stage.store, ev, cmds, 499)
    stage.close()


def test_a_store_ahead_of_the_wal_is_refused(full, tmp_path):
    src, ds, cmds, *_ = full
    d = tmp_path / "data"
    W.cut_copy(src, d, 100)
    store = S.SqliteAuditStore(d / "audit.db")
    store.write(AuditBatch(1, 200, np.zeros(200, np.int64), np.zeros(0, R.ORDER_EVENT), np.zeros(0, R.TRADE_EVENT),
                           np.zeros(0, R.BALANCE_EVENT), []))
    store.close()
    with pytest.raises(RuntimeError, match="holds events through seq 200 but the WAL only 100 commands"):
        A.AuditStage(d, _cfg(batch=100))


def test_as_a_process_it_is_done_only_once_the_journal_ended_and_the_store_holds_the_whole_wal(full, tmp_path):
    src, ds, cmds, ev, _ = full
    d = tmp_path / "data"
    W.cut_copy(src, d, 1000)
    ended = []
    proc = A.AuditProcess(A.AuditStage(d, _cfg(batch=600)), lambda: bool(ended), poll_ms=1)
    assert proc.step() and proc.step() and not proc.step() and not proc.done     # 600, 400, then nothing new
    ended.append(True)
    assert not proc.step() and proc.done
    proc.finish()
    assert _status(d)["mark"] == 1000 and _status(d)["lag"] == 0


def test_run_audit_runs_a_data_dir_until_stopped_and_caught_up(full, tmp_path):
    src, ds, cmds, ev, _ = full
    d = tmp_path / "data"
    W.cut_copy(src, d, len(cmds))
    status = A.run_audit(d, _cfg(batch=700), stop=lambda: True)
    assert (status["mark"], status["lag"], status["backend"]) == (len(cmds), 0, "sqlite")
    store = S.SqliteAuditStore(d / "audit.db")
    W.assert_store_holds(store, ev, cmds, len(cmds))
    store.close()
