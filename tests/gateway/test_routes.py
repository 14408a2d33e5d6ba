"""Every route's happy path, and the answers that are not refusals of a hostile
request (those are in test_hostile.py), through the RSGI app in-process."""
from __future__ import annotations

from xinfinity.accounts.permissions import READ, TRADE
from xinfinity.gateway import model

from tests.gateway.conftest import BTC, BTC_USDT, ETH_USDT, T0_MS, USDT

PRV = "/api/v1/private"


def limit_buy(price="30000", qty="0.5", symbol="BTC_USDT", **extra):
    return {"symbol": symbol, "side": "BUY", "order_type": "LIMIT", "price": price, "qty": qty, **extra}


def place(world, body=None, key=None):
    r = world.client.request("POST", f"{PRV}/order", body or limit_buy(), key=key or world.alice)
    assert r.status == 200, r.json
    return r.data


# -- public ---------------------------------------------------------------------------------
def test_health_answers_the_server_time_once_ready(world):
    r = world.client.request("GET", "/api/v1/health")
    assert (r.status, r.json) == (200, {"code": 0, "msg": "ok", "data": {"timestamp_ms": T0_MS}})


def test_health_is_503_while_the_exchange_is_not_ready(world):
    world.exchange.is_ready = False
    r = world.client.request("GET", "/api/v1/health")
    assert (r.status, r.code) == (503, 5001)
    assert "data" not in r.json


def test_exchange_info_lists_assets_symbols_and_fees_in_bps(world):
    d = world.client.request("GET", "/api/v1/public/exchange_info").data
    assert d["server_time"] == T0_MS
    assert [a["asset"] for a in d["assets"]] == ["BTC", "USDT", "ETH"]
    assert d["assets"][0] == {"asset_id": 1, "asset": "BTC", "name": "BTC", "decimals": 8, "display_decimals": 6,
                              "can_deposit": True, "can_withdraw": True, "can_trade": True}
    assert d["symbols"][0] == {"symbol_id": 0, "symbol": "BTC_USDT", "base_asset": "BTC", "quote_asset": "USDT",
                               "price_decimals": 2, "qty_decimals": 8, "is_tradable": True, "is_visible": True,
                               "base_maker_fee": "10.00", "base_taker_fee": "20.00"}
    assert world.client.request("GET", "/api/v1/public/assets").data == d["assets"]
    assert world.client.request("GET", "/api/v1/public/symbols").data == d["symbols"]


# -- orders ------------------------------------------------------------------------------------
def test_limit_buy_is_acknowledged_with_its_seq_and_cid_and_locks_the_cost(world):
    ack = place(world, limit_buy(cid="my-1.a:b_c"))
    assert ack == {"order_id": 100, "cid": "my-1.a:b_c", "seq": 1, "order_status": "NEW", "accepted_at": T0_MS,
                   "filled_qty": "0.000000", "fills": []}
    assert world.exchange.commands == [("place", (world.alice.user_id, BTC_USDT, "BUY", "LIMIT", "GTC",
                                                  3_000_000, 50_000_000, 0, "my-1.a:b_c"))]
    assert world.exchange.balance[(world.alice.user_id, USDT)] == [985_000 * 10**6, 15_000 * 10**6]


def test_immediate_fills_are_formatted_in_the_ack_and_the_order_shows_its_average_price(world):
    uid = world.alice.user_id
    world.exchange.next_fills = (model.Fill(7, 2_999_000, 20_000_000, 5_998 * 10**6, 200_000, BTC, "TAKER"),
                                 model.Fill(8, 3_000_000, 30_000_000, 9_000 * 10**6, 300_000, BTC, "TAKER"))
    ack = place(world)
    assert ack["order_status"] == "FILLED" and ack["filled_qty"] == "0.500000"
    assert ack["fills"] == [
        {"trade_id": 7, "price": "29990.00", "qty": "0.200000", "fee": "0.002000", "fee_asset": "BTC",
         "role": "TAKER"},
        {"trade_id": 8, "price": "30000.00", "qty": "0.300000", "fee": "0.003000", "fee_asset": "BTC",
         "role": "TAKER"}]
    view = world.client.request("GET", f"{PRV}/order/100", key=world.alice).data
    # (5998 + 9000) USDT / 0.5 BTC
    assert view == {"order_id": 100, "user_id": uid, "symbol": "BTC_USDT", "side": "BUY", "order_type": "LIMIT",
                    "time_in_force": "GTC", "price": "30000.00", "qty": "0.500000", "filled_qty": "0.500000",
                    "avg_price": "29996.00", "status": "FILLED", "cid": None, "created_at": T0_MS,
                    "updated_at": T0_MS}


