"""The audit store's contract, one suite for every backend (storage/audit/):
what is written reads back as written, once, whatever is written again; the
mark moves with the rows and a gap is refused; queries keep time order and
their limits. SQLite always runs; TDengine only where TDENGINE_DSN names a
server (a scratch database is made and dropped per test)."""
from __future__ import annotations

import itertools
import os
import urllib.parse

import numpy as np
import pytest

from xinfinity.storage.audit.sqlite import SqliteAuditStore

from tests.storage.audit.history import ETH, SYMBOLS, T0_MS, batch_of, kline, make_history, ms

BIG = 1 << 30
_scratch = itertools.count()


def _tdengine(tmp_path):
    dsn = os.environ["TDENGINE_DSN"]
    u = urllib.parse.urlsplit(dsn)
    scratch = urllib.parse.urlunsplit(u._replace(path=f"/xinf_audit_test_{os.getpid()}_{next(_scratch)}"))
    from xinfinity.storage.audit.tdengine import TdengineAuditStore, connect, database_of
    return (lambda: TdengineAuditStore(scratch)), (lambda: connect(scratch).execute(
        f"DROP DATABASE IF EXISTS {database_of(scratch)}"))


@pytest.fixture(params=["sqlite", pytest.param("tdengine", marks=pytest.mark.skipif(
    not os.environ.get("TDENGINE_DSN"), reason="TDENGINE_DSN is not set: no TDengine server to run the contract on"))])
def open_store(request, tmp_path):
    """Opens the backend's store; every call opens the same one again."""
    if request.param == "sqlite":
        opener, drop = (lambda: SqliteAuditStore(tmp_path / "audit.db")), (lambda: None)
    else:
        opener, drop = _tdengine(tmp_path)
    opened = []

    def open_():
        opened.append(opener())
        return opened[-1]
    yield open_
    for s in opened:
        s.close()
    drop()


@pytest.fixture(scope="module")
def history():
    return make_history()


def _all(store, history):
    """Everything the store holds of the history's users and symbols."""
    _, ev = history
    users = sorted(set(ev.orders["user_id"].tolist()) | set(ev.balances["user_id"].tolist()))
    return ([store.trades(s.id, limit=BIG) for s in SYMBOLS], [store.order_events(u, limit=BIG) for u in users],
            [store.balance_events(u, limit=BIG) for u in users])


def _expected(history, through: int):
    cmds, ev = history
    users = sorted(set(ev.orders["user_id"].tolist()) | set(ev.balances["user_id"].tolist()))

    def rows(a, keep):
        a = a[keep & (a["seq"] <= through)]
        return a, cmds["ts"][a["seq"] - 1]
    return ([rows(ev.trades, ev.trades["symbol"] == s.id) for s in SYMBOLS],
            [rows(ev.orders, ev.orders["user_id"] == u) for u in users],
            [rows(ev.balances, ev.balances["user_id"] == u) for u in users])


def assert_holds(store, history, through: int):
    """The store holds exactly the history's events of seqs up to `through`, each once, each with its entry time."""
    for got_kind, want_kind in zip(_all(store, history), _expected(history, through)):
        for got, (events, ts) in zip(got_kind, want_kind):
            assert got.events.dtype == events.dtype and len(got.events) == len(events)
            assert got.events.tobytes() == events.tobytes()
            assert got.ts_ns.tolist() == ts.tolist()


def test_an_empty_store_has_mark_zero_and_finds_nothing(open_store):
    store = open_store()
    assert store.mark() == 0
    assert len(store.trades(0).events) == 0 and store.klines(0, "1m") == []


def test_a_batch_reads_back_as_written_and_moves_the_mark(open_store, history):
    store = open_store()
    kl = [kline(0, ms(7) - ms(7) % 60_000, 100, 1)]
    n = store.write(batch_of(history, 1, len(history[0]), kl))
    assert store.mark() == len(history[0])
    _, ev = history
    assert n == len(ev.orders) + len(ev.trades) + len(ev.balances) + 1
    assert_holds(store, history, len(history[0]))
    assert store.klines(0, "1m", limit=BIG) == kl


def test_the_mark_and_rows_are_there_after_reopening(open_store, history):
    open_store().write(batch_of(history, 1, 7))
    again = open_store()
    assert again.mark() == 7
    assert_holds(again, history, 7)


def test_the_same_batch_twice_writes_each_row_once(open_store, history):
    store = open_store()
    kl = [kline(0, ms(7) - ms(7) % 60_000, 100, 1)]
    assert store.write(batch_of(history, 1, 9, kl)) > 0
    assert store.write(batch_of(history, 1, 9, kl)) == 0
    assert store.mark() == 9
    assert_holds(store, history, 9)
    assert store.klines(0, "1m", limit=BIG) == kl


def test_overlapping_batches_write_each_row_once(open_store, history):
    store = open_store()
    _, ev = history
    store.write(batch_of(history, 1, 7))
    n = store.write(batch_of(history, 5, 12))             # seqs 5..7 again, cutting through seq 7's several events
    assert n == sum(int(np.sum(a["seq"] > 7)) for a in (ev.orders, ev.trades, ev.balances))
    assert store.mark() == 12
    assert_holds(store, history, 12)


def test_a_batch_at_or_below_the_mark_changes_nothing(open_store, history):
    store = open_store()
    store.write(batch_of(history, 1, 9))
    assert store.write(batch_of(history, 3, 6)) == 0
    assert store.mark() == 9
    assert_holds(store, history, 9)


