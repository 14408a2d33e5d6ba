"""The endpoints of spec/API.md section 2 under /api/v3: the table and the handlers.

Each handler reads its parameters (gateway/binance/params.py), calls
`done()` to refuse any it does not take, and only then asks the exchange
(gateway/model.py's Exchange: integer units, our symbol ids) or the market
data (marketdata/types.py) and shapes the answer (gateway/binance/shapes.py).

Symbols are named as Binance names them, base and quote asset run together
(`BTCUSDT` for our `BTC_USDT`). Decimals in requests take the decimals of what
they measure: price the symbol's price_decimals, quantity the base asset's,
quoteOrderQty the quote asset's; answers give every digit (shapes.py).

Rules the handlers hold, beyond Binance's parameter rules:
- Only LIMIT (GTC, IOC) and MARKET orders exist here. FOK is -1115, any other
  type (LIMIT_MAKER, STOP_LOSS, ...) -1116, naming what is taken instead.
- The engine's market buy spends a quote budget. A MARKET BUY by quantity
  becomes a market buy capped at that quantity whose budget is what the
  quantity costs on the ask side of the book now: if the asks have moved up
  when it runs, it buys less rather than pay more. That is its protection
  (spec/TRADING_RULES.md has the gateway protect a market buy by qty; here it
  stays a MARKET order rather than an IOC limit). It needs market data and an
  ask side. A MARKET SELL by quoteOrderQty is not supported (-1014).
- An order of another user, or of another symbol than the one named, does not
  exist: reading it is -2013, cancelling it -2011, decided from the exchange's
  reads before any command is sent; cancelling an order that is no longer
  open is -2011 as well, and sends nothing.
- A command the engine refuses is -2010 (place) or -2011 (cancel) with the
  reason, in Binance's words where it has them (CCXT matches "Account has
  insufficient balance for requested action." exactly).
- allOrders, myTrades and aggTrades filters (orderId, fromId, startTime,
  endTime) select among the newest SCAN_ROWS rows, which is what the
  exchange's and the market data's reads give (newest first, with a limit).
- Market data endpoints answer 503 (-1000) when the gateway has no market data.
"""
from __future__ import annotations

import re
import secrets
from typing import Any, Callable, NamedTuple

from ...accounts.permissions import READ, TRADE
from ...engine.money import INT64_LIMIT, format_decimal
from ...engine.records import R_DUPLICATE_CID, R_INSUFFICIENT_BALANCE, R_ORDER_NOT_FOUND
from ...marketdata.types import INTERVALS_MS
from ..model import NEW, PARTIALLY_FILLED, REJECTED, cost, mean_price
from . import errors as E
from . import shapes as S
from .errors import BinanceError
from .params import Params

ORDER_TYPES = ("LIMIT", "MARKET")
TIMES_IN_FORCE = ("GTC", "IOC")
RESPONSE_TYPES = ("ACK", "RESULT", "FULL")
OPEN = (NEW, PARTIALLY_FILLED)
CLIENT_ORDER_ID_RE = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}\Z")   # Binance's newClientOrderId
DEPTH_MAX = 5000            # Binance truncates a larger depth limit to this
SCAN_ROWS = 1000            # the rows a filtered history read looks through (newest first)
OPEN_ORDERS_MAX = 10_000    # openOrders lists them all; a bound on a user's open orders
STP_NAMES = {"none": "NONE", "expire_taker": "EXPIRE_TAKER", "expire_maker": "EXPIRE_MAKER",
             "expire_both": "EXPIRE_BOTH"}


class Req(NamedTuple):
    """What a handler gets: the request's parameters (timestamp, recvWindow and
    signature already read), the key of a signed request, the server time."""
    params: Params
    key: Any            # accounts.store.KeyRecord; None on public endpoints
    now_ms: int


class Route(NamedTuple):
    handler: Callable
    permission: int     # 0: public; READ or TRADE: signed, and the key must hold it


class NewOrder(NamedTuple):
    """An order as the exchange takes it: integer units, our symbol."""
    symbol: Any                 # config.Symbol
    side: str
    order_type: str
    time_in_force: str
    price: int                  # 0 for MARKET
    qty: int                    # 0: a market buy by quote_qty alone
    quote_qty: int              # a market buy's budget
    cid: str
    response_type: str