def test_market_buy_takes_a_quote_budget_and_market_sell_a_qty(world):
    buy = {"symbol": "BTC_USDT", "side": "BUY", "order_type": "MARKET", "time_in_force": "IOC", "quote_qty": "100.5"}
    sell = {"symbol": "BTC_USDT", "side": "SELL", "order_type": "MARKET", "time_in_force": "IOC", "qty": "0.25"}
    place(world, buy)
    place(world, sell)
    uid = world.alice.user_id
    assert [c[1] for c in world.exchange.commands] == [
        (uid, BTC_USDT, "BUY", "MARKET", "IOC", 0, 0, 100_500_000, None),
        (uid, BTC_USDT, "SELL", "MARKET", "IOC", 0, 25_000_000, 0, None)]


def test_a_rejected_order_is_400_with_the_engines_reason(world):
    r = world.client.request("POST", f"{PRV}/order", limit_buy(qty="1000"), key=world.alice)
    assert (r.status, r.json) == (400, {"code": 1002, "msg": "Insufficient balance"})


def test_cancel_by_post_and_by_delete_release_the_lock(world):
    uid = world.alice.user_id
    first, second = place(world)["order_id"], place(world)["order_id"]
    r = world.client.request("POST", f"{PRV}/cancel", {"order_id": first}, key=world.alice)
    assert r.data == {"order_id": first, "order_status": "CANCELED", "accepted_at": T0_MS}
    r = world.client.request("DELETE", f"{PRV}/order/{second}", key=world.alice)
    assert r.data == {"order_id": second, "order_status": "CANCELED", "accepted_at": T0_MS}
    assert world.exchange.balance[(uid, USDT)] == [1_000_000 * 10**6, 0]


def test_cancelling_a_closed_order_is_404_from_the_engine(world):
    order_id = place(world)["order_id"]
    world.client.request("DELETE", f"{PRV}/order/{order_id}", key=world.alice)
    r = world.client.request("DELETE", f"{PRV}/order/{order_id}", key=world.alice)
    assert (r.status, r.json) == (404, {"code": 4001, "msg": "Order not found"})


def test_reduce_and_move_parse_with_the_orders_symbol(world):
    order_id = place(world, limit_buy(cid="c"))["order_id"]
    r = world.client.request("POST", f"{PRV}/order/reduce", {"order_id": order_id, "reduce_qty": "0.1"},
                             key=world.alice)
    assert r.data["cid"] == "c" and r.data["order_status"] == "NEW"
    r = world.client.request("POST", f"{PRV}/order/move", {"order_id": order_id, "new_price": "29000.5"},
                             key=world.alice)
    assert r.status == 200
    assert [c for c in world.exchange.commands if c[0] != "place"] == [
        ("reduce", (world.alice.user_id, order_id, 10_000_000)), ("move", (world.alice.user_id, order_id, 2_900_050))]
    view = world.client.request("GET", f"{PRV}/order/{order_id}", key=world.alice).data
    assert (view["qty"], view["price"]) == ("0.400000", "29000.50")


def test_orders_are_newest_first_filtered_by_symbol_and_status_and_limited(world):
    world.exchange.balance[(world.alice.user_id, USDT)][0] *= 10
    btc = [place(world)["order_id"] for _ in range(3)]
    eth = place(world, limit_buy(symbol="ETH_USDT", price="2000", qty="1"))["order_id"]
    world.client.request("DELETE", f"{PRV}/order/{btc[0]}", key=world.alice)

    def ids(query):
        r = world.client.request("GET", f"{PRV}/orders{query}", key=world.alice)
        assert r.status == 200, r.json
        return [o["order_id"] for o in r.data]

    assert ids("") == [eth, btc[2], btc[1], btc[0]]             # default: all, newest first
    assert ids("?status=all&limit=2") == [eth, btc[2]]
    assert ids("?status=open") == [eth, btc[2], btc[1]]
    assert ids("?symbol=BTC_USDT") == [btc[2], btc[1], btc[0]]
    assert ids("?symbol=ETH_USDT&status=open") == [eth]
    assert ids("?limit=1000") == [eth, btc[2], btc[1], btc[0]]


def test_the_default_orders_limit_is_10(world):
    world.exchange.balance[(world.alice.user_id, USDT)][0] *= 100
    for _ in range(12):
        place(world)
    assert len(world.client.request("GET", f"{PRV}/orders", key=world.alice).data) == 10


