"""`xinf dashboard --once` against a real `xinf serve` after some trading: every stage of
the pipeline shows a non-zero count (runtime/metrics.py, tools/dashboard.py)."""
from __future__ import annotations

import re
import time

import pytest

from xinfinity.client import ApiError, XinfClient

from tests.integration.serving import Server, free_port, make_key, xinf

pytestmark = pytest.mark.slow

STAGES = ("gateway.request", "gateway.ack", "ubscore", "match", "wal", "wal.fsync", "settle", "store", "store.write")


def _counts(frame: str) -> dict[str, int]:
    counts = {}
    for line in frame.splitlines():
        m = re.match(r"^(\S+)\s+(\d+)\s", line)
        if m:
            counts[m.group(1)] = int(m.group(2))
    return counts


def test_dashboard_once_shows_every_stage_of_a_serving_exchange_with_a_count(tmp_path):
    data = tmp_path / "data"
    r = xinf("dashboard", "--once", "--data-dir", data)
    assert r.returncode == 1 and "no running instance" in r.stderr, r.stdout + r.stderr
    srv = Server(data, free_port())
    try:
        alice, bob = make_key(tmp_path, data, "alice"), make_key(tmp_path, data, "bob")
        for user, asset, amount in (("alice", "USDT", "20000"), ("bob", "BTC", "1.5")):
            r = xinf("deposit", "--user", user, "--asset", asset, "--amount", amount, "--data-dir", data)
            assert r.returncode == 0, r.stderr + r.stdout
        a, b = XinfClient(srv.url, alice), XinfClient(srv.url, bob)
        for _ in range(3):
            a.place("BTC_USDT", "BUY", "LIMIT", qty="0.1", price="20000")
            assert b.place("BTC_USDT", "SELL", "LIMIT", qty="0.1", price="19000")["order_status"] == "FILLED"
        with pytest.raises(ApiError):                   # refused by the pre-check
            a.place("BTC_USDT", "BUY", "LIMIT", qty="100", price="20000")
        time.sleep(0.3)         # the supervisor samples its gauges every 0.1 s
        r = xinf("dashboard", "--once", "--data-dir", data)
        assert r.returncode == 0, r.stderr
        print(r.stdout)
        counts = _counts(r.stdout)
        for stage in STAGES:
            assert counts.get(stage, 0) > 0, (stage, r.stdout)
        assert counts["ubscore"] >= 8 and counts["match"] >= 6       # two deposits, six orders at least
        assert re.search(r"trades=([1-9]\d*)", r.stdout), r.stdout
        assert re.search(r"ubscore pid \d+ core -?\d+ running", r.stdout), r.stdout
    except BaseException:
        print(srv.output())
        raise
    finally:
        assert srv.stop() == 0, srv.output()
    r = xinf("dashboard", "--once", "--data-dir", data)
    assert r.returncode == 1 and "no running instance" in r.stderr