def _cost(price: int, qty: int, s, base, quote) -> int:
    return cost(price, qty, s.price_decimals, base.decimals, quote.decimals)


def _pick(rows: list, from_start: bool, limit: int) -> list:
    """Rows oldest first: the first `limit` when reading forward from a start, else the newest `limit`."""
    return rows[:limit] if from_start else rows[-limit:]


class Handlers:
    def __init__(self, exchange, market):
        self.exchange = exchange
        self.market_data = market
        self.assets = {a.id: a for a in exchange.assets}
        self.symbols = {s.id: s for s in exchange.symbols}
        self.by_name = {self.binance_name(s): s for s in exchange.symbols}
        assert len(self.by_name) == len(self.symbols), "two symbols run together to one Binance name"
        # Per symbol, for each decimal parameter of an order: its decimals, its filter, its maximum.
        self.limits = {s.id: {name: (decimals, filter_name, format_decimal(INT64_LIMIT - 1, decimals))
                              for name, decimals, filter_name in (
                                  ("price", s.price_decimals, "PRICE_FILTER"),
                                  ("quantity", self.base(s).decimals, "LOT_SIZE"),
                                  ("quoteOrderQty", self.quote(s).decimals, "NOTIONAL"))}
                       for s in exchange.symbols}
        self.infos = {name: self.symbol_info(name, s) for name, s in self.by_name.items()}

    # -- names, units, lookups -------------------------------------------------------------
    def binance_name(self, s) -> str:
        return self.assets[s.base_asset_id].name + self.assets[s.quote_asset_id].name

    def name(self, symbol_id: int) -> str:
        return self.binance_name(self.symbols[symbol_id])

    def base(self, s):
        return self.assets[s.base_asset_id]

    def quote(self, s):
        return self.assets[s.quote_asset_id]

    def qty(self, units: int, s) -> str:
        return format_decimal(units, self.base(s).decimals)

    def quote_amount(self, units: int, s) -> str:
        return format_decimal(units, self.quote(s).decimals)

    @staticmethod
    def price(units: int, s) -> str:
        return format_decimal(units, s.price_decimals)

    def amount(self, units: int, asset_id: int) -> str:
        return format_decimal(units, self.assets[asset_id].decimals)

    def symbol(self, p: Params, required: bool = True):
        name = p.need("symbol") if required else p.get("symbol")
        if name is None:
            return None
        s = self.by_name.get(name)
        if s is None:
            raise BinanceError(E.BAD_SYMBOL, f"Invalid symbol: {name[:40]!r} is not one of "
                                             f"{', '.join(self.by_name)}.")
        return s

    def symbol_list(self, p: Params) -> tuple[list, bool]:
        """`symbol`, `symbols` (a JSON list) or neither (every symbol); and whether one symbol was named."""
        one, many = self.symbol(p, required=False), p.json_names("symbols")
        if one is not None and many is not None:
            raise BinanceError(E.BAD_COMBO, "Combination of optional parameters invalid: send 'symbol' or "
                                            "'symbols', not both.")
        if one is not None:
            return [one], True
        if many is None:
            return list(self.by_name.values()), False
        unknown = [n for n in many if n not in self.by_name]
        if unknown:
            raise BinanceError(E.BAD_SYMBOL, f"Invalid symbol: {', '.join(repr(n[:40]) for n in unknown)} in "
                                             f"'symbols' not among {', '.join(self.by_name)}.")
        return [self.by_name[n] for n in many], False

    def market(self):
        if self.market_data is None:
            raise BinanceError(E.UNKNOWN, "Market data is not available on this gateway (it was started "
                                          "without it); trading and account endpoints still work.", status=503)
        return self.market_data

    def stp(self, s) -> str:
        return STP_NAMES[s.stp]

    def symbol_info(self, name: str, s) -> S.SymbolInfo:
        base, quote = self.base(s), self.quote(s)
        top_price, top_qty, top_quote = (limit[2] for limit in self.limits[s.id].values())
        filters = [S.PriceFilter(format_decimal(1, s.price_decimals), top_price, format_decimal(1, s.price_decimals)),
                   S.LotSize(format_decimal(1, base.decimals), top_qty, format_decimal(1, base.decimals)),
                   S.Notional(format_decimal(1, quote.decimals), False, top_quote, False, 0)]
        return S.SymbolInfo(
            name, "TRADING", base.name, base.decimals, quote.name, quote.decimals, quote.decimals, base.decimals,
            quote.decimals, list(ORDER_TYPES), False, False, False, True, False, False, False, True, False, filters,
            ["SPOT"], [["SPOT"]], self.stp(s), [self.stp(s)])

    # -- general and market data ------------------------------------------------------------
    async def ping(self, r: Req) -> dict:
        r.params.done()
        return {}

    async def time(self, r: Req) -> S.ServerTime:
        r.params.done()
        return S.ServerTime(r.now_ms)

    async def exchange_info(self, r: Req) -> S.ExchangeInfo:
        symbols, _ = self.symbol_list(r.params)
        r.params.done()
        # No request-weight or order-rate limit is enforced here, so none is advertised.
        return S.ExchangeInfo("UTC", r.now_ms, [], [], [self.infos[self.binance_name(s)] for s in symbols])

    async def depth(self, r: Req) -> S.Depth:
        p = r.params
        s = self.symbol(p)
        limit = min(p.integer("limit", low=1, default=100), DEPTH_MAX)
        p.done()
        book = self.market().depth(s.id, limit)
        return S.Depth(book.last_update_id, [(self.price(px, s), self.qty(q, s)) for px, q in book.bids],
                       [(self.price(px, s), self.qty(q, s)) for px, q in book.asks])

    async def trades(self, r: Req) -> list[S.PublicTrade]:
        p = r.params
        s = self.symbol(p)
        limit = p.integer("limit", low=1, high=1000, default=500)
        p.done()
        return [S.PublicTrade(t.trade_id, self.price(t.price, s), self.qty(t.qty, s), self.quote_amount(t.quote_qty, s),
                              t.time_ms, t.buyer_is_maker, True) for t in self.market().trades(s.id, limit)]

    async def agg_trades(self, r: Req) -> list[S.AggTrade]:
        p = r.params
        s = self.symbol(p)
        from_id = p.integer("fromId")
        start, end = p.integer("startTime"), p.integer("endTime")
        limit = p.integer("limit", low=1, high=1000, default=500)
        p.done()
        filtered = from_id is not None or start is not None or end is not None
        rows = [t for t in self.market().trades(s.id, SCAN_ROWS if filtered else limit)
                if (from_id is None or t.trade_id >= from_id) and (start is None or t.time_ms >= start)
                and (end is None or t.time_ms <= end)]
        return [S.AggTrade(t.trade_id, self.price(t.price, s), self.qty(t.qty, s), t.trade_id, t.trade_id, t.time_ms,
                           t.buyer_is_maker, True)
                for t in _pick(rows, from_id is not None or start is not None, limit)]

    async def klines(self, r: Req) -> list[tuple]:
        p = r.params
        s = self.symbol(p)
        interval = p.need("interval")
        if interval not in INTERVALS_MS:
            raise BinanceError(E.BAD_INTERVAL, f"Invalid interval: {interval[:20]!r} is not one of "
                                               f"{', '.join(INTERVALS_MS)}.")
        start, end = p.integer("startTime"), p.integer("endTime")
        limit = p.integer("limit", low=1, high=1000, default=500)
        p.done()
        return [(k.open_time_ms, self.price(k.open, s), self.price(k.high, s), self.price(k.low, s),
                 self.price(k.close, s), self.qty(k.volume, s), k.close_time_ms, self.quote_amount(k.quote_volume, s),
                 k.trades, self.qty(k.taker_buy_volume, s), self.quote_amount(k.taker_buy_quote_volume, s), "0")
                for k in self.market().klines(s.id, interval, start, end, limit)]

    async def ticker_24hr(self, r: Req):
        p = r.params
        symbols, one = self.symbol_list(p)
        kind = p.choice("type", ("FULL", "MINI"), E.INVALID_TICKER_TYPE, default="FULL")
        p.done()
        market = self.market()
        out = [self.ticker_view(s, market.ticker(s.id, r.now_ms), kind == "MINI") for s in symbols]
        return out[0] if one else out

    def ticker_view(self, s, t, mini: bool):
        name = self.binance_name(s)
        if mini:
            return S.MiniTicker(name, self.price(t.open, s), self.price(t.high, s), self.price(t.low, s),
                                self.price(t.last, s), self.qty(t.volume, s), self.quote_amount(t.quote_volume, s),
                                t.open_time_ms, t.close_time_ms, t.first_trade_id, t.last_trade_id, t.trades)
        change = t.last - t.open
        # The change in thousandths of a percent, truncated toward zero like every answer here.
        change_milli_pct = abs(change) * 100_000 // t.open if t.open else 0
        change_pct = format_decimal(-change_milli_pct if change < 0 else change_milli_pct, 3)
        base, quote = self.base(s), self.quote(s)
        average = mean_price(t.quote_volume, t.volume, s.price_decimals, base.decimals, quote.decimals)
        # prevClosePrice: the price before the window is not kept; the window's first trade stands for it.
        return S.Ticker24h(name, self.price(change, s), change_pct, self.price(average, s), self.price(t.open, s),
                           self.price(t.last, s), self.qty(t.last_qty, s), self.price(t.bid_price, s),
                           self.qty(t.bid_qty, s), self.price(t.ask_price, s), self.qty(t.ask_qty, s),
                           self.price(t.open, s), self.price(t.high, s), self.price(t.low, s), self.qty(t.volume, s),
                           self.quote_amount(t.quote_volume, s), t.open_time_ms, t.close_time_ms, t.first_trade_id,
                           t.last_trade_id, t.trades)

    async def ticker_price(self, r: Req):
        symbols, one = self.symbol_list(r.params)
        r.params.done()
        market = self.market()
        out = []
        for s in symbols:
            last = market.trades(s.id, 1)
            out.append(S.PriceTicker(self.binance_name(s), self.price(last[-1].price if last else 0, s)))
        return out[0] if one else out

    async def book_ticker(self, r: Req):
        symbols, one = self.symbol_list(r.params)
        r.params.done()
        market = self.market()
        out = []
        for s in symbols:
            bid, bid_qty, ask, ask_qty = market.best(s.id)
            out.append(S.BookTicker(self.binance_name(s), self.price(bid, s), self.qty(bid_qty, s),
                                    self.price(ask, s), self.qty(ask_qty, s)))
        return out[0] if one else out

    # -- orders ---------------------------------------------------------------------------------
    @staticmethod
    def client_order_id(p: Params, name: str) -> str | None:
        cid = p.get(name)
        if cid is not None and not CLIENT_ORDER_ID_RE.match(cid):
            raise BinanceError(E.ILLEGAL_CHARS, f"Illegal characters found in parameter '{name}': {cid[:40]!r}; "
                                                "legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.")
        return cid

    def new_order(self, p: Params) -> NewOrder:
        """POST order's and order/test's parameters, every check made; nothing is sent."""
        s = self.symbol(p)
        side = p.choice("side", ("BUY", "SELL"), E.INVALID_SIDE, required=True)
        order_type = p.need("type")
        if order_type not in ORDER_TYPES:
            raise BinanceError(E.INVALID_ORDER_TYPE, f"Invalid orderType: {order_type[:20]!r} is not supported; "
                                                     f"this exchange takes {' and '.join(ORDER_TYPES)}.")
        tif = p.get("timeInForce")
        if tif is not None and tif not in TIMES_IN_FORCE:
            raise BinanceError(E.INVALID_TIF, f"Invalid timeInForce: {tif[:20]!r} is not supported; this exchange "
                                              f"takes {' and '.join(TIMES_IN_FORCE)}.")
        price, qty, quote_qty = (p.units(name, *limit) for name, limit in self.limits[s.id].items())
        cid = self.client_order_id(p, "newClientOrderId")
        response_type = p.choice("newOrderRespType", RESPONSE_TYPES, default="FULL")
        p.done()
        if order_type == "LIMIT":
            self.required(timeInForce=tif, price=price, quantity=qty)
            self.not_required(quoteOrderQty=quote_qty)
            if _cost(price, qty, s, self.base(s), self.quote(s)) == 0:
                raise BinanceError(E.INVALID_MESSAGE, f"Filter failure: NOTIONAL: price * quantity is below the "
                                                      f"minimum {format_decimal(1, self.quote(s).decimals)} "
                                                      f"{self.quote(s).name}.")
        else:
            if tif is not None:
                raise BinanceError(E.TIF_NOT_REQUIRED, "TimeInForce parameter sent when not required: a MARKET "
                                                       "order takes none.")
            self.not_required(price=price)
            if qty is None and quote_qty is None:
                raise BinanceError(E.MANDATORY_PARAM, "Param 'quantity' or 'quoteOrderQty' must be sent, but both "
                                                      "were empty/null!")
            if qty is not None and quote_qty is not None:
                raise BinanceError(E.BAD_COMBO, "Combination of optional parameters invalid: a MARKET order takes "
                                                "'quantity' or 'quoteOrderQty', not both.")
            if side == "SELL" and quote_qty is not None:
                raise BinanceError(E.UNSUPPORTED_COMBINATION, "Unsupported order combination: a MARKET SELL by "
                                                              "quoteOrderQty is not supported here; send quantity.")
            if side == "BUY" and qty is not None:
                quote_qty = self.market_buy_budget(s, qty)
        return NewOrder(s, side, order_type, tif or "GTC", price or 0, qty or 0, quote_qty or 0,
                        cid or secrets.token_urlsafe(16), response_type)    # Binance makes a cid when none is sent

    @staticmethod
    def required(**values) -> None:
        for name, value in values.items():
            if value is None:
                raise BinanceError(E.MANDATORY_PARAM, f"Mandatory parameter '{name}' was not sent, was empty/null, "
                                                      "or malformed.")

    @staticmethod
    def not_required(**values) -> None:
        for name, value in values.items():
            if value is not None:
                raise BinanceError(E.PARAM_NOT_REQUIRED, f"Parameter '{name}' sent when not required.")

    def market_buy_budget(self, s, qty: int) -> int:
        """What `qty` costs on the ask side of the book now, in quote units."""
        budget, need = 0, qty
        base, quote = self.base(s), self.quote(s)
        for price, level_qty in self.market().depth(s.id, DEPTH_MAX).asks:
            take = min(need, level_qty)
            budget += _cost(price, take, s, base, quote)
            need -= take
            if not need:
                break
        if budget == 0:
            raise BinanceError(E.NEW_ORDER_REJECTED, f"Order book liquidity is less than symbol minimum quantity: "
                                                     f"the {self.binance_name(s)} asks offer nothing to buy "
                                                     f"{self.qty(qty, s)} from; send quoteOrderQty or a LIMIT order.")
        return budget

    async def place_order(self, r: Req) -> S.NewOrder:
        o = self.new_order(r.params)
        s = o.symbol
        result = await self.exchange.place(r.key.user_id, s.id, o.side, o.order_type, o.time_in_force, o.price,
                                           o.qty, o.quote_qty, o.cid)
        if result.status == REJECTED:
            if result.reason_code == R_INSUFFICIENT_BALANCE:     # CCXT's InsufficientFunds is this text exactly
                msg = "Account has insufficient balance for requested action."
            elif result.reason_code == R_DUPLICATE_CID:
                msg = f"Duplicate order sent: newClientOrderId {o.cid!r} is in use by an open order of this account."
            else:
                msg = f"New order rejected: {result.reason}."
            raise BinanceError(E.NEW_ORDER_REJECTED, msg)
        out = S.NewOrder(self.binance_name(s), result.order_id, -1, o.cid, result.accepted_at)
        if o.response_type == "ACK":
            return out
        out.price = self.price(o.price, s)
        out.origQty = self.qty(o.qty or result.filled_qty, s)     # a buy by quoteOrderQty: what it bought
        out.executedQty = self.qty(result.filled_qty, s)
        out.origQuoteOrderQty = self.quote_amount(o.quote_qty, s)
        out.cummulativeQuoteQty = self.quote_amount(sum(f.quote_qty for f in result.fills), s)
        out.status, out.timeInForce, out.type, out.side = result.status, o.time_in_force, o.order_type, o.side
        out.workingTime = result.accepted_at
        out.selfTradePreventionMode = self.stp(s)
        if o.response_type == "FULL":
            out.fills = [S.Fill(self.price(f.price, s), self.qty(f.qty, s), self.amount(f.fee, f.fee_asset_id),
                                self.assets[f.fee_asset_id].name, f.trade_id) for f in result.fills]
        return out

    async def test_order(self, r: Req) -> dict:
        """POST order/test: every check of POST order, and nothing sent."""
        self.new_order(r.params)
        return {}

    def find_order(self, p: Params, user_id: int, s):
        """The user's order on `s` named by orderId or origClientOrderId (both: they must agree), or None."""
        order_id = p.integer("orderId", low=1)
        cid = p.get("origClientOrderId")
        if order_id is None and cid is None:
            raise BinanceError(E.MANDATORY_PARAM, "Param 'orderId' or 'origClientOrderId' must be sent, but both "
                                                  "were empty/null!")
        o = self.exchange.order(user_id, order_id) if order_id is not None else \
            self.exchange.order_by_cid(user_id, cid)
        if o is None or o.user_id != user_id or o.symbol_id != s.id or (cid is not None and o.cid != cid):
            return None
        return o

    @staticmethod
    def order_key(p: Params) -> str:
        return f"orderId {p.values['orderId']}" if "orderId" in p.values else \
            f"origClientOrderId {p.values.get('origClientOrderId')!r}"

    def order_view(self, o) -> S.Order:
        s = self.symbols[o.symbol_id]
        return S.Order(self.name(o.symbol_id), o.order_id, -1, o.cid or "", self.price(o.price, s),
                       self.qty(o.qty or o.filled_qty, s), self.qty(o.filled_qty, s),
                       self.quote_amount(o.filled_quote, s), o.status, o.time_in_force, o.order_type, o.side,
                       self.price(0, s), self.qty(0, s), o.created_at, o.updated_at, True, o.created_at,
                       self.quote_amount(o.quote_qty, s), self.stp(s))

    async def get_order(self, r: Req) -> S.Order:
        p = r.params
        s = self.symbol(p)
        o = self.find_order(p, r.key.user_id, s)
        p.done()
        if o is None:
            raise BinanceError(E.NO_SUCH_ORDER, f"Order does not exist: no order with {self.order_key(p)} on "
                                                f"{self.binance_name(s)} for this account.")
        return self.order_view(o)

    async def cancel_order(self, r: Req) -> S.Canceled:
        p, user_id = r.params, r.key.user_id
        s = self.symbol(p)
        o = self.find_order(p, user_id, s)
        cancel_id = self.client_order_id(p, "newClientOrderId")
        p.done()
        if o is None or o.status not in OPEN:
            why = "no order" if o is None else f"the order is {o.status}, not open:"
            raise BinanceError(E.CANCEL_REJECTED, f"Unknown order sent: {why} {self.order_key(p)} on "
                                                  f"{self.binance_name(s)}.")
        result = await self.exchange.cancel(user_id, o.order_id)
        if result.status == REJECTED:
            raise BinanceError(E.CANCEL_REJECTED, "Unknown order sent." if result.reason_code == R_ORDER_NOT_FOUND
                               else f"{result.reason}.")
        o = self.exchange.order(user_id, o.order_id) or o._replace(status=result.status)
        v = self.order_view(o)
        return S.Canceled(v.symbol, v.clientOrderId, v.orderId, -1, cancel_id or secrets.token_urlsafe(16),
                          result.accepted_at, v.price, v.origQty, v.executedQty, v.cummulativeQuoteQty,
                          v.origQuoteOrderQty, v.status, v.timeInForce, v.type, v.side, v.selfTradePreventionMode)

    async def open_orders(self, r: Req) -> list[S.Order]:
        s = self.symbol(r.params, required=False)
        r.params.done()
        orders = self.exchange.orders(r.key.user_id, None if s is None else s.id, True, OPEN_ORDERS_MAX)
        return [self.order_view(o) for o in reversed(orders)]

    async def all_orders(self, r: Req) -> list[S.Order]:
        p = r.params
        s = self.symbol(p)
        from_id, start, end = p.integer("orderId", low=1), p.integer("startTime"), p.integer("endTime")
        limit = p.integer("limit", low=1, high=1000, default=500)
        p.done()
        filtered = from_id is not None or start is not None or end is not None
        rows = [o for o in reversed(self.exchange.orders(r.key.user_id, s.id, False, SCAN_ROWS if filtered else limit))
                if (from_id is None or o.order_id >= from_id) and (start is None or o.created_at >= start)
                and (end is None or o.created_at <= end)]
        return [self.order_view(o) for o in _pick(rows, from_id is not None or start is not None, limit)]

    async def my_trades(self, r: Req) -> list[S.MyTrade]:
        p = r.params
        s = self.symbol(p)
        order_id, from_id = p.integer("orderId", low=1), p.integer("fromId")
        start, end = p.integer("startTime"), p.integer("endTime")
        limit = p.integer("limit", low=1, high=1000, default=500)
        p.done()
        if from_id is not None and (start is not None or end is not None):
            raise BinanceError(E.BAD_COMBO, "Combination of optional parameters invalid: fromId cannot be sent "
                                            "with startTime or endTime.")
        filtered = order_id is not None or from_id is not None or start is not None or end is not None
        rows = [t for t in reversed(self.exchange.trades(r.key.user_id, s.id, SCAN_ROWS if filtered else limit))
                if (order_id is None or t.order_id == order_id) and (from_id is None or t.trade_id >= from_id)
                and (start is None or t.created_at >= start) and (end is None or t.created_at <= end)]
        name = self.binance_name(s)
        return [S.MyTrade(name, t.trade_id, t.order_id, -1, self.price(t.price, s), self.qty(t.qty, s),
                          self.quote_amount(t.quote_qty, s), self.amount(t.fee, t.fee_asset_id),
                          self.assets[t.fee_asset_id].name, t.created_at, t.side == "BUY", t.role == "MAKER", True)
                for t in _pick(rows, from_id is not None or start is not None, limit)]

    async def account(self, r: Req) -> S.Account:
        p = r.params
        omit_zero = p.choice("omitZeroBalances", ("true", "false"), default="false") == "true"
        p.done()
        held = {b.asset_id: b for b in self.exchange.balances(r.key.user_id)}
        balances = []
        for a in self.assets.values():
            b = held.get(a.id)
            free, locked = (b.avail, b.frozen) if b is not None else (0, 0)
            if free or locked or not omit_zero:
                balances.append(S.Balance(a.name, self.amount(free, a.id), self.amount(locked, a.id)))
        # One rate for the account, as Binance has: the highest of the symbols' (a bound for every symbol).
        maker_ppm = max((s.maker_fee_ppm for s in self.symbols.values()), default=0)
        taker_ppm = max((s.taker_fee_ppm for s in self.symbols.values()), default=0)
        rates = S.CommissionRates(format_decimal(maker_ppm, 6, 8), format_decimal(taker_ppm, 6, 8),
                                  format_decimal(0, 0, 8), format_decimal(0, 0, 8))
        # canWithdraw, canDeposit: this API offers neither; deposits and withdrawals are the operator's.
        return S.Account(maker_ppm // 100, taker_ppm // 100, 0, 0, rates, bool(r.key.permissions & TRADE), False,
                         False, False, False, False, r.now_ms, "SPOT", balances, ["SPOT"], r.key.user_id)


