"""Public trades, K-lines and the 24 h ticker from hand-made trade events
(marketdata/tape.py through MarketData)."""
from __future__ import annotations

from xinfinity.marketdata.book import MarketData
from xinfinity.marketdata.types import Kline, PublicTrade

from tests.marketdata.events import SYMBOLS, accepted, batch, trade

DAY = 86_400_000
T0 = 1_699_999_980_000          # minute 28_333_333: the second minute of a 3 min candle, the fourth of a 5 min one


def _trade_at(md: MarketData, ms: int, price: int, qty: int, taker: str = "buy", symbol: int = 0):
    """One trade, in a seq of its own, at entry time `ms`; returns the MarketUpdate."""
    seq = md.seq + 1
    return md.apply(*batch(seq, trade(seq, seq, price, qty, taker, buyer=100 + seq, seller=200 + seq,
                                      symbol=symbol), ms=ms))


def test_public_trades_are_kept_newest_last_and_say_whether_the_buyer_made():
    md = MarketData(SYMBOLS, trades_kept=3)
    updates = [_trade_at(md, T0 + i, 100 + i, 1 + i, "buy" if i % 2 else "sell") for i in range(5)]
    assert updates[0].trades == [PublicTrade(1, 0, 100, 1, 100, T0, True, 101, 201, 1)]
    assert updates[1].trades[0].buyer_is_maker is False
    assert [t.trade_id for t in md.trades(0, 10)] == [3, 4, 5]
    assert [t.trade_id for t in md.trades(0, 2)] == [4, 5]
    assert md.trades(0, 0) == [] and md.trades(1, 10) == []


def test_trades_of_one_batch_come_in_trade_id_order_with_their_seqs_entry_times():
    md = MarketData(SYMBOLS)
    orders, trades, ts_ns = batch(3, trade(2, 1, 100, 1, "buy"), trade(2, 2, 101, 1, "buy", symbol=1),
                                  trade(3, 3, 102, 1, "sell"))
    ts_ns = {2: 5_000_000_999_999, 3: 5_000_001_000_000}
    update = md.apply(orders, trades, ts_ns)
    assert [(t.trade_id, t.symbol_id, t.seq, t.time_ms) for t in update.trades] == [
        (1, 0, 2, 5_000_000), (2, 1, 2, 5_000_000), (3, 0, 3, 5_000_001)]


def test_a_kline_opens_at_the_interval_boundary_and_sums_its_trades():
    md = MarketData(SYMBOLS)
    _trade_at(md, T0, 100, 2, "buy")
    _trade_at(md, T0 + 30_000, 105, 1, "sell")
    _trade_at(md, T0 + 59_999, 95, 3, "buy")
    one_minute, = md.klines(0, "1m", None, None, 10)
    assert one_minute == Kline(0, "1m", T0, T0 + 59_999, open=100, high=105, low=95, close=95, volume=6,
                               quote_volume=200 + 105 + 285, trades=3, taker_buy_volume=5,
                               taker_buy_quote_volume=200 + 285, first_trade_id=1, last_trade_id=3, closed=False)
    three_minutes, = md.klines(0, "3m", None, None, 10)
    assert three_minutes.open_time_ms == T0 - 60_000 and three_minutes.close_time_ms == T0 + 119_999
    assert md.klines(0, "1d", None, None, 10)[0].open_time_ms == T0 - T0 % DAY


def test_a_trade_in_a_later_bucket_closes_the_candle_and_reports_it_first():
    md = MarketData(SYMBOLS)
    _trade_at(md, T0, 100, 1)
    update = _trade_at(md, T0 + 60_000, 101, 1)
    by_interval = {}
    for k in update.klines:
        by_interval.setdefault(k.interval, []).append((k.open_time_ms, k.closed, k.close))
    assert by_interval["1m"] == [(T0, True, 100), (T0 + 60_000, False, 101)]
    assert by_interval["3m"] == [(T0 - 60_000, False, 101)]                    # same 3 min bucket
    assert by_interval["5m"] == [(T0 - 180_000, False, 101)]
    assert [k.closed for k in md.klines(0, "1m", None, None, 10)] == [True, False]


def test_one_batch_over_several_buckets_reports_every_candle_it_closed():
    md = MarketData(SYMBOLS)
    _trade_at(md, T0, 100, 1)
    orders, trades, _ = batch(4, trade(2, 2, 101, 1, "buy"), trade(3, 3, 102, 1, "buy"), trade(4, 4, 103, 1, "buy"))
    update = md.apply(orders, trades, {2: (T0 + 1) * 10**6, 3: (T0 + 60_000) * 10**6, 4: (T0 + 180_000) * 10**6})
    one_minute = [(k.open_time_ms, k.closed, k.trades) for k in update.klines if k.interval == "1m"]
    assert one_minute == [(T0, True, 2), (T0 + 60_000, True, 1), (T0 + 180_000, False, 1)]
    assert update.klines[0].interval == "1m" and update.klines[0].symbol_id == 0