def test_trades_are_the_users_own_filtered_by_symbol(world):
    uid = world.alice.user_id
    for trade_id, symbol_id, user in ((1, BTC_USDT, uid), (2, ETH_USDT, uid), (3, BTC_USDT, 9), (4, BTC_USDT, uid)):
        world.exchange.trade_list.append(model.Trade(trade_id, 50, user, symbol_id, "SELL", 3_000_000, 10**8,
                                                     30_000 * 10**6, 30 * 10**6, USDT, "MAKER", T0_MS, trade_id))
    r = world.client.request("GET", f"{PRV}/trades?symbol=BTC_USDT", key=world.alice)
    assert [t["trade_id"] for t in r.data] == [4, 1]
    assert r.data[0] == {"trade_id": 4, "order_id": 50, "user_id": uid, "symbol": "BTC_USDT", "side": "SELL",
                         "price": "30000.00", "qty": "1.000000", "quote_qty": "30000.0000", "fee": "30.0000",
                         "fee_asset": "USDT", "role": "MAKER", "created_at": T0_MS}
    assert [t["trade_id"] for t in world.client.request("GET", f"{PRV}/trades?limit=2", key=world.alice).data] == [4, 2]


# -- balances ----------------------------------------------------------------------------------
def test_one_balance_by_asset_name_or_id(world):
    uid = world.alice.user_id
    expected = {"user_id": uid, "asset": "BTC", "asset_id": 1, "avail": "10.000000", "frozen": "0.000000"}
    assert world.client.request("GET", f"{PRV}/balances?asset=BTC", key=world.alice).data == expected
    assert world.client.request("GET", f"{PRV}/balances?asset_id=1", key=world.alice).data == expected
    r = world.client.request("GET", f"{PRV}/balances?asset=ETH", key=world.alice)
    assert r.data == {"user_id": uid, "asset": "ETH", "asset_id": 3, "avail": "0.000000", "frozen": "0.000000"}


def test_all_balances_and_account_list_every_asset_with_zeros(world):
    place(world)
    for path in ("balances/all", "account"):
        r = world.client.request("GET", f"{PRV}/{path}", key=world.alice)
        assert r.data == [
            {"asset_id": 1, "asset": "BTC", "account_type": "spot", "available": "10.000000", "frozen": "0.000000"},
            {"asset_id": 2, "asset": "USDT", "account_type": "spot", "available": "985000.0000",
             "frozen": "15000.0000"},
            {"asset_id": 3, "asset": "ETH", "account_type": "spot", "available": "0.000000", "frozen": "0.000000"}]


