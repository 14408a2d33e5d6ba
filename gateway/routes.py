"""The routes of spec/API.md section 1: the route table and its handlers.

Each handler turns decoded Structs (gateway/api.py) into an `Exchange` call
(gateway/model.py) or an account store call, and the result back into a
Struct. Decimal strings become integer units here, with the decimals of what
they measure: a price with the symbol's price_decimals, qty/reduce_qty with the
base asset's decimals, quote_qty with the quote asset's, an amount with its
asset's. Answers are truncated to the display decimals (engine/money.py).

Rules the handlers hold:
- An unknown symbol or asset is 400 (1001) naming it, never an empty answer.
- A decimal that does not parse, has too many fractional digits, overflows
  2**63 units, or is zero is 400 (1003) naming the field; nothing is sent.
- An order of another user does not exist: reading, cancelling, reducing or
  moving it is 404 (4001), decided from the order store before any command is
  sent (and the engine refuses it as well, TRADING_RULES.md section 3).
- A command the engine refuses is answered with its reason as the message,
  HTTP 400 or 404, the code by `REJECT_CODES`:
      R_INSUFFICIENT_BALANCE -> 1002 [400]
      R_INVALID_PRICE, R_INVALID_QUANTITY -> 1003 [400]
      R_ORDER_NOT_FOUND -> 4001 [404]
      any other reason -> 1001 [400]
- The exchange raises TimeoutError when a command is not acknowledged within
  gateway.ack_timeout_s: gateway/http.py answers 503 (5001, outcome unknown).
- Users make keys with read, trade, withdraw and transfer; an admin key only
  comes from the operator (xinf's account commands), never from this API.
"""
from __future__ import annotations

from typing import Callable

# The accounts package (branch `accounts`): without it the gateway cannot run,
# and this import fails naming the missing module.
from ..accounts.permissions import ADMIN, READ, TRADE, parse_permissions, permission_names
from ..engine.money import format_decimal, parse_decimal
from ..engine.records import R_INSUFFICIENT_BALANCE, R_INVALID_PRICE, R_INVALID_QUANTITY, R_ORDER_NOT_FOUND
from . import api
from .api import ApiError
from .http import Call, Route
from .model import REJECTED, Exchange, mean_price

REJECT_CODES = {R_INSUFFICIENT_BALANCE: api.INSUFFICIENT_BALANCE, R_INVALID_PRICE: api.INVALID_AMOUNT,
                R_INVALID_QUANTITY: api.INVALID_AMOUNT, R_ORDER_NOT_FOUND: api.ORDER_NOT_FOUND}


