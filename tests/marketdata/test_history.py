"""K-line queries over memory and the audit store (marketdata/history.py): a
window reaching past memory's oldest candle is completed from the store, with
Binance's semantics (the first `limit` from a start, or the newest `limit`)."""
from __future__ import annotations

from xinfinity.marketdata.history import WithHistory
from xinfinity.marketdata.types import Kline

MIN = 60_000


def candle(minute: int) -> Kline:
    t = minute * MIN
    return Kline(0, "1m", t, t + MIN - 1, 100, 100, 100, 100, 1, 100, 1, 0, 0, minute, minute, True)


class Candles:
    """Closed candles with Binance's query semantics (as both MarketData and the audit store answer)."""

    def __init__(self, minutes):
        self.candles = [candle(m) for m in minutes]
        self.asked = []

    def klines(self, symbol_id, interval, start_ms, end_ms, limit):
        self.asked.append((start_ms, end_ms, limit))
        inside = [k for k in self.candles if (start_ms is None or k.open_time_ms >= start_ms)
                  and (end_ms is None or k.open_time_ms <= end_ms)]
        return inside[:limit] if start_ms is not None else inside[-limit:]


def minutes(ks):
    return [k.open_time_ms // MIN for k in ks]


def view():
    audit, memory = Candles(range(0, 10)), Candles(range(10, 20))    # the store holds what memory dropped
    return WithHistory(memory, audit), audit


def test_newest_candles_come_from_memory_alone_when_it_holds_enough():
    v, audit = view()
    assert minutes(v.klines(0, "1m", None, None, 5)) == [15, 16, 17, 18, 19]
    assert audit.asked == []


def test_newest_candles_past_memory_are_completed_from_the_store_before_the_oldest_in_memory():
    v, audit = view()
    assert minutes(v.klines(0, "1m", None, None, 14)) == list(range(6, 20))
    assert audit.asked == [(None, 10 * MIN - 1, 4)]


def test_a_start_older_than_memory_reads_the_store_from_that_start():
    v, _ = view()
    assert minutes(v.klines(0, "1m", 3 * MIN, None, 4)) == [3, 4, 5, 6]
    assert minutes(v.klines(0, "1m", 8 * MIN, None, 5)) == [8, 9, 10, 11, 12]
    assert minutes(v.klines(0, "1m", 8 * MIN, 9 * MIN, 5)) == [8, 9]


def test_a_start_memory_reaches_reads_memory_alone():
    v, audit = view()
    assert minutes(v.klines(0, "1m", 12 * MIN, None, 3)) == [12, 13, 14]
    assert audit.asked == []
