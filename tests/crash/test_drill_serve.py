"""Crash and recovery of the exchange online: SIGKILL a process of a real
`xinf serve` under signed traffic; every acknowledged command is in the WAL
and the order store, nothing is applied twice, and the store equals a replay
of the WAL, as does the audit store (tools/drill_serve.py)."""
import contextlib
import io
import re
import shutil
import sqlite3

import msgspec
import numpy as np
import pytest

from xinfinity.tools import drill_serve as D

FINAL_LINE = re.compile(r"drills_passed=(\d+)/(\d+) lost=(\d+) duplicated=(\d+) recovery_p50_ms=\d+ "
                        r"recovery_p99_ms=\d+\Z")


@pytest.fixture(scope="module")
def drilled(tmp_path_factory):
    """One drill of 3 kills, seed 7 (the audit stage, the journal, settlement), on a data dir that is
    kept for the checks below; its printed report."""
    data_dir = tmp_path_factory.mktemp("drill-serve") / "data"
    print("drill seed: 7")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        r = D.drill(kills=3, seed=7, data_dir=data_dir)
        code = D.report(r)
    return r, code, out.getvalue()


@pytest.mark.slow
def test_three_kills_lose_nothing_and_apply_nothing_twice(drilled):
    r, code, text = drilled
    lines = text.strip().splitlines()
    assert code == 0, text
    assert FINAL_LINE.match(lines[-1]).groups() == ("3", "3", "0", "0"), text
    assert [ln.split()[0] for ln in lines if ln.startswith("kill=")] == ["kill=1", "kill=2", "kill=3"]
    assert [k.target for k in r["done"]] == ["audit", "journal", "settlement"]
    assert r["outcomes"][D.OK] > 3 * 20 and r["verdict"].state_diffs == [] and r["verdict"].audit_diffs == []
    assert 0 < r["recovery_p50_ms"] <= r["recovery_p99_ms"]


@pytest.mark.slow
def test_an_acknowledged_order_missing_from_the_wal_counts_as_lost(drilled):
    r, _, _ = drilled
    requests = [msgspec.structs.replace(q) for q in r["requests"]]
    placed = next(q for q in requests if q.kind == "place" and q.outcome == D.OK)
    placed.order_id = placed.seq = r["verdict"].wal_commands + 1000     # an answer no command of the WAL gave
    v = D.check(r["data_dir"], requests)
    assert [q.n for q in v.lost] == [placed.n] and v.duplicated == [] and v.state_diffs == []


@pytest.mark.slow
def test_an_acknowledged_deposit_of_another_amount_counts_as_lost(drilled):
    r, _, _ = drilled
    requests = [msgspec.structs.replace(q) for q in r["requests"]]
    dep = next(q for q in requests if q.kind == "deposit" and q.outcome == D.OK)
    dep.amount += 1
    assert [q.n for q in D.check(r["data_dir"], requests).lost] == [dep.n]


def test_kill_plan_is_seeded():
    a, b = D.plan(20, seed=7, target="any", gap=40), D.plan(20, seed=7, target="any", gap=40)
    assert np.array_equal(a.gaps, b.gaps) and a.targets == b.targets
    assert np.all((a.gaps >= 20) & (a.gaps <= 60)) and set(a.targets) <= set(D.TARGETS)
    assert D.plan(3, seed=7, target="journal", gap=40).targets == ["journal"] * 3


@pytest.mark.slow
def test_a_row_missing_from_the_audit_store_is_found(drilled, tmp_path):
    r, _, _ = drilled
    copy = tmp_path / "data"
    shutil.copytree(r["data_dir"], copy)
    db = sqlite3.connect(copy / "audit.db")
    db.execute("DELETE FROM balance_events WHERE (seq, ord) = (SELECT seq, ord FROM balance_events "
               "ORDER BY seq DESC, ord DESC LIMIT 1)")
    db.commit()
    db.close()
    v = D.check(copy, r["requests"])
    assert v.lost == [] and v.state_diffs == [] and len(v.audit_diffs) == 1, v.audit_diffs
    assert "balance events of user" in v.audit_diffs[0]

