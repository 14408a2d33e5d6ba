"""The feed in-process: a hub whose connections have no socket, so what the feed
queued for each can be read back from its pending frames (the hub writes them
at the end of the loop turn; these tests read them before)."""
from __future__ import annotations

import asyncio

import msgspec

from tests.gateway.conftest import FakeExchange
from tests.gateway.ws.fakes import FakeMarket, order_event, records
from xinfinity.engine import records as R
from xinfinity.gateway.ws import binance, zxinf
from xinfinity.gateway.ws.feed import Feed
from xinfinity.gateway.ws.hub import Hub
from xinfinity.marketdata.types import DepthDiff, MarketUpdate, PublicTrade

ALICE = 1001
T_NS = 1_700_000_000_000 * 10**6


def world():
    exchange = FakeExchange()
    hub = Hub()
    lookups = []

    def client_order_id(user_id, order_id):
        lookups.append(order_id)
        return f"cid-{order_id}"
    return hub, Feed(hub, exchange.assets, exchange.symbols, FakeMarket(exchange.symbols), client_order_id), lookups


class Unsent:
    """A connection's socket that is closing: the hub writes nothing to it."""
    class protocol:
        state = None


def queued(conn) -> list[dict]:
    """The messages pending for `conn`: its text frames' payloads."""
    out = []
    for frame in conn.pending:
        assert frame[0] == 0x81, "a final text frame"
        n = frame[1]
        out.append(msgspec.json.decode(frame[{126: 4, 127: 10}.get(n, 2):]))
    return out


def test_execution_reports_name_what_each_order_event_did():
    async def run():
        hub, feed, lookups = world()
        zx, api = hub.connect(zxinf.PROTOCOL, Unsent), hub.connect(binance.API, Unsent)
        hub.subscribe(zx, ("zx", "order.update", ALICE), ALICE)
        hub.subscribe(api, ("user", ALICE, 3), ALICE)
        events = [
            order_event(1, 1, ALICE, R.SIDE_BUY, R.ST_ACCEPTED),
            dict(order_event(2, 1, ALICE, R.SIDE_BUY, R.ST_REDUCED), qty=6 * 10**7, last_qty=4 * 10**7),
            order_event(3, 1, ALICE, R.SIDE_BUY, R.ST_REJECTED, kind=R.CMD_MOVE),     # a refused move
            order_event(4, 1, ALICE, R.SIDE_BUY, R.ST_CANCELLED, kind=R.CMD_CANCEL),
            order_event(5, 5, ALICE, R.SIDE_BUY, R.ST_REJECTED),                      # a refused place
            dict(order_event(6, 6, ALICE, R.SIDE_BUY, R.ST_ACCEPTED), qty=R.QTY_UNLIMITED, price=0,
                 order_type=R.TYPE_MARKET, tif=R.TIF_IOC),
        ]
        feed.private(records(R.ORDER_EVENT, events), records(R.TRADE_EVENT, []), records(R.BALANCE_EVENT, []),
                     {seq: T_NS + seq * 10**6 for seq in range(1, 7)})
        assert [(m["order_id"], m["status"]) for m in queued(zx)] == [
            (1, "NEW"), (1, "NEW"), (1, "CANCELED"), (5, "REJECTED"), (6, "NEW")]
        reports = [m["event"] for m in queued(api)]
        assert all(m["subscriptionId"] == 3 for m in queued(api))
        assert [(r["i"], r["x"], r["X"], r["q"], r["l"], r["w"]) for r in reports] == [
            (1, "NEW", "NEW", "1.00000000", "0.00000000", True),
            (1, "REPLACED", "NEW", "0.60000000", "0.00000000", True),
            (1, "CANCELED", "CANCELED", "1.00000000", "0.00000000", False),
            (6, "NEW", "NEW", "0.00000000", "0.00000000", False)]
        assert [r["c"] for r in reports] == ["cid-1", "cid-1", "cid-1", "cid-6"]
        assert [r.get("O") for r in reports] == [1_700_000_000_001, None, None, 1_700_000_000_006]
        assert lookups == [1, 6]            # once per order, while it lives
        assert feed._cids == {6: "cid-6"}   # order 1 ended: forgotten
    asyncio.run(run())


def test_nothing_is_built_for_streams_no_one_subscribed_to():
    async def run():
        hub, feed, _lookups = world()
        update = MarketUpdate([DepthDiff(0, 1, 1, 1_700_000_000_000, [(30_000_00, 10**8)], [])],
                              [PublicTrade(1, 0, 30_000_00, 10**8, 30_000 * 10**6, 1_700_000_000_000, False, 1, 2, 1)],
                              [])
        feed.market_data.apply(update)
        feed.market(update, 1_700_000_000_000)
        feed.private(records(R.ORDER_EVENT, [order_event(1, 1, ALICE, R.SIDE_BUY, R.ST_ACCEPTED)]),
                     records(R.TRADE_EVENT, []), records(R.BALANCE_EVENT, []), {1: T_NS})
        await asyncio.sleep(0)
        assert hub.encodes == 0 and not feed._window_timers and feed._ticker_timer is None
    asyncio.run(run())