# -- accounts ------------------------------------------------------------------------------------
def test_register_is_201_and_login_takes_email_or_username(world):
    c = world.client
    r = c.request("POST", "/api/v1/auth/register", {"username": "carol", "email": "c@x.io", "password": "longenough"})
    assert (r.status, r.data) == (201, {"user_id": 1004})
    for who in ("c@x.io", "carol"):
        r = c.request("POST", "/api/v1/auth/login", {"email": who, "password": "longenough"})
        assert r.status == 200
        assert {k: r.data[k] for k in ("user_id", "username", "email")} == {
            "user_id": 1004, "username": "carol", "email": "c@x.io"}
        assert world.tokens.verify(r.data["token"], T0_MS // 1000) == 1004


def test_register_refusals_carry_the_stores_code(world):
    c = world.client
    r = c.request("POST", "/api/v1/auth/register", {"username": "alice", "email": "a2@x.io", "password": "longenough"})
    assert (r.status, r.code) == (409, 1005)
    r = c.request("POST", "/api/v1/auth/register", {"username": "dave", "email": "d@x.io", "password": "short"})
    assert (r.status, r.code) == (400, 1001)


def test_login_with_a_wrong_password_is_401(world):
    r = world.client.request("POST", "/api/v1/auth/login", {"email": "alice", "password": "nope-nope"})
    assert (r.status, r.code) == (401, 2002)


def login(world, who="alice"):
    r = world.client.request("POST", "/api/v1/auth/login", {"email": who, "password": "password-" + who})
    return r.data["token"]


def test_a_key_made_through_the_api_signs_requests_until_revoked(world):
    from tests.gateway.conftest import Key
    c, token = world.client, login(world)
    for kind in ("ed25519", "hmac"):
        r = c.request("POST", "/api/v1/user/apikeys", {"label": "bot", "permissions": ["read"], "kind": kind},
                      token=token)
        assert r.status == 201 and r.data["kind"] == kind and r.data["permissions"] == ["read"]
        secret = bytes.fromhex(r.data["api_secret"]) if kind == "ed25519" else r.data["api_secret"].encode()
        key = Key(r.data["api_key"], secret, kind, world.alice.user_id)
        assert c.request("GET", f"{PRV}/balances/all", key=key).status == 200
        listed = {k["api_key"]: k for k in c.request("GET", "/api/v1/user/apikeys", token=token).data}
        assert listed[key.api_key] == {"api_key": key.api_key, "kind": kind, "permissions": ["read"], "label": "bot",
                                       "created_at": T0_MS, "revoked_at": None}
        r = c.request("DELETE", f"/api/v1/user/apikeys/{key.api_key}", token=token)
        assert r.data == {"api_key": key.api_key, "revoked_at": T0_MS}
        r = c.request("GET", f"{PRV}/balances/all", key=key)
        assert (r.status, r.code) == (401, 2003)


def test_a_new_key_defaults_to_read_and_trade(world):
    r = world.client.request("POST", "/api/v1/user/apikeys", {}, token=login(world))
    assert r.data["permissions"] == ["read", "trade"]
    assert world.store.key(r.data["api_key"]).permissions == READ | TRADE


def test_revoking_someone_elses_or_an_unknown_key_is_404(world):
    token = login(world, "bob")
    for api_key in (world.alice.api_key, "AK_0000000000000000"):
        r = world.client.request("DELETE", f"/api/v1/user/apikeys/{api_key}", token=token)
        assert (r.status, r.code) == (404, 4002)
    assert not world.store.key(world.alice.api_key).revoked


# -- operator --------------------------------------------------------------------------------------
def test_admin_deposit_and_withdraw_answer_the_balance_after(world):
    c, bob = world.client, world.bob.user_id
    r = c.request("POST", "/api/v1/admin/deposit", {"user_id": bob, "asset": "USDT", "amount": "12.5"}, key=world.admin)
    assert r.data == {"user_id": bob, "asset": "USDT", "seq": 1, "avail": "12.5000", "frozen": "0.0000"}
    r = c.request("POST", "/api/v1/admin/withdraw", {"user_id": bob, "asset": "USDT", "amount": "2.5"}, key=world.admin)
    assert r.data == {"user_id": bob, "asset": "USDT", "seq": 2, "avail": "10.0000", "frozen": "0.0000"}
    r = c.request("POST", "/api/v1/admin/withdraw", {"user_id": bob, "asset": "USDT", "amount": "11"}, key=world.admin)
    assert (r.status, r.json) == (400, {"code": 1002, "msg": "Insufficient balance"})


# -- the exchange failing ------------------------------------------------------------------------------
def test_a_command_not_acknowledged_in_time_is_503_outcome_unknown(world):
    world.exchange.fail_next = TimeoutError()
    r = world.client.request("POST", f"{PRV}/order", limit_buy(), key=world.alice)
    assert (r.status, r.code) == (503, 5001)
    assert r.json["msg"].startswith("outcome unknown: not acknowledged within 10 s")
    assert "may still complete" in r.json["msg"]


def test_an_unexpected_error_is_500_without_internals_and_goes_to_stderr(world, capsys):
    world.exchange.fail_next = RuntimeError("ring 7 torn at slot 4242")
    r = world.client.request("POST", f"{PRV}/order", limit_buy(), key=world.alice)
    assert (r.status, r.json) == (500, {"code": 5000, "msg": "internal error"})
    assert "ring 7 torn at slot 4242" in capsys.readouterr().err


def test_a_body_sent_in_chunks_without_a_length_is_read_whole_and_verified(world):
    import msgspec
    raw = msgspec.json.encode(limit_buy())
    r = world.client.request("POST", f"{PRV}/order", key=world.alice, chunks=[raw[:7], raw[7:30], raw[30:], b""],
                             sign_body=raw)
    assert r.status == 200, r.json


def test_an_expired_login_token_is_refused(world):
    token = login(world)
    world.exchange.clock_ms += world.tokens.ttl_s * 1000
    r = world.client.request("GET", "/api/v1/user/apikeys", token=token)
    assert (r.status, r.code) == (401, 2002)


def test_a_method_the_path_does_not_take_is_405_naming_the_ones_it_does(world):
    r = world.client.request("PUT", "/api/v1/health")
    assert (r.status, r.code) == (405, 4005)
    assert ("allow", "GET") in r.proto.headers
