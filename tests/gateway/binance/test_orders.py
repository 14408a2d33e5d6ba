"""The Binance API's order and account endpoints over FakeExchange: what is sent,
what is answered, and that every refusal sends nothing."""
from __future__ import annotations

import pytest

from tests.gateway.binance.conftest import cost, make_bworld, seed_user_trades
from tests.gateway.conftest import BTC, BTC_USDT, ETH_USDT, T0_MS, USDT
from xinfinity.engine.records import R_DUPLICATE_CID, REASON_TEXT
from xinfinity.gateway import model

V3 = "/api/v3"
LIMIT = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.5",
         "price": "29000"}
ALICE = 1001


def post(bw, params, key=None, path="/order", **kw):
    return bw.client.call("POST", V3 + path, params, key=key or bw.hmac_key, **kw)


def call(bw, method, path, params=None, key=None, **kw):
    return bw.client.call(method, V3 + path, params or {}, key=key or bw.hmac_key, **kw)


def placed(bw) -> list[tuple]:
    return [args for name, args in bw.exchange.commands if name == "place"]


def refused(bw, r, code, word=""):
    assert (r.status, r.code) == (400, code), r
    assert word in r.json["msg"], r
    assert bw.exchange.commands == [], "a refused request sent a command"


# -- placing -------------------------------------------------------------------------------------------
def test_a_limit_order_is_sent_in_integer_units_and_answered_in_full(bw):
    bw.exchange.next_fills = (model.Fill(77, 2_900_000, 20_000_000, cost(2_900_000, 20_000_000), 20_000, BTC, "TAKER"),)
    r = post(bw, {**LIMIT, "newClientOrderId": "my-order-1"})
    assert placed(bw) == [(ALICE, BTC_USDT, "BUY", "LIMIT", "GTC", 2_900_000, 50_000_000, 0, "my-order-1")]
    assert r.json == {"symbol": "BTCUSDT", "orderId": 100, "orderListId": -1, "clientOrderId": "my-order-1",
                      "transactTime": T0_MS, "price": "29000.00", "origQty": "0.50000000", "executedQty": "0.20000000",
                      "origQuoteOrderQty": "0.000000", "cummulativeQuoteQty": "5800.000000",
                      "status": "PARTIALLY_FILLED", "timeInForce": "GTC", "type": "LIMIT", "side": "BUY",
                      "workingTime": T0_MS, "selfTradePreventionMode": "NONE",
                      "fills": [{"price": "29000.00", "qty": "0.20000000", "commission": "0.00020000",
                                 "commissionAsset": "BTC", "tradeId": 77}]}


def test_response_types_ack_and_result(bw):
    ack = post(bw, {**LIMIT, "newOrderRespType": "ACK"}).json
    assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    result = post(bw, {**LIMIT, "newOrderRespType": "RESULT"}).json
    assert "fills" not in result and result["status"] == "NEW"
    refused_r = post(bw, {**LIMIT, "newOrderRespType": "MINI"})
    assert refused_r.code == -1130 and len(placed(bw)) == 2


def test_a_client_order_id_is_made_when_none_is_sent(bw):
    r = post(bw, LIMIT)
    cid = r.json["clientOrderId"]
    assert len(cid) == 22 and placed(bw)[0][-1] == cid
    assert call(bw, "GET", "/order", {"symbol": "BTCUSDT", "origClientOrderId": cid}).json["orderId"] == 100


def test_client_order_ids_up_to_36_binance_characters(bw):
    assert post(bw, {**LIMIT, "newClientOrderId": "x-" + "A1b2:./_-" * 3 + "0123456"}).status == 200
    bw.exchange.commands.clear()
    refused(bw, post(bw, {**LIMIT, "newClientOrderId": "x" * 37}), -1100, "newClientOrderId")
    refused(bw, post(bw, {**LIMIT, "newClientOrderId": "a b"}), -1100)