class Handlers:
    def __init__(self, exchange: Exchange, store, tokens, now_ms: Callable[[], int]):
        self.exchange = exchange
        self.store = store
        self.tokens = tokens
        self.now_ms = now_ms
        self.assets = {a.id: a for a in exchange.assets}
        self.asset_by_name = {a.name: a for a in exchange.assets}
        self.symbols = {s.id: s for s in exchange.symbols}
        self.symbol_by_name = {s.name: s for s in exchange.symbols}
        self.asset_views = [api.AssetView(a.id, a.name, a.name, a.decimals, a.display_decimals, True, True, True)
                            for a in exchange.assets]
        self.symbol_views = [api.SymbolView(
            s.id, s.name, self.assets[s.base_asset_id].name, self.assets[s.quote_asset_id].name, s.price_decimals,
            self.assets[s.base_asset_id].decimals, True, True, format_decimal(s.maker_fee_ppm, 2),
            format_decimal(s.taker_fee_ppm, 2)) for s in exchange.symbols]

    # -- lookups, parsing, formatting ----------------------------------------------------
    def symbol(self, name: str):
        s = self.symbol_by_name.get(name)
        if s is None:
            raise ApiError(api.INVALID_PARAMETER, f"symbol {name!r} is unknown")
        return s

    def asset(self, name: str):
        a = self.asset_by_name.get(name)
        if a is None:
            raise ApiError(api.INVALID_PARAMETER, f"asset {name!r} is unknown")
        return a

    @staticmethod
    def units(text: str, decimals: int, what: str) -> int:
        try:
            units = parse_decimal(text, decimals, what)
        except ValueError as e:
            raise ApiError(api.INVALID_AMOUNT, str(e)) from None
        if units == 0:
            raise ApiError(api.INVALID_AMOUNT, f"{what} {text!r} is zero")
        return units

    def amount(self, units: int, asset_id: int) -> str:
        a = self.assets[asset_id]
        return format_decimal(units, a.decimals, a.display_decimals)

    @staticmethod
    def price(units: int, s) -> str:
        return format_decimal(units, s.price_decimals, s.price_display_decimals)

    def own_order(self, user_id: int, order_id: int):
        order = self.exchange.order(user_id, order_id)
        if order is None or order.user_id != user_id:
            raise ApiError(api.ORDER_NOT_FOUND, f"order {order_id} not found")
        return order

    @staticmethod
    def accepted(result):
        if result.status == REJECTED:
            raise ApiError(REJECT_CODES.get(result.reason_code, api.INVALID_PARAMETER),
                           result.reason or "rejected")
        return result

    def order_ack(self, result, s, cid) -> api.OrderAck:
        base = s.base_asset_id
        fills = [api.Fill(f.trade_id, self.price(f.price, s), self.amount(f.qty, base),
                          self.amount(f.fee, f.fee_asset_id), self.assets[f.fee_asset_id].name, f.role)
                 for f in result.fills]
        return api.OrderAck(result.order_id, cid, result.seq, result.status, result.accepted_at,
                            self.amount(result.filled_qty, base), fills)

    def order_view(self, o) -> api.OrderView:
        s = self.symbols[o.symbol_id]
        base, quote = self.assets[s.base_asset_id], self.assets[s.quote_asset_id]
        avg = None if not o.filled_qty else self.price(
            mean_price(o.filled_quote, o.filled_qty, s.price_decimals, base.decimals, quote.decimals), s)
        return api.OrderView(o.order_id, o.user_id, s.name, o.side, o.order_type, o.time_in_force,
                             self.price(o.price, s), self.amount(o.qty, base.id), self.amount(o.filled_qty, base.id),
                             avg, o.status, o.cid, o.created_at, o.updated_at)

    def trade_view(self, t) -> api.TradeView:
        s = self.symbols[t.symbol_id]
        return api.TradeView(t.trade_id, t.order_id, t.user_id, s.name, t.side, self.price(t.price, s),
                             self.amount(t.qty, s.base_asset_id), self.amount(t.quote_qty, s.quote_asset_id),
                             self.amount(t.fee, t.fee_asset_id), self.assets[t.fee_asset_id].name, t.role, t.created_at)

    # -- public ----------------------------------------------------------------------------
    async def health(self, call: Call) -> api.Health:
        if not self.exchange.ready():
            raise ApiError(api.UNAVAILABLE, "not ready: the pipeline is starting or recovering")
        return api.Health(self.now_ms())

    async def exchange_info(self, call: Call) -> api.ExchangeInfo:
        return api.ExchangeInfo(self.asset_views, self.symbol_views, self.now_ms())

    async def assets_list(self, call: Call) -> list[api.AssetView]:
        return self.asset_views

    async def symbols_list(self, call: Call) -> list[api.SymbolView]:
        return self.symbol_views

    # -- orders ------------------------------------------------------------------------------
    async def place_order(self, call: Call) -> api.OrderAck:
        b: api.PlaceOrder = call.body
        s = self.symbol(b.symbol)
        base, quote = self.assets[s.base_asset_id], self.assets[s.quote_asset_id]
        if b.order_type == "LIMIT":
            need, refuse = ("price", "qty"), ("quote_qty",)
        elif b.side == "SELL":
            need, refuse = ("qty",), ("price", "quote_qty")
        else:
            need, refuse = ("quote_qty",), ("price",)
        for name in need:
            if getattr(b, name) is None:
                raise ApiError(api.INVALID_PARAMETER, f"{name} is required for a {b.order_type} {b.side} order")
        for name in refuse:
            if getattr(b, name) is not None:
                raise ApiError(api.INVALID_PARAMETER, f"{name} is not taken by a {b.order_type} {b.side} order")
        price = self.units(b.price, s.price_decimals, "price") if b.price is not None else 0
        qty = self.units(b.qty, base.decimals, "qty") if b.qty is not None else 0
        quote_qty = self.units(b.quote_qty, quote.decimals, "quote_qty") if b.quote_qty is not None else 0
        result = self.accepted(await self.exchange.place(call.user_id, s.id, b.side, b.order_type,
                                                         b.time_in_force, price, qty, quote_qty, b.cid))
        return self.order_ack(result, s, b.cid)

    async def cancel_order(self, call: Call) -> api.CancelAck:
        order_id = call.body.order_id if call.body is not None else call.params["order_id"]
        self.own_order(call.user_id, order_id)
        result = self.accepted(await self.exchange.cancel(call.user_id, order_id))
        return api.CancelAck(order_id, result.status, result.accepted_at)

    async def reduce_order(self, call: Call) -> api.OrderAck:
        o = self.own_order(call.user_id, call.body.order_id)
        s = self.symbols[o.symbol_id]
        qty = self.units(call.body.reduce_qty, self.assets[s.base_asset_id].decimals, "reduce_qty")
        return self.order_ack(self.accepted(await self.exchange.reduce(call.user_id, o.order_id, qty)), s, o.cid)

    async def move_order(self, call: Call) -> api.OrderAck:
        o = self.own_order(call.user_id, call.body.order_id)
        s = self.symbols[o.symbol_id]
        price = self.units(call.body.new_price, s.price_decimals, "new_price")
        return self.order_ack(self.accepted(await self.exchange.move(call.user_id, o.order_id, price)), s, o.cid)

    async def get_order(self, call: Call) -> api.OrderView:
        return self.order_view(self.own_order(call.user_id, call.params["order_id"]))

    async def list_orders(self, call: Call) -> list[api.OrderView]:
        q: api.OrdersQuery = call.query
        symbol_id = self.symbol(q.symbol).id if q.symbol is not None else None
        orders = self.exchange.orders(call.user_id, symbol_id, q.status == "open", q.limit)
        return [self.order_view(o) for o in orders]

    async def list_trades(self, call: Call) -> list[api.TradeView]:
        q: api.TradesQuery = call.query
        symbol_id = self.symbol(q.symbol).id if q.symbol is not None else None
        return [self.trade_view(t) for t in self.exchange.trades(call.user_id, symbol_id, q.limit)]

    # -- balances ------------------------------------------------------------------------------
    async def balance(self, call: Call) -> api.BalanceView:
        q: api.BalanceQuery = call.query
        if (q.asset is None) == (q.asset_id is None):
            raise ApiError(api.INVALID_PARAMETER, "give exactly one of asset and asset_id")
        if q.asset is not None:
            a = self.asset(q.asset)
        elif q.asset_id in self.assets:
            a = self.assets[q.asset_id]
        else:
            raise ApiError(api.INVALID_PARAMETER, f"asset_id {q.asset_id} is unknown")
        b = next((b for b in self.exchange.balances(call.user_id) if b.asset_id == a.id), None)
        avail, frozen = (b.avail, b.frozen) if b is not None else (0, 0)
        return api.BalanceView(call.user_id, a.name, a.id, self.amount(avail, a.id), self.amount(frozen, a.id))

    async def all_balances(self, call: Call) -> list[api.AccountBalance]:
        held = {b.asset_id: b for b in self.exchange.balances(call.user_id)}
        out = []
        for a in self.assets.values():
            b = held.get(a.id)
            avail, frozen = (b.avail, b.frozen) if b is not None else (0, 0)
            out.append(api.AccountBalance(a.id, a.name, "spot", self.amount(avail, a.id), self.amount(frozen, a.id)))
        return out

    # -- accounts -------------------------------------------------------------------------------
    async def register(self, call: Call) -> api.Registered:
        b: api.Register = call.body
        return api.Registered(self.store.register(b.username, b.email, b.password))

    async def login(self, call: Call) -> api.LoggedIn:
        user = self.store.login(call.body.email, call.body.password)
        if user is None:
            raise ApiError(api.AUTH_FAILED, "wrong email, username or password")
        return api.LoggedIn(self.tokens.issue(user.user_id, self.now_ms() // 1000), user.user_id, user.username,
                            user.email)

    async def create_api_key(self, call: Call) -> api.ApiKeyCreated:
        b: api.NewApiKey = call.body
        mask = READ | TRADE if b.permissions is None else parse_permissions(",".join(b.permissions))
        if mask & ADMIN:
            raise ApiError(api.PERMISSION_DENIED, "an admin key is made by the operator, not through the API")
        new = self.store.create_api_key(call.user_id, b.label, mask, b.kind)
        return api.ApiKeyCreated(new.api_key, new.secret_hex, new.kind, permission_names(new.permissions))

    async def list_api_keys(self, call: Call) -> list[api.ApiKeyView]:
        return [api.ApiKeyView(k.api_key, k.kind, permission_names(k.permissions), k.label, k.created_ms,
                               k.revoked_ms or None) for k in self.store.api_keys(call.user_id)]

    async def revoke_api_key(self, call: Call) -> api.ApiKeyRevoked:
        api_key, now_ms = call.params["api_key"], self.now_ms()
        if not self.store.revoke_api_key(call.user_id, api_key, now_ms):
            raise ApiError(api.API_KEY_NOT_FOUND, f"api key {api_key} not found")
        return api.ApiKeyRevoked(api_key, now_ms)

    # -- operator ----------------------------------------------------------------------------------
    async def deposit(self, call: Call) -> api.AdminTransferAck:
        return await self._transfer(call, self.exchange.deposit)

    async def withdraw(self, call: Call) -> api.AdminTransferAck:
        return await self._transfer(call, self.exchange.withdraw)

    async def _transfer(self, call: Call, command) -> api.AdminTransferAck:
        b: api.AdminTransfer = call.body
        a = self.asset(b.asset)
        result = self.accepted(await command(b.user_id, a.id, self.units(b.amount, a.decimals, "amount")))
        return api.AdminTransferAck(b.user_id, a.name, result.seq, self.amount(result.avail, a.id),
                                    self.amount(result.frozen, a.id))


def routes(h: Handlers) -> list[Route]:
    """The route table: dispatch and the OpenAPI document both read it."""
    v1 = "/api/v1"
    pub, prv, usr = f"{v1}/public", f"{v1}/private", f"{v1}/user"
    signed = dict(auth="signed", tag="private")
    return [
        Route("GET", f"{v1}/health", h.health, response=api.Health, summary="Liveness; 503 while not ready",
              tag="public"),
        Route("GET", f"{pub}/exchange_info", h.exchange_info, response=api.ExchangeInfo,
              summary="Assets, symbols and the server time", tag="public"),
        Route("GET", f"{pub}/assets", h.assets_list, response=list[api.AssetView], summary="Assets", tag="public"),
        Route("GET", f"{pub}/symbols", h.symbols_list, response=list[api.SymbolView], summary="Symbols",
              tag="public"),
        Route("POST", f"{prv}/order", h.place_order, api.PlaceOrder, api.OrderAck, permission=TRADE,
              summary="Place an order; answered once durable, with its immediate fills", **signed),
        Route("POST", f"{prv}/cancel", h.cancel_order, api.CancelOrder, api.CancelAck, permission=TRADE,
              summary="Cancel an order", **signed),
        Route("DELETE", f"{prv}/order/{{order_id}}", h.cancel_order, None, api.CancelAck, permission=TRADE,
              summary="Cancel an order", **signed),
        Route("POST", f"{prv}/order/reduce", h.reduce_order, api.ReduceOrder, api.OrderAck, permission=TRADE,
              summary="Lower an open order's qty, keeping its place", **signed),
        Route("POST", f"{prv}/order/move", h.move_order, api.MoveOrder, api.OrderAck, permission=TRADE,
              summary="Move an open order to a new price (cancel and replace)", **signed),
        Route("GET", f"{prv}/order/{{order_id}}", h.get_order, None, api.OrderView, permission=READ,
              summary="One of the key's user's orders", **signed),
        Route("GET", f"{prv}/orders", h.list_orders, None, list[api.OrderView], permission=READ,
              query=api.OrdersQuery, summary="Orders, newest first (status=open: open ones only)", **signed),
        Route("GET", f"{prv}/trades", h.list_trades, None, list[api.TradeView], permission=READ,
              query=api.TradesQuery, summary="Trades, newest first", **signed),
        Route("GET", f"{prv}/balances", h.balance, None, api.BalanceView, permission=READ,
              query=api.BalanceQuery, summary="One asset's balance", **signed),
        Route("GET", f"{prv}/balances/all", h.all_balances, None, list[api.AccountBalance], permission=READ,
              summary="Every configured asset's balance, zeros included", **signed),
        Route("GET", f"{prv}/account", h.all_balances, None, list[api.AccountBalance], permission=READ,
              summary="Every configured asset's balance, zeros included", **signed),
        Route("POST", f"{v1}/auth/register", h.register, api.Register, api.Registered, status=201,
              summary="Register a user", tag="auth"),
        Route("POST", f"{v1}/auth/login", h.login, api.Login, api.LoggedIn,
              summary="Log in (email or username); a JWT for the /user routes", tag="auth"),
        Route("POST", f"{usr}/apikeys", h.create_api_key, api.NewApiKey, api.ApiKeyCreated, auth="jwt", status=201,
              summary="Make an api key; its secret is shown this once", tag="user"),
        Route("GET", f"{usr}/apikeys", h.list_api_keys, None, list[api.ApiKeyView], auth="jwt",
              summary="The user's api keys", tag="user"),
        Route("DELETE", f"{usr}/apikeys/{{api_key}}", h.revoke_api_key, None, api.ApiKeyRevoked, auth="jwt",
              summary="Revoke an api key", tag="user"),
        Route("POST", f"{v1}/admin/deposit", h.deposit, api.AdminTransfer, api.AdminTransferAck, auth="admin",
              permission=ADMIN, summary="Credit a user (operator key)", tag="admin"),
        Route("POST", f"{v1}/admin/withdraw", h.withdraw, api.AdminTransfer, api.AdminTransferAck, auth="admin",
              permission=ADMIN, summary="Debit a user (operator key)", tag="admin"),
    ]