def test_a_batch_that_would_leave_a_gap_is_refused_and_writes_nothing(open_store, history):
    store = open_store()
    store.write(batch_of(history, 1, 5))
    with pytest.raises(ValueError, match=r"starts at seq 8 but the store holds seqs through 5 only: "
                                         r"seqs 6\.\.7 would be missing"):
        store.write(batch_of(history, 8, 12))
    assert store.mark() == 5
    assert_holds(store, history, 5)


def test_a_malformed_batch_is_refused_naming_what_is_wrong(open_store, history):
    store = open_store()
    b = batch_of(history, 1, 7)
    with pytest.raises(ValueError, match="seqs 1..7 has 6 entry times"):
        store.write(b._replace(entry_ns=b.entry_ns[:-1]))
    with pytest.raises(ValueError, match=r"orders: seqs not in order within 1\.\.6"):
        store.write(b._replace(through_seq=6, entry_ns=b.entry_ns[:-1]))
    with pytest.raises(ValueError, match="K-lines must be closed"):
        store.write(b._replace(klines=[kline(0, 0, 1, 1)._replace(closed=False)]))
    assert store.mark() == 0


def test_events_of_one_seq_keep_their_emission_order(open_store, history):
    store = open_store()
    store.write(batch_of(history, 1, 12))
    _, ev = history
    got = store.order_events(1, limit=BIG).events
    want = ev.orders[ev.orders["user_id"] == 1]
    assert np.sum(got["seq"] == 7) >= 2
    assert got.tobytes() == want.tobytes()


def test_without_a_start_a_query_gives_the_newest_limit_oldest_first(open_store, history):
    store = open_store()
    store.write(batch_of(history, 1, 12))
    _, ev = history
    mine = ev.balances[ev.balances["user_id"] == 1]
    got = store.balance_events(1, limit=3)
    assert got.events.tobytes() == mine[-3:].tobytes()
    assert np.all(np.diff(got.ts_ns) >= 0)


def test_with_a_start_a_query_gives_the_oldest_limit_from_it(open_store, history):
    store = open_store()
    store.write(batch_of(history, 1, 12))
    _, ev = history
    mine = ev.balances[(ev.balances["user_id"] == 1) & (ev.balances["seq"] >= 7)]
    got = store.balance_events(1, start_ms=ms(7), limit=2)
    assert got.events.tobytes() == mine[:2].tobytes()


def test_a_time_window_is_inclusive_at_both_ends_in_ms(open_store, history):
    store = open_store()
    store.write(batch_of(history, 1, 12))
    _, ev = history
    got = store.order_events(1, start_ms=ms(7), end_ms=ms(9), limit=BIG).events
    mine = ev.orders[ev.orders["user_id"] == 1]
    assert got.tobytes() == mine[(mine["seq"] >= 7) & (mine["seq"] <= 9)].tobytes()
    assert len(store.order_events(1, start_ms=ms(7) + 1, end_ms=ms(9) - 1, limit=BIG).events) == 0
    trades = store.trades(0, end_ms=ms(7), limit=BIG).events
    assert len(trades) == 2 and set(trades["seq"].tolist()) == {7}


def test_queries_filter_by_symbol_and_by_asset(open_store, history):
    store = open_store()
    store.write(batch_of(history, 1, 12))
    _, ev = history
    got = store.order_events(1, symbol_id=1, limit=BIG).events
    assert got.tobytes() == ev.orders[(ev.orders["user_id"] == 1) & (ev.orders["symbol"] == 1)].tobytes()
    got = store.balance_events(1, asset=ETH, limit=BIG).events
    assert len(got) and got.tobytes() == ev.balances[(ev.balances["user_id"] == 1)
                                                      & (ev.balances["asset"] == ETH)].tobytes()
    assert store.trades(1, limit=BIG).events.tobytes() == ev.trades[ev.trades["symbol"] == 1].tobytes()


def test_klines_come_by_symbol_and_interval_in_open_time_order_with_limits(open_store, history):
    store = open_store()
    minutes = [kline(0, T0_MS - T0_MS % 60_000 + k * 60_000, 100 + k, k + 1) for k in range(5)]
    hour = kline(0, T0_MS - T0_MS % 3_600_000, 100, 1, "1h")
    other = kline(1, minutes[0].open_time_ms, 50, 9)
    store.write(batch_of(history, 1, 6, minutes[:3] + [hour]))
    store.write(batch_of(history, 7, 12, minutes[3:] + [other]))
    assert store.klines(0, "1m", limit=BIG) == minutes
    assert store.klines(0, "1m", limit=2) == minutes[-2:]
    assert store.klines(0, "1m", start_ms=minutes[1].open_time_ms, limit=2) == minutes[1:3]
    assert store.klines(0, "1m", start_ms=minutes[1].open_time_ms, end_ms=minutes[3].open_time_ms,
                        limit=BIG) == minutes[1:4]
    assert store.klines(0, "1h") == [hour] and store.klines(1, "1m") == [other] and store.klines(0, "5m") == []


def test_a_closed_kline_written_again_is_held_once(open_store, history):
    store = open_store()
    k = kline(0, T0_MS - T0_MS % 60_000, 100, 1)
    store.write(batch_of(history, 1, 6, [k]))
    store.write(batch_of(history, 5, 12, [k]))
    assert store.klines(0, "1m", limit=BIG) == [k]


def test_a_bad_limit_or_interval_is_refused_naming_it(open_store):
    store = open_store()
    with pytest.raises(ValueError, match="limit must be at least 1, not 0"):
        store.trades(0, limit=0)
    with pytest.raises(ValueError, match="K-line interval '2m' is not one of"):
        store.klines(0, "2m")