def test_a_market_buy_by_quote_qty_and_a_market_sell_by_quantity(bw):
    r = post(bw, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quoteOrderQty": "100.5"})
    assert r.status == 200 and r.json["type"] == "MARKET" and r.json["price"] == "0.00"
    assert r.json["origQuoteOrderQty"] == "100.500000"
    post(bw, {"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.25"})
    assert placed(bw)[0][1:] == (BTC_USDT, "BUY", "MARKET", "GTC", 0, 0, 100_500_000, placed(bw)[0][-1])
    assert placed(bw)[1][1:-1] == (ETH_USDT, "SELL", "MARKET", "GTC", 0, 25_000_000, 0)


def test_a_market_buy_by_quantity_gets_what_it_costs_on_the_asks_as_its_budget(bw):
    r = post(bw, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.5"})
    # 0.4 at 30010 and 0.1 at 30020 (the book in conftest.seed_market).
    assert placed(bw)[0][5:8] == (0, 50_000_000, cost(3_001_000, 40_000_000) + cost(3_002_000, 10_000_000))
    assert r.json["origQty"] == "0.50000000" and r.json["origQuoteOrderQty"] == "15006.000000"
    # More than the book holds: the whole ask side is the budget.
    post(bw, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "100"})
    assert placed(bw)[1][7] == cost(3_001_000, 40_000_000) + cost(3_002_000, 200_000_000) + cost(3_010_000, 10**9)


def test_a_market_buy_by_quantity_needs_asks_and_market_data(bw):
    refused(bw, post(bw, {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}), -2010,
            "liquidity")
    no_market = make_bworld(with_market=False)
    r = post(no_market, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"})
    assert (r.status, r.code) == (503, -1000) and no_market.exchange.commands == []
    assert post(no_market, LIMIT).status == 200


@pytest.mark.parametrize("params,code,word", [
    ({"timeInForce": "FOK"}, -1115, "'FOK'"),
    ({"type": "LIMIT_MAKER"}, -1116, "'LIMIT_MAKER'"),
    ({"type": "STOP_LOSS_LIMIT"}, -1116, "LIMIT and MARKET"),
    ({"side": "buy"}, -1117, "'buy'"),
    ({"side": None}, -1102, "'side'"),
    ({"type": None}, -1102, "'type'"),
    ({"timeInForce": None}, -1102, "'timeInForce'"),
    ({"price": None}, -1102, "'price'"),
    ({"quantity": None}, -1102, "'quantity'"),
    ({"quoteOrderQty": "10"}, -1106, "'quoteOrderQty'"),
    ({"symbol": "BTC_USDT"}, -1121, "'BTC_USDT'"),
    ({"icebergQty": "0.1"}, -1104, "'icebergQty'"),
    ({"quantity": "0.00000001", "price": "0.01"}, -1013, "NOTIONAL"),
])
def test_limit_order_refusals(bw, params, code, word):
    order = {k: v for k, v in {**LIMIT, **params}.items() if v is not None}
    refused(bw, post(bw, order), code, word)


@pytest.mark.parametrize("params,code,word", [
    ({"quantity": "1", "timeInForce": "GTC"}, -1114, "MARKET"),
    ({"quantity": "1", "price": "30000"}, -1106, "'price'"),
    ({}, -1102, "'quantity' or 'quoteOrderQty'"),
    ({"quantity": "1", "quoteOrderQty": "10"}, -1128, "not both"),
    ({"side": "SELL", "quoteOrderQty": "10"}, -1014, "MARKET SELL by quoteOrderQty"),
])
def test_market_order_refusals(bw, params, code, word):
    refused(bw, post(bw, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", **params}), code, word)


@pytest.mark.parametrize("field,text,units", [
    ("quantity", "0.50000000", 50_000_000), ("quantity", "0.5", 50_000_000), ("quantity", ".5", 50_000_000),
    ("quantity", "1.", 100_000_000), ("quantity", "0.000000010000", 1), ("price", "29000.0000", 2_900_000),
    ("price", "29000.5", 2_900_050)])
def test_decimals_take_trailing_zeros(bw, field, text, units):
    assert post(bw, {**LIMIT, field: text}).status == 200
    assert placed(bw)[0][{"price": 5, "quantity": 6}[field]] == units


@pytest.mark.parametrize("field,text,code,word", [
    ("quantity", "0.123456789", -1111, "too much precision"), ("price", "29000.001", -1111, "'price'"),
    ("quantity", "1e3", -1100, "Illegal characters"), ("quantity", "-1", -1100, "'quantity'"),
    ("quantity", "0.5 ", -1100, "'quantity'"), ("quantity", ".", -1100, "'quantity'"),
    ("quantity", "1,5", -1100, "'quantity'"), ("quantity", "0", -1013, "LOT_SIZE"),
    ("quantity", "0.000000000", -1013, "minimum 0.00000001"), ("price", "0.00", -1013, "PRICE_FILTER"),
    ("quantity", "92233720368.54775808", -1013, "maximum 92233720368.54775807"), ("quantity", "", -1105, "empty")])
def test_decimal_refusals_name_the_field(bw, field, text, code, word):
    refused(bw, post(bw, {**LIMIT, field: text}), code, word)


def test_the_engines_refusals_are_2010_in_binance_words(bw):
    r = post(bw, {**LIMIT, "quantity": "1000"})
    assert (r.status, r.code, r.json["msg"]) == (400, -2010, "Account has insufficient balance for requested action.")

    async def duplicate(*args):
        return model.Result(9, 0, model.REJECTED, REASON_TEXT[R_DUPLICATE_CID], R_DUPLICATE_CID, T0_MS)
    bw.exchange.place = duplicate
    r = post(bw, {**LIMIT, "newClientOrderId": "c1"})
    assert r.code == -2010 and r.json["msg"].startswith("Duplicate order sent: newClientOrderId 'c1'")


def test_an_unknown_outcome_is_503_1007(bw):
    bw.exchange.fail_next = TimeoutError()
    r = post(bw, LIMIT)
    assert (r.status, r.code) == (503, -1007) and "execution status unknown" in r.json["msg"]


def test_an_internal_error_is_500_1000(bw, capsys):
    bw.exchange.fail_next = RuntimeError("boom")
    r = post(bw, LIMIT)
    assert (r.status, r.code) == (500, -1000)
    assert r.json["msg"] == "An unknown error occurred while processing the request."
    assert "boom" in capsys.readouterr().err


def test_order_test_checks_everything_and_sends_nothing(bw):
    assert post(bw, LIMIT, path="/order/test").json == {}
    assert post(bw, {**LIMIT, "timeInForce": "FOK"}, path="/order/test").code == -1115
    assert bw.exchange.commands == []


# -- where parameters come from ------------------------------------------------------------------------
def test_post_parameters_in_the_query_the_body_or_both_and_the_query_wins(bw):
    assert bw.client.call("POST", V3 + "/order", query=LIMIT, key=bw.hmac_key).status == 200
    r = bw.client.call("POST", V3 + "/order", query={"symbol": "BTCUSDT", "quantity": "0.25"},
                       form={**LIMIT, "quantity": "0.75"}, key=bw.ed_key)
    assert r.status == 200
    assert [p[6] for p in placed(bw)] == [50_000_000, 25_000_000]


def test_delete_parameters_in_the_body_as_python_binance_sends_them(bw):
    order_id = post(bw, LIMIT).json["orderId"]
    r = bw.client.call("DELETE", V3 + "/order", form={"symbol": "BTCUSDT", "orderId": order_id}, key=bw.hmac_key)
    assert r.status == 200 and r.json["status"] == "CANCELED"
    assert bw.exchange.commands[-1] == ("cancel", (ALICE, order_id))


def test_a_body_that_is_not_a_form_is_refused(bw):
    r = bw.client.call("POST", V3 + "/order", body=b'{"symbol": "BTCUSDT"}', content_type="application/json",
                       headers={"x-mbx-apikey": bw.hmac_key.api_key})
    refused(bw, r, -1100, "application/x-www-form-urlencoded")


def test_a_body_above_the_limit_is_413_unread(bw):
    r = bw.client.call("POST", V3 + "/order", body=b"x" * 20000)
    assert (r.status, r.code) == (413, -1000) and "above the limit" in r.json["msg"]


# -- reading and cancelling ------------------------------------------------------------------------------
def test_get_order_by_id_or_client_id(bw):
    o = post(bw, {**LIMIT, "newClientOrderId": "c1"}).json
    view = call(bw, "GET", "/order", {"symbol": "BTCUSDT", "orderId": o["orderId"]}).json
    assert view == {"symbol": "BTCUSDT", "orderId": o["orderId"], "orderListId": -1, "clientOrderId": "c1",
                    "price": "29000.00", "origQty": "0.50000000", "executedQty": "0.00000000",
                    "cummulativeQuoteQty": "0.000000", "status": "NEW", "timeInForce": "GTC", "type": "LIMIT",
                    "side": "BUY", "stopPrice": "0.00", "icebergQty": "0.00000000", "time": T0_MS,
                    "updateTime": T0_MS, "isWorking": True, "workingTime": T0_MS, "origQuoteOrderQty": "0.000000",
                    "selfTradePreventionMode": "NONE"}
    assert call(bw, "GET", "/order", {"symbol": "BTCUSDT", "origClientOrderId": "c1"}, key=bw.ed_key).json == view
    both = {"symbol": "BTCUSDT", "orderId": o["orderId"], "origClientOrderId": "c1"}
    assert call(bw, "GET", "/order", both).json == view


@pytest.mark.parametrize("params", [{"orderId": 999}, {"origClientOrderId": "nope"},
                                    {"orderId": 100, "origClientOrderId": "other"}, {"symbol": "ETHUSDT"}])
def test_an_order_not_found_is_2013(bw, params):
    post(bw, {**LIMIT, "newClientOrderId": "c1"})
    r = call(bw, "GET", "/order", {"symbol": "BTCUSDT", "orderId": 100, **params})
    assert (r.status, r.code) == (400, -2013) and "Order does not exist" in r.json["msg"]


def test_another_users_order_does_not_exist(bw):
    bw.exchange.balance[(1002, USDT)] = [10**12, 0]
    bob = bw.world.bob
    from tests.gateway.binance.conftest import BKey
    bob_key = BKey(bob.api_key, bob.kind, bob.secret.decode(), bob.user_id)
    order_id = post(bw, LIMIT, key=bob_key).json["orderId"]
    bw.exchange.commands.clear()
    assert call(bw, "GET", "/order", {"symbol": "BTCUSDT", "orderId": order_id}).code == -2013
    refused(bw, call(bw, "DELETE", "/order", {"symbol": "BTCUSDT", "orderId": order_id}), -2011, "no order")


def test_get_order_needs_an_id(bw):
    assert call(bw, "GET", "/order", {"symbol": "BTCUSDT"}).code == -1102


def test_cancel_by_client_id_answers_binances_shape(bw):
    o = post(bw, {**LIMIT, "newClientOrderId": "c1"}).json
    r = call(bw, "DELETE", "/order", {"symbol": "BTCUSDT", "origClientOrderId": "c1", "newClientOrderId": "undo-1"})
    assert r.json == {"symbol": "BTCUSDT", "origClientOrderId": "c1", "orderId": o["orderId"], "orderListId": -1,
                      "clientOrderId": "undo-1", "transactTime": T0_MS, "price": "29000.00", "origQty": "0.50000000",
                      "executedQty": "0.00000000", "cummulativeQuoteQty": "0.000000", "origQuoteOrderQty": "0.000000",
                      "status": "CANCELED", "timeInForce": "GTC", "type": "LIMIT", "side": "BUY",
                      "selfTradePreventionMode": "NONE"}


def test_cancelling_a_closed_or_unknown_order_is_2011_and_sends_nothing(bw):
    order_id = post(bw, LIMIT).json["orderId"]
    assert call(bw, "DELETE", "/order", {"symbol": "BTCUSDT", "orderId": order_id}).status == 200
    bw.exchange.commands.clear()
    refused(bw, call(bw, "DELETE", "/order", {"symbol": "BTCUSDT", "orderId": order_id}), -2011, "CANCELED")
    refused(bw, call(bw, "DELETE", "/order", {"symbol": "BTCUSDT", "orderId": 12345}), -2011, "orderId 12345")
    refused(bw, call(bw, "DELETE", "/order", {"symbol": "ETHUSDT", "orderId": order_id}), -2011, "ETHUSDT")


def test_open_orders_of_one_symbol_or_all_oldest_first(bw):
    a = post(bw, LIMIT).json["orderId"]
    b = post(bw, {**LIMIT, "symbol": "ETHUSDT", "price": "2000"}).json["orderId"]
    c = post(bw, LIMIT).json["orderId"]
    call(bw, "DELETE", "/order", {"symbol": "BTCUSDT", "orderId": c})
    assert [o["orderId"] for o in call(bw, "GET", "/openOrders").json] == [a, b]
    assert [o["orderId"] for o in call(bw, "GET", "/openOrders", {"symbol": "ETHUSDT"}).json] == [b]


def test_all_orders_with_binances_selection(bw):
    ids = [post(bw, LIMIT).json["orderId"] for _ in range(5)]
    listed = lambda params: [o["orderId"] for o in call(bw, "GET", "/allOrders",  # noqa: E731
                                                         {"symbol": "BTCUSDT", **params}).json]
    assert listed({}) == ids
    assert listed({"limit": 2}) == ids[-2:]                 # the newest, oldest first
    assert listed({"orderId": ids[1], "limit": 2}) == ids[1:3]
    assert listed({"startTime": T0_MS, "limit": 1}) == ids[:1]
    assert listed({"endTime": T0_MS - 1}) == []
    assert call(bw, "GET", "/allOrders").code == -1102


def test_my_trades_in_binances_shape_with_filters(bw):
    seed_user_trades(bw.exchange, ALICE, T0_MS)
    trades = call(bw, "GET", "/myTrades", {"symbol": "BTCUSDT"}).json
    assert trades[0] == {"symbol": "BTCUSDT", "id": 11, "orderId": 7, "orderListId": -1, "price": "29900.00",
                         "qty": "0.20000000", "quoteQty": "5980.000000", "commission": "0.00001000",
                         "commissionAsset": "BTC", "time": T0_MS - 30_000, "isBuyer": True, "isMaker": True,
                         "isBestMatch": True}
    assert (trades[2]["isBuyer"], trades[2]["isMaker"], trades[2]["commission"]) == (False, False, "0.001000")
    ids = lambda params: [t["id"] for t in call(bw, "GET", "/myTrades", {"symbol": "BTCUSDT", **params}).json]  # noqa
    assert ids({}) == [11, 12, 13]
    assert ids({"orderId": 7}) == [11, 12]
    assert ids({"fromId": 12, "limit": 1}) == [12]
    assert ids({"startTime": T0_MS - 20_000}) == [12, 13]
    assert ids({"endTime": T0_MS - 20_000, "limit": 1}) == [12]
    assert ids({"limit": 1}) == [13]
    assert call(bw, "GET", "/myTrades", {"symbol": "ETHUSDT"}).json == []
    r = call(bw, "GET", "/myTrades", {"symbol": "BTCUSDT", "fromId": 1, "startTime": 1})
    assert r.code == -1128


def test_account_lists_every_asset_free_and_locked(bw):
    post(bw, LIMIT)
    a = call(bw, "GET", "/account").json
    assert a["balances"] == [{"asset": "BTC", "free": "10.00000000", "locked": "0.00000000"},
                             {"asset": "USDT", "free": "985500.000000", "locked": "14500.000000"},
                             {"asset": "ETH", "free": "0.00000000", "locked": "0.00000000"}]
    assert {k: a[k] for k in ("makerCommission", "takerCommission", "commissionRates", "canTrade", "accountType",
                              "uid", "permissions", "updateTime")} == {
        "makerCommission": 10, "takerCommission": 20, "canTrade": True, "accountType": "SPOT", "uid": ALICE,
        "permissions": ["SPOT"], "updateTime": T0_MS,
        "commissionRates": {"maker": "0.00100000", "taker": "0.00200000", "buyer": "0.00000000",
                            "seller": "0.00000000"}}
    omitted = call(bw, "GET", "/account", {"omitZeroBalances": "true"}).json["balances"]
    assert [b["asset"] for b in omitted] == ["BTC", "USDT"]
