"""CCXT's `binance` class and python-binance's Client, unmodified, with only their
URLs pointed at a real granian server (serve_binance.py) over the fakes, with
keys made by `xinf apikey create --json`: they read what the fakes hold and
trade, with an HMAC key and with an Ed25519 key each."""
from __future__ import annotations

import time

import pytest

from tests.gateway.binance.conftest import FakeMarketData, seed_market, seed_user_trades
from tests.gateway.conftest import BTC_USDT, FakeExchange, served
from tests.gateway.test_server import free_port
from xinfinity.config import DEFAULT_SYMBOLS

ccxt = pytest.importorskip("ccxt")
binance_client = pytest.importorskip("binance.client")
pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    data_dir = tmp_path_factory.mktemp("binance_accounts")
    with served("tests.gateway.binance.serve_binance", [port, data_dir], [port]) as info:
        info["url"] = f"http://127.0.0.1:{port}/api/v3"
        info["market"] = seed_market(FakeMarketData(DEFAULT_SYMBOLS), info["t0_ms"])
        yield info


def user_trades(info, user):
    """What the server holds as the user's trades (serve_binance.py seeds them)."""
    exchange = FakeExchange()
    seed_user_trades(exchange, info["keys"][user]["user_id"], info["t0_ms"])
    return exchange.trade_list


def ccxt_exchange(info, user):
    key = info["keys"][user]
    ex = ccxt.binance({"apiKey": key["api_key"], "secret": key.get("secret") or key["secret_pem"],
                       "options": {"fetchMarkets": {"types": ["spot"]}, "fetchMargins": False,
                                   "fetchCurrencies": False}})
    ex.urls["api"]["public"] = info["url"]
    ex.urls["api"]["private"] = info["url"]
    return ex


@pytest.mark.parametrize("user", ["ccxt_hmac", "ccxt_ed25519"])
def test_ccxt_reads_the_market_and_trades(server, user):
    ex = ccxt_exchange(server, user)
    market = server["market"]
    markets = ex.load_markets()
    btc = markets["BTC/USDT"]
    assert (btc["id"], btc["spot"], btc["active"], btc["base"], btc["quote"]) == ("BTCUSDT", True, True, "BTC", "USDT")
    assert (btc["precision"]["amount"], btc["precision"]["price"], btc["limits"]["cost"]["min"]) == (1e-8, 0.01, 1e-6)
    assert set(markets) == {"BTC/USDT", "ETH/USDT"}

    book = ex.fetch_order_book("BTC/USDT")
    bids, asks = market.books[BTC_USDT]
    assert book["bids"] == [[p / 100, q / 1e8] for p, q in bids]
    assert book["asks"] == [[p / 100, q / 1e8] for p, q in asks]
    assert book["nonce"] == market.update_id

    tape = market.tapes[BTC_USDT]
    trades = ex.fetch_trades("BTC/USDT")
    assert [(t["id"], t["price"], t["amount"], t["timestamp"], t["side"]) for t in trades] == [
        (str(t.trade_id), t.price / 100, t.qty / 1e8, t.time_ms, "sell" if t.buyer_is_maker else "buy") for t in tape]

    candles = market.candles[(BTC_USDT, "1m")]
    assert ex.fetch_ohlcv("BTC/USDT", "1m") == [[k.open_time_ms, k.open / 100, k.high / 100, k.low / 100,
                                                 k.close / 100, k.volume / 1e8] for k in candles]

    ticker = ex.fetch_ticker("BTC/USDT")
    assert (ticker["last"], ticker["open"], ticker["bid"], ticker["ask"], ticker["baseVolume"]) == (
        tape[-1].price / 100, tape[0].price / 100, bids[0][0] / 100, asks[0][0] / 100, sum(t.qty for t in tape) / 1e8)

    balance = ex.fetch_balance()
    assert (balance["BTC"], balance["USDT"]) == ({"free": 10.0, "used": 0.0, "total": 10.0},
                                                 {"free": 1e6, "used": 0.0, "total": 1e6})

    limit = ex.create_order("BTC/USDT", "limit", "buy", 0.5, 29000)
    assert (limit["status"], limit["type"], limit["side"], limit["amount"], limit["price"]) == (
        "open", "limit", "buy", 0.5, 29000.0)
    market_buy = ex.create_order("BTC/USDT", "market", "buy", 0.01)     # by quantity: a budget of 0.01 at 30010
    assert (market_buy["type"], market_buy["amount"]) == ("market", 0.01)
    market_sell = ex.create_order("BTC/USDT", "market", "sell", 0.02)
    assert market_sell["amount"] == 0.02
    balance = ex.fetch_balance()
    assert balance["USDT"]["used"] == 14500 + 300.1 and balance["BTC"]["used"] == 0.02

    fetched = ex.fetch_order(limit["id"], "BTC/USDT")
    assert (fetched["id"], fetched["clientOrderId"], fetched["status"], fetched["amount"], fetched["price"],
            fetched["filled"]) == (limit["id"], limit["clientOrderId"], "open", 0.5, 29000.0, 0.0)
    assert [o["id"] for o in ex.fetch_open_orders("BTC/USDT")] == [limit["id"], market_buy["id"], market_sell["id"]]
    assert ex.cancel_order(limit["id"], "BTC/USDT")["status"] == "canceled"
    assert [o["id"] for o in ex.fetch_open_orders("BTC/USDT")] == [market_buy["id"], market_sell["id"]]
    assert ex.fetch_balance()["USDT"]["used"] == 300.1

    mine = ex.fetch_my_trades("BTC/USDT")
    assert [(t["id"], t["order"], t["side"], t["price"], t["amount"], t["fee"]["cost"], t["fee"]["currency"],
             t["takerOrMaker"]) for t in mine] == [
        (str(t.trade_id), str(t.order_id), t.side.lower(), t.price / 100, t.qty / 1e8,
         t.fee / (1e8 if t.fee_asset_id == 1 else 1e6), "BTC" if t.fee_asset_id == 1 else "USDT", t.role.lower())
        for t in user_trades(server, user)]

    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("BTC/USDT", "limit", "buy", 1000, 29000)
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(limit["id"], "BTC/USDT")
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order("999999", "BTC/USDT")


