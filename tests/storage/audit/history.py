"""A small history for the audit store's tests: commands of two symbols through
the plain-Python reference core (no compile), and batches cut from it.

Seq s entered at T0_MS + s seconds. Seq 7 sweeps two makers (several order,
trade and balance events of one seq); seq 10 is a refused withdrawal.
"""
from __future__ import annotations

import numpy as np

from xinfinity.config import Asset, Capacity, Symbol
from xinfinity.engine import records as R
from xinfinity.engine.events import Events
from xinfinity.engine.reference import Reference
from xinfinity.marketdata.types import INTERVALS_MS, Kline
from xinfinity.storage.audit import AuditBatch

from tests.cmds import batch, cancel, deposit, ioc, limit, withdraw

BTC, USDT, ETH = 1, 2, 3
ASSETS = [Asset(BTC, "BTC", 2, 2), Asset(USDT, "USDT", 2, 2), Asset(ETH, "ETH", 2, 2)]
SYMBOLS = [Symbol(0, "BTC_USDT", BTC, USDT, 0, 0, maker_fee_ppm=1000, taker_fee_ppm=2000, fee_user_id=9),
           Symbol(1, "ETH_USDT", ETH, USDT, 0, 0)]
T0_MS = 1_700_000_000_000


def make_history() -> tuple[np.ndarray, Events]:
    """(commands with seq 1..n and entry times, their events)."""
    cmds = batch(deposit(1, USDT, 100_000), deposit(2, BTC, 1_000), deposit(3, BTC, 1_000), deposit(4, ETH, 500),
                 limit(0, 2, "sell", 100, 300),             # seq 5: rests
                 limit(0, 3, "sell", 101, 300),             # seq 6: rests
                 ioc(0, 1, "buy", 101, 500),                # seq 7: fills seq 5's 300, 200 of seq 6
                 limit(0, 4, "sell", 50, 100, symbol=1),    # seq 8: rests on ETH_USDT
                 limit(0, 1, "buy", 50, 40, symbol=1),      # seq 9: fills 40
                 withdraw(4, ETH, 10_000),                  # seq 10: refused
                 cancel(6, 3),                              # seq 11
                 limit(0, 1, "buy", 50, 60, symbol=1))      # seq 12: fills the rest of seq 8
    ev = Reference(ASSETS, SYMBOLS, R.DUST_RELEASE, Capacity(max_users=16, max_orders=64, max_buckets=8)).apply(cmds)
    cmds["seq"] = np.arange(1, len(cmds) + 1)
    cmds["ts"] = (T0_MS + cmds["seq"] * 1000) * 1_000_000
    assert len(ev.trades) == 4 and np.sum(ev.orders["seq"] == 7) >= 3
    return cmds, ev


def ms(seq: int) -> int:
    """Seq's entry time in ms."""
    return T0_MS + seq * 1000


def kline(symbol: int, open_ms: int, price: int, trade_id: int, interval: str = "1m") -> Kline:
    """A closed candle (its figures need not add up: the store keeps what it is given)."""
    return Kline(symbol, interval, open_ms, open_ms + INTERVALS_MS[interval] - 1, price, price + 1, price - 1, price,
                 10, 10 * price, 1, 5, 5 * price, trade_id, trade_id, True)


def batch_of(history, first: int, through: int, klines=()) -> AuditBatch:
    """The history's seqs first..through as an audit batch."""
    cmds, ev = history

    def of(a):
        return a[(a["seq"] >= first) & (a["seq"] <= through)]
    return AuditBatch(first, through, cmds["ts"][first - 1:through].copy(), of(ev.orders), of(ev.trades),
                      of(ev.balances), list(klines))