def test_klines_follow_binance_start_end_and_limit_and_keep_the_newest():
    md = MarketData(SYMBOLS, klines_kept=4)
    for i in range(6):
        _trade_at(md, T0 + i * 60_000, 100 + i, 1)
    opens = [k.open_time_ms for k in md.klines(0, "1m", None, None, 10)]
    assert opens == [T0 + i * 60_000 for i in range(2, 6)]
    assert [k.open_time_ms for k in md.klines(0, "1m", None, None, 2)] == opens[-2:]
    assert [k.open_time_ms for k in md.klines(0, "1m", opens[1], None, 2)] == opens[1:3]
    assert [k.open_time_ms for k in md.klines(0, "1m", opens[1] - 1, opens[2], 10)] == opens[1:3]
    assert [k.open_time_ms for k in md.klines(0, "1m", None, opens[2], 1)] == [opens[2]]
    assert md.klines(0, "1m", None, None, 0) == [] and md.klines(1, "1m", None, None, 5) == []
    # a longer interval's open candle (minutes 1 to 5 of 0..5, the first 5 min candle ends at minute 1)
    five = md.klines(0, "5m", None, None, 10)
    assert [(k.open_time_ms, k.trades, k.closed) for k in five] == [(T0 - 180_000, 2, True), (T0 + 120_000, 4, False)]
    assert md.klines(0, "5m", T0 + 120_000, None, 10) == five[1:]
    assert md.klines(0, "5m", T0 + 120_001, None, 10) == []
    assert md.klines(0, "5m", None, T0 + 120_000 - 1, 10) == five[:1]


def test_a_trade_entered_earlier_than_the_previous_takes_its_time():
    """Entry times come from several gateway workers' clocks; a symbol's tape never goes back."""
    md = MarketData(SYMBOLS)
    _trade_at(md, T0 + 60_000, 100, 1)
    update = _trade_at(md, T0 + 59_000, 99, 1)
    assert update.trades[0].time_ms == T0 + 60_000
    assert [(k.open_time_ms, k.trades) for k in md.klines(0, "1m", None, None, 10)] == [(T0 + 60_000, 2)]


def test_the_ticker_covers_the_24_hours_ending_now_and_the_best_prices():
    md = MarketData(SYMBOLS)
    md.apply(*batch(1, accepted(1, 1, "buy", 90, 4), accepted(1, 2, "sell", 120, 6)))
    _trade_at(md, T0, 100, 1)                       # exactly 24 h before `now`: out
    _trade_at(md, T0 + 1, 110, 2)
    _trade_at(md, T0 + 61_000, 80, 3)
    _trade_at(md, T0 + DAY - 30_000, 105, 4)
    _trade_at(md, T0 + DAY, 104, 5)                 # at `now`: in
    now = T0 + DAY
    t = md.ticker(0, now)
    assert (t.open_time_ms, t.close_time_ms) == (now - DAY, now)
    assert (t.open, t.high, t.low, t.last, t.last_qty) == (110, 110, 80, 104, 5)
    assert (t.volume, t.quote_volume, t.trades, t.first_trade_id, t.last_trade_id) == (
        14, 220 + 240 + 420 + 520, 4, 3, 6)
    assert (t.bid_price, t.bid_qty, t.ask_price, t.ask_qty) == (90, 4, 120, 6)
    # an earlier `now` leaves out the trades after it and takes in the older one
    earlier = md.ticker(0, now - 1)
    assert (earlier.open, earlier.last, earlier.trades, earlier.first_trade_id) == (100, 105, 4, 2)


def test_a_ticker_with_no_trade_in_its_window_is_empty():
    md = MarketData(SYMBOLS)
    assert md.ticker(0, T0)[3:13] == (0, 0, 0, 0, 0, 0, 0, 0, -1, -1)
    _trade_at(md, T0, 100, 1)
    assert md.ticker(0, T0 + DAY)[3:13] == (0, 0, 0, 0, 0, 0, 0, 0, -1, -1)
    assert md.ticker(0, T0 + DAY - 1).trades == 1


def test_trades_more_than_a_day_older_than_the_newest_are_dropped_from_the_window():
    md = MarketData(SYMBOLS)
    for i in range(5):
        _trade_at(md, T0 + i * 3_600_000, 100 + i, 1)
    _trade_at(md, T0 + DAY + 2 * 3_600_000, 50, 1)
    # the minute of the trade exactly 24 h older stays (its end is not), those before it go
    assert md._tapes[0].day.opens == [T0 + i * 3_600_000 for i in (2, 3, 4, 26)]
    t = md.ticker(0, T0 + DAY + 2 * 3_600_000)
    assert (t.open, t.low, t.trades) == (103, 50, 3)