def routes(h: Handlers) -> dict[str, dict[str, Route]]:
    """path -> method -> Route: the dispatch table of gateway/binance/app.py."""
    v3 = "/api/v3"
    table = {
        "ping": {"GET": Route(h.ping, 0)},
        "time": {"GET": Route(h.time, 0)},
        "exchangeInfo": {"GET": Route(h.exchange_info, 0)},
        "depth": {"GET": Route(h.depth, 0)},
        "trades": {"GET": Route(h.trades, 0)},
        "aggTrades": {"GET": Route(h.agg_trades, 0)},
        "klines": {"GET": Route(h.klines, 0)},
        "ticker/24hr": {"GET": Route(h.ticker_24hr, 0)},
        "ticker/price": {"GET": Route(h.ticker_price, 0)},
        "ticker/bookTicker": {"GET": Route(h.book_ticker, 0)},
        "order": {"POST": Route(h.place_order, TRADE), "DELETE": Route(h.cancel_order, TRADE),
                  "GET": Route(h.get_order, READ)},
        "order/test": {"POST": Route(h.test_order, TRADE)},
        "openOrders": {"GET": Route(h.open_orders, READ)},
        "allOrders": {"GET": Route(h.all_orders, READ)},
        "myTrades": {"GET": Route(h.my_trades, READ)},
        "account": {"GET": Route(h.account, READ)},
    }
    return {f"{v3}/{path}": methods for path, methods in table.items()}
