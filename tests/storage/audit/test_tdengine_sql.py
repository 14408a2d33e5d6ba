"""The TDengine backend's SQL, without a server (the contract suite runs it
against one where TDENGINE_DSN is set): 0xInfinity's layout of super tables
and subtables, rows before the mark, statements within TDengine's size
limit, and DSNs it cannot use refused naming why."""
from __future__ import annotations

import re

import numpy as np
import pytest

from xinfinity.engine import records as R
from xinfinity.storage.audit import AuditBatch
from xinfinity.storage.audit.tdengine import TdengineAuditStore, connect, statements

from tests.storage.audit.history import batch_of, kline, make_history


class Recorder:
    """A client that keeps every statement and answers the mark query with `mark`."""

    def __init__(self, mark=None, rows=()):
        self.sql, self.mark, self.answer = [], mark, list(rows)

    def execute(self, sql):
        self.sql.append(sql)

    def rows(self, sql):
        self.sql.append(sql)
        return [[self.mark]] if "audit_mark" in sql else self.answer

    def close(self):
        pass


@pytest.fixture(scope="module")
def history():
    return make_history()


def _store(client):
    store = TdengineAuditStore("http://root:taosdata@localhost:6041/audit", client)
    client.sql.clear()
    return store


def test_the_schema_is_0xinfinitys_super_tables_with_composite_keys():
    client = Recorder()
    TdengineAuditStore("http://h:6041/audit", client)
    ddl = " ".join(client.sql)
    assert "CREATE DATABASE IF NOT EXISTS audit PRECISION 'ns'" in ddl
    for stable, key, tags in (("trades", "trade_id", "`symbol_id` INT"), ("orders", "event_key", "`symbol_id` INT"),
                              ("balances", "event_key", "`user_id` BIGINT, `asset_id` INT")):
        assert re.search(rf"CREATE STABLE IF NOT EXISTS audit\.{stable} \(`ts` TIMESTAMP, `{key}` BIGINT PRIMARY KEY"
                         rf".*?TAGS \({tags}\)", ddl)
    assert "TAGS (`symbol_id` INT, `intv` NCHAR(8))" in ddl and "audit.audit_mark" in ddl


def test_a_batch_goes_to_a_subtable_per_symbol_and_per_user_and_asset_then_the_mark(history):
    client = Recorder(mark=None)
    store = _store(client)
    kl = kline(0, 1_700_000_040_000, 100, 1)
    n = store.write(batch_of(history, 1, 12, [kl]))
    inserts = [s for s in client.sql if s.startswith("INSERT")]
    assert inserts[-1].startswith("INSERT INTO audit.audit_mark VALUES (") and inserts[-1].endswith(", 12)")
    body = " ".join(inserts[:-1])
    for sub in ("trades_0 USING audit.trades TAGS (0)", "trades_1 USING audit.trades TAGS (1)",
                "orders_0 USING audit.orders TAGS (0)", "balances_1_2 USING audit.balances TAGS (1, 2)",
                "balances_9_1 USING audit.balances TAGS (9, 1)",
                "klines_0_1m USING audit.klines TAGS (0, '1m')"):
        assert sub in body
    _, ev = history
    assert n == len(ev.orders) + len(ev.trades) + len(ev.balances) + 1
    assert body.count("),(") + body.count(") (") + body.count("VALUES (") >= n
    # seq 7's order events keep their place in the seq: keys 7 << 24 | 0, 1, 2...
    assert f",{7 << 24}," in body and f",{(7 << 24) | 1}," in body


def test_nothing_is_written_at_or_below_the_mark(history):
    client = Recorder(mark=12)
    assert _store(client).write(batch_of(history, 5, 12)) == 0
    assert not [s for s in client.sql if s.startswith("INSERT")]


def test_statements_stay_within_the_size_limit_and_keep_every_row_once():
    rows = [(f"db.t_{k} USING db.t TAGS ({k})", [f"({k},{i})" for i in range(50)]) for k in range(7)]
    out = statements(rows, limit=300)
    assert len(out) > 3 and all(len(s) < 300 + 80 for s in out)
    found = re.findall(r"\((\d+),(\d+)\)", " ".join(out))
    assert sorted(found, key=lambda x: (int(x[0]), int(x[1]))) == [(str(k), str(i)) for k in range(7)
                                                                   for i in range(50)]
    assert all(s.startswith("INSERT INTO db.t_") for s in out)


def test_query_rows_decode_into_the_event_layouts():
    ts, values = 1_700_000_001_000_000_000, [5, 7, 100, 3, 300, 11, 12, 1, 2, 0, 1, 0, 1]
    client = Recorder(rows=[[ts, *values]])
    got = _store(client).trades(0, start_ms=1_700_000_000_000, limit=10)
    assert "WHERE `symbol_id` = 0 AND `ts` >= 1700000000000000000 ORDER BY `ts` ASC, `trade_id` ASC LIMIT 10" \
        in client.sql[-1]
    t = got.events[0]
    assert got.ts_ns.tolist() == [ts] and got.events.dtype == R.TRADE_EVENT
    assert (int(t["trade_id"]), int(t["seq"]), int(t["price"]), int(t["symbol"]), int(t["taker_side"])) == \
        (5, 7, 100, 0, 1)


@pytest.mark.parametrize("dsn, why", [
    ("mysql://h/db", r"use http\(s\)://user:password@host:6041/db \(REST\) or taos://"),
    ("http://h:6041/bad-name", "database name 'bad-name' is not a plain identifier"),
])
def test_a_dsn_it_cannot_use_is_refused_naming_why(dsn, why):
    with pytest.raises(ValueError, match=why):
        TdengineAuditStore(dsn) if "bad-name" in dsn else connect(dsn)


def test_a_batch_of_no_events_still_moves_the_mark():
    client = Recorder(mark=3)
    empty = AuditBatch(4, 5, np.array([1, 2]), np.zeros(0, R.ORDER_EVENT), np.zeros(0, R.TRADE_EVENT),
                       np.zeros(0, R.BALANCE_EVENT), [])
    assert _store(client).write(empty) == 0
    assert client.sql[-1].endswith(", 5)") and "audit_mark" in client.sql[-1]