@pytest.mark.parametrize("user", ["pb_hmac", "pb_ed25519"])
def test_python_binance_reads_the_market_and_trades(server, user):
    key = server["keys"][user]
    if key["kind"] == "hmac":
        client = binance_client.Client(key["api_key"], key["secret"], ping=False)
    else:
        client = binance_client.Client(key["api_key"], private_key=key["secret_pem"], ping=False)
    client.API_URL = server["url"][:-len("/v3")]
    market = server["market"]
    bids, asks = market.books[BTC_USDT]
    tape = market.tapes[BTC_USDT]

    assert client.ping() == {}
    assert abs(client.get_server_time()["serverTime"] - time.time() * 1000) < 60_000
    info = client.get_symbol_info("BTCUSDT")
    assert (info["baseAsset"], info["quoteAsset"], info["filters"][0]["tickSize"]) == ("BTC", "USDT", "0.01")
    assert client.get_order_book(symbol="BTCUSDT", limit=1) == {
        "lastUpdateId": market.update_id, "bids": [["29990.00", "0.50000000"]], "asks": [["30010.00", "0.40000000"]]}
    assert [t["id"] for t in client.get_recent_trades(symbol="BTCUSDT")] == [t.trade_id for t in tape]
    assert [a["a"] for a in client.get_aggregate_trades(symbol="BTCUSDT", limit=2)] == [t.trade_id for t in tape[-2:]]
    assert [k[0] for k in client.get_klines(symbol="BTCUSDT", interval="1m")] == [
        k.open_time_ms for k in market.candles[(BTC_USDT, "1m")]]
    assert client.get_ticker(symbol="BTCUSDT")["lastPrice"] == "30001.00"
    assert client.get_symbol_ticker(symbol="BTCUSDT") == {"symbol": "BTCUSDT", "price": "30001.00"}
    assert client.get_orderbook_ticker(symbol="BTCUSDT") == {
        "symbol": "BTCUSDT", "bidPrice": "29990.00", "bidQty": "0.50000000", "askPrice": "30010.00",
        "askQty": "0.40000000"}

    account = client.get_account()
    assert account["uid"] == key["user_id"] and account["canTrade"] is True
    assert client.get_asset_balance("BTC") == {"asset": "BTC", "free": "10.00000000", "locked": "0.00000000"}

    limit = client.order_limit_buy(symbol="BTCUSDT", quantity="0.50000000", price="29000.00")
    assert (limit["status"], limit["origQty"], limit["price"], limit["fills"]) == ("NEW", "0.50000000", "29000.00", [])
    assert client.order_market_buy(symbol="BTCUSDT", quantity="0.01")["origQuoteOrderQty"] == "300.100000"
    assert client.order_market_buy(symbol="BTCUSDT", quoteOrderQty="100")["origQuoteOrderQty"] == "100.000000"
    client.order_market_sell(symbol="BTCUSDT", quantity="0.02")
    assert client.get_asset_balance("USDT") == {"asset": "USDT", "free": "985099.900000", "locked": "14900.100000"}

    assert client.get_order(symbol="BTCUSDT", orderId=limit["orderId"])["status"] == "NEW"
    assert client.get_order(symbol="BTCUSDT", origClientOrderId=limit["clientOrderId"])["orderId"] == limit["orderId"]
    assert len(client.get_open_orders(symbol="BTCUSDT")) == 4
    canceled = client.cancel_order(symbol="BTCUSDT", orderId=limit["orderId"])     # its parameters go in the body
    assert (canceled["status"], canceled["origClientOrderId"]) == ("CANCELED", limit["clientOrderId"])
    assert [o["status"] for o in client.get_all_orders(symbol="BTCUSDT")] == ["CANCELED", "NEW", "NEW", "NEW"]
    assert [(t["id"], t["orderId"], t["qty"]) for t in client.get_my_trades(symbol="BTCUSDT")] == [
        (t.trade_id, t.order_id, f"{t.qty / 1e8:.8f}") for t in user_trades(server, user)]

    with pytest.raises(binance_client.BinanceAPIException) as e:
        client.order_limit_buy(symbol="BTCUSDT", quantity="1000", price="29000")
    assert e.value.code == -2010 and e.value.message == "Account has insufficient balance for requested action."
    with pytest.raises(binance_client.BinanceAPIException) as e:
        client.order_limit_buy(symbol="BTCUSDT", quantity="0.123456789", price="29000")
    assert e.value.code == -1111
    with pytest.raises(binance_client.BinanceAPIException) as e:
        client.get_order(symbol="BTCUSDT", orderId=999999)
    assert e.value.code == -2013
