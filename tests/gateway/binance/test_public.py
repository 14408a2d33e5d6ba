"""The Binance API's public endpoints, and its request rules, in-process over FakeMarketData."""
from __future__ import annotations

import asyncio
import json

import msgspec
import pytest

from tests.gateway.binance.conftest import BTC_UNIT, BinanceClient, make_bworld
from tests.gateway.conftest import BTC_USDT, T0_MS, FakeHeaders, FakeProto, FakeScope, make_world
from xinfinity.config import DEFAULT_SYMBOLS

V3 = "/api/v3"


def get(bw, path, params=None, **kw):
    return bw.client.call("GET", V3 + path, params or {}, **kw)


def test_ping_and_time_answer_with_the_server_clock(bw):
    assert get(bw, "/ping")[:2] == (200, {})
    assert get(bw, "/time")[:2] == (200, {"serverTime": T0_MS})


def test_exchange_info_describes_each_symbol_from_its_decimals(bw):
    r = get(bw, "/exchangeInfo")
    assert r.status == 200
    assert (r.json["timezone"], r.json["serverTime"], r.json["rateLimits"]) == ("UTC", T0_MS, [])
    assert [s["symbol"] for s in r.json["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    btc = r.json["symbols"][0]
    assert {k: btc[k] for k in ("status", "baseAsset", "quoteAsset", "baseAssetPrecision", "quotePrecision",
                                "quoteAssetPrecision", "orderTypes", "isSpotTradingAllowed", "permissions",
                                "permissionSets", "quoteOrderQtyMarketAllowed")} == {
        "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT", "baseAssetPrecision": 8,
        "quotePrecision": 6, "quoteAssetPrecision": 6, "orderTypes": ["LIMIT", "MARKET"],
        "isSpotTradingAllowed": True, "permissions": ["SPOT"], "permissionSets": [["SPOT"]],
        "quoteOrderQtyMarketAllowed": True}
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"] == {"filterType": "PRICE_FILTER", "minPrice": "0.01", "tickSize": "0.01",
                                       "maxPrice": "92233720368547758.07"}
    assert filters["LOT_SIZE"] == {"filterType": "LOT_SIZE", "minQty": "0.00000001", "stepSize": "0.00000001",
                                   "maxQty": "92233720368.54775807"}
    assert filters["NOTIONAL"]["minNotional"] == "0.000001"


def test_exchange_info_takes_symbol_or_a_json_list_of_symbols(bw):
    assert [s["symbol"] for s in get(bw, "/exchangeInfo", {"symbol": "ETHUSDT"}).json["symbols"]] == ["ETHUSDT"]
    r = get(bw, "/exchangeInfo", {"symbols": '["ETHUSDT","BTCUSDT"]'})
    assert [s["symbol"] for s in r.json["symbols"]] == ["ETHUSDT", "BTCUSDT"]
    for params, code, word in [({"symbol": "BTC_USDT"}, -1121, "BTC_USDT"),
                               ({"symbols": '["BTCUSDT","X"]'}, -1121, "'X'"),
                               ({"symbols": "BTCUSDT"}, -1100, "symbols"),
                               ({"symbols": '["BTCUSDT","BTCUSDT"]'}, -1151, "multiple"),
                               ({"symbol": "BTCUSDT", "symbols": '["BTCUSDT"]'}, -1128, "not both")]:
        r = get(bw, "/exchangeInfo", params)
        assert (r.status, r.code) == (400, code) and word in r.json["msg"], (params, r)


def test_depth_is_the_book_with_every_decimal_and_binance_limits(bw):
    r = get(bw, "/depth", {"symbol": "BTCUSDT", "limit": 2})
    assert r.json == {"lastUpdateId": 4242, "bids": [["29990.00", "0.50000000"], ["29980.00", "1.20000000"]],
                      "asks": [["30010.00", "0.40000000"], ["30020.00", "2.00000000"]]}
    get(bw, "/depth", {"symbol": "BTCUSDT"})
    get(bw, "/depth", {"symbol": "BTCUSDT", "limit": 9999})
    assert [c[2] for c in bw.market.calls if c[0] == "depth"] == [2, 100, 5000]     # default 100; above 5000: 5000
    for limit, code in (("0", -1130), ("ten", -1100), ("-1", -1100)):
        assert get(bw, "/depth", {"symbol": "BTCUSDT", "limit": limit}).code == code
    assert get(bw, "/depth", {"symbol": "ETHUSDT"}).json == {"lastUpdateId": 4242, "bids": [], "asks": []}
    assert get(bw, "/depth").code == -1102


def test_trades_are_the_newest_oldest_first(bw):
    tape = bw.market.tapes[BTC_USDT]
    r = get(bw, "/trades", {"symbol": "BTCUSDT", "limit": 2})
    assert r.json == [{"id": t.trade_id, "price": f"{t.price / 100:.2f}", "qty": f"{t.qty / BTC_UNIT:.8f}",
                       "quoteQty": f"{t.quote_qty / 10**6:.6f}", "time": t.time_ms, "isBuyerMaker": t.buyer_is_maker,
                       "isBestMatch": True} for t in tape[-2:]]
    assert len(get(bw, "/trades", {"symbol": "BTCUSDT"}).json) == 5
    assert get(bw, "/trades", {"symbol": "BTCUSDT", "limit": 1001}).code == -1130


def test_agg_trades_are_one_aggregate_per_trade(bw):
    tape = bw.market.tapes[BTC_USDT]
    r = get(bw, "/aggTrades", {"symbol": "BTCUSDT"})
    assert r.json == [{"a": t.trade_id, "p": f"{t.price / 100:.2f}", "q": f"{t.qty / BTC_UNIT:.8f}",
                       "f": t.trade_id, "l": t.trade_id, "T": t.time_ms, "m": t.buyer_is_maker, "M": True}
                      for t in tape]
    ids = lambda params: [a["a"] for a in get(bw, "/aggTrades", {"symbol": "BTCUSDT", **params}).json]  # noqa: E731
    assert ids({"fromId": 102, "limit": 2}) == [102, 103]
    assert ids({"startTime": tape[1].time_ms, "limit": 2}) == [101, 102]
    assert ids({"endTime": tape[2].time_ms, "limit": 2}) == [101, 102]
    assert ids({"startTime": tape[1].time_ms, "endTime": tape[3].time_ms}) == [101, 102, 103]
    assert ids({"limit": 1}) == [104]


def test_klines_are_twelve_field_rows_and_pass_the_window_on(bw):
    k = bw.market.candles[(BTC_USDT, "1m")][-1]
    r = get(bw, "/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 1})
    assert r.json == [[k.open_time_ms, "30001.00", "30001.00", "30001.00", "30001.00", "0.00123456",
                       k.close_time_ms, "37.038034", 1, "0.00000000", "0.000000", "0"]]
    get(bw, "/klines", {"symbol": "BTCUSDT", "interval": "5m", "startTime": 5, "endTime": 9})
    assert [c for c in bw.market.calls if c[0] == "klines"][-1] == ("klines", BTC_USDT, "5m", 5, 9, 500)
    r = get(bw, "/klines", {"symbol": "BTCUSDT", "interval": "2h"})
    assert r.code == -1120 and "'2h'" in r.json["msg"]
    assert get(bw, "/klines", {"symbol": "BTCUSDT"}).code == -1102


def test_ticker_24hr_full_mini_one_or_many(bw):
    r = get(bw, "/ticker/24hr", {"symbol": "BTCUSDT"})
    assert r.json == {
        "symbol": "BTCUSDT", "priceChange": "1.00", "priceChangePercent": "0.003", "weightedAvgPrice": "30007.14",
        "prevClosePrice": "30000.00", "lastPrice": "30001.00", "lastQty": "0.00123456", "bidPrice": "29990.00",
        "bidQty": "0.50000000", "askPrice": "30010.00", "askQty": "0.40000000", "openPrice": "30000.00",
        "highPrice": "30010.00", "lowPrice": "29999.00", "volume": "0.43623456", "quoteVolume": "13090.153034",
        "openTime": T0_MS - 86_400_000, "closeTime": T0_MS, "firstId": 100, "lastId": 104, "count": 5}
    both = get(bw, "/ticker/24hr").json
    assert [t["symbol"] for t in both] == ["BTCUSDT", "ETHUSDT"] and both[0] == r.json
    assert both[1]["count"] == 0 and both[1]["lastPrice"] == "0.00" and both[1]["firstId"] == -1
    mini = get(bw, "/ticker/24hr", {"symbols": '["BTCUSDT"]', "type": "MINI"}).json
    assert mini == [{k: r.json[k] for k in ("symbol", "openPrice", "highPrice", "lowPrice", "lastPrice", "volume",
                                            "quoteVolume", "openTime", "closeTime", "firstId", "lastId", "count")}]
    assert get(bw, "/ticker/24hr", {"type": "FAST"}).code == -1139


def test_a_falling_price_change_is_negative_and_truncated(bw):
    bw.market.tapes[BTC_USDT][-1] = bw.market.tapes[BTC_USDT][-1]._replace(price=2_900_000)
    r = get(bw, "/ticker/24hr", {"symbol": "BTCUSDT"}).json
    assert (r["priceChange"], r["priceChangePercent"]) == ("-1000.00", "-3.333")


def test_ticker_price_and_book_ticker(bw):
    assert get(bw, "/ticker/price", {"symbol": "BTCUSDT"}).json == {"symbol": "BTCUSDT", "price": "30001.00"}
    assert get(bw, "/ticker/price").json == [{"symbol": "BTCUSDT", "price": "30001.00"},
                                             {"symbol": "ETHUSDT", "price": "0.00"}]
    assert get(bw, "/ticker/bookTicker", {"symbols": '["ETHUSDT","BTCUSDT"]'}).json == [
        {"symbol": "ETHUSDT", "bidPrice": "0.00", "bidQty": "0.00000000", "askPrice": "0.00", "askQty": "0.00000000"},
        {"symbol": "BTCUSDT", "bidPrice": "29990.00", "bidQty": "0.50000000", "askPrice": "30010.00",
         "askQty": "0.40000000"}]


@pytest.mark.parametrize("path,params", [("/depth", {"symbol": "BTCUSDT"}), ("/trades", {"symbol": "BTCUSDT"}),
                                         ("/aggTrades", {"symbol": "BTCUSDT"}),
                                         ("/klines", {"symbol": "BTCUSDT", "interval": "1m"}),
                                         ("/ticker/24hr", {}), ("/ticker/price", {}), ("/ticker/bookTicker", {})])
def test_market_endpoints_answer_503_without_market_data(path, params):
    bw = make_bworld(with_market=False)
    r = get(bw, path, params)
    assert (r.status, r.code) == (503, -1000) and "Market data is not available" in r.json["msg"]
    assert get(bw, "/exchangeInfo").status == 200


def test_unknown_paths_are_404_and_other_methods_405(bw):
    for path in ("/nothing", "", "/", "/ticker"):
        r = bw.client.call("GET", V3 + path)
        assert (r.status, r.code) == (404, -1020) and "no endpoint" in r.json["msg"], path
    r = bw.client.call("PUT", V3 + "/order")
    assert (r.status, r.code) == (405, -1020)
    assert ("allow", "DELETE, GET, POST") in r.headers
    assert bw.client.call("POST", V3 + "/ping").status == 405


def test_the_v1_routes_are_still_the_main_apps(bw):
    r = bw.client.call("GET", "/api/v1/health")
    assert r[:2] == (200, {"code": 0, "msg": "ok", "data": {"timestamp_ms": T0_MS}})
    assert bw.client.call("GET", "/api/v3x/ping").json["code"] == 4004     # not under /api/v3


def test_parameters_an_endpoint_does_not_read_are_1104(bw):
    r = get(bw, "/depth", {"symbol": "BTCUSDT", "limt": 5, "foo": 1})
    assert (r.status, r.code) == (400, -1104) and "'foo', 'limt'" in r.json["msg"]
    assert get(bw, "/ping", {"x": 1}).code == -1104


def raw_get(bw, path, query_string):
    """A GET with the query string exactly as given (the client would encode it)."""
    proto = FakeProto([b""])
    asyncio.run(bw.world.app.__rsgi__(FakeScope("GET", V3 + path, query_string, FakeHeaders({})), proto))
    return msgspec.json.decode(proto.body)


def test_a_parameter_twice_or_empty_is_refused(bw):
    assert raw_get(bw, "/depth", "symbol=BTCUSDT&symbol=ETHUSDT")["code"] == -1101
    assert raw_get(bw, "/depth", "symbol=")["code"] == -1105
    assert raw_get(bw, "/depth", "&".join(f"p{i}=1" for i in range(100)))["code"] == -1101


def test_a_get_with_a_body_is_refused(bw):
    r = bw.client.call("GET", V3 + "/ping", body=b"x=1")
    assert (r.status, r.code) == (400, -1104)


def test_a_time_unit_other_than_milliseconds_is_refused(bw):
    r = get(bw, "/time", headers={"x-mbx-time-unit": "MICROSECOND"})
    assert (r.status, r.code) == (400, -1194)
    assert get(bw, "/time", headers={"x-mbx-time-unit": "millisecond"}).status == 200


def test_symbols_json_may_be_sent_percent_encoded(bw):
    r = get(bw, "/ticker/price", {"symbols": json.dumps(["BTCUSDT"])})
    assert r.json == [{"symbol": "BTCUSDT", "price": "30001.00"}]


def test_the_real_market_data_serves_these_endpoints():
    """marketdata.book.MarketData (empty: nothing applied yet) behind the same routes as the fake."""
    book = pytest.importorskip("xinfinity.marketdata.book")
    w = make_world(market=book.MarketData(list(DEFAULT_SYMBOLS)))
    client = BinanceClient(w.app, lambda: T0_MS)
    for path, params in [("/depth", {"symbol": "BTCUSDT"}), ("/trades", {"symbol": "BTCUSDT"}),
                         ("/aggTrades", {"symbol": "BTCUSDT", "fromId": 1}),
                         ("/klines", {"symbol": "BTCUSDT", "interval": "1m"}), ("/ticker/24hr", {}),
                         ("/ticker/price", {}), ("/ticker/bookTicker", {})]:
        assert client.call("GET", V3 + path, params).status == 200, path
    assert client.call("GET", V3 + "/depth", {"symbol": "BTCUSDT"}).json == {"lastUpdateId": 0, "bids": [], "asks": []}
    assert client.call("GET", V3 + "/ticker/24hr", {"symbol": "ETHUSDT"}).json["count"] == 0


def test_a_request_that_reaches_its_handler_is_observed_once_with_its_decoding_time():
    bw = make_bworld()
    seen = []
    bw.world.app.mounts[V3].observe_decoded = seen.append      # what services/gateway.py records (gateway.request)
    assert get(bw, "/depth", {"symbol": "BTCUSDT"}).status == 200
    assert get(bw, "/nope").status == 404                        # refused before its handler: not observed
    assert len(seen) == 1 and seen[0] > 0 and isinstance(seen[0], int)
