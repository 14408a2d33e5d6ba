"""The REST shapes of spec/API.md section 1, as msgspec Structs.

Every request body, query string and response `data` is a Struct here; the
router (gateway/http.py) decodes bodies with them, the OpenAPI document is
generated from them, and the handlers (gateway/routes.py) build them. Field
names are API.md's: snake_case, `cid` for the client order id, enums in
SCREAMING_CASE, times in ms.

Invariants:
- Requests forbid unknown fields: a misspelt field is a 400 naming it, never a
  silently ignored option.
- Amounts, prices and quantities travel as decimal strings both ways. A JSON
  number where a decimal is expected is refused by the decoder (code 1001): a
  float cannot carry an exact amount. Parsing the text into integer units
  (engine/money.py) happens in the handler, which knows the asset's decimals.
- Fees of a symbol are shown in basis points as a decimal string with two
  decimals: the config's parts per million divided by 100, exactly
  (1000 ppm -> "10.00"; 1 ppm -> "0.01").

Error codes of the envelope `{code, msg}` (HTTP status in brackets):
    1001 invalid parameter [400]          1002 insufficient balance [400]
    1003 invalid price/qty/amount [400]   1005 username or email taken [409]
    2001 missing authentication [401]     2002 authentication failed [401]
    2003 unknown or revoked api key [401] 2004 ts_nonce outside the window [401]
    2005 ts_nonce not increasing [401]    2006 permission denied [403]
    4001 order not found [404]            4002 api key not found [404]
    4004 no such route [404]              4005 method not allowed [405]
    4013 body too large [413]             4015 body not application/json [415]
    5000 internal error [500]             5001 unavailable / outcome unknown [503]
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

# -- codes -------------------------------------------------------------------
OK = 0
INVALID_PARAMETER = 1001
INSUFFICIENT_BALANCE = 1002
INVALID_AMOUNT = 1003           # spec: "invalid price/qty"; every decimal field
TAKEN = 1005
MISSING_AUTH = 2001
AUTH_FAILED = 2002
UNKNOWN_KEY = 2003
STALE_NONCE = 2004              # outside |now - ts_nonce| <= window
REPLAYED_NONCE = 2005           # not above the key's last accepted ts_nonce
PERMISSION_DENIED = 2006
ORDER_NOT_FOUND = 4001
API_KEY_NOT_FOUND = 4002
NO_ROUTE = 4004
METHOD_NOT_ALLOWED = 4005
BODY_TOO_LARGE = 4013
UNSUPPORTED_MEDIA_TYPE = 4015
INTERNAL = 5000
UNAVAILABLE = 5001


def http_status_of(code: int) -> int:
    """The HTTP status that goes with an envelope code (the table above)."""
    if code in _STATUS:
        return _STATUS[code]
    if 2000 <= code < 3000:
        return 401
    if code >= 5000:
        return 500
    return 400


_STATUS = {TAKEN: 409, PERMISSION_DENIED: 403, ORDER_NOT_FOUND: 404, API_KEY_NOT_FOUND: 404, NO_ROUTE: 404,
           METHOD_NOT_ALLOWED: 405, BODY_TOO_LARGE: 413, UNSUPPORTED_MEDIA_TYPE: 415, UNAVAILABLE: 503}


class ApiError(Exception):
    """A refusal answered as `{code, msg}` with `status`; raised by the router, the
    authenticator and the handlers, caught once in gateway/http.py."""

    def __init__(self, code: int, msg: str, status: int | None = None):
        super().__init__(code, msg)
        self.code = code
        self.msg = msg
        self.status = http_status_of(code) if status is None else status
        self.allow: list[str] = []          # a 405's Allow header


# -- value types ---------------------------------------------------------------
Decimal = Annotated[str, Meta(max_length=64, description="a decimal string: digits and at most one '.'",
                              examples=["0.5"])]
Cid = Annotated[str, Meta(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9_.:-]+$",
                          description="client order id")]
OrderId = Annotated[int, Meta(ge=1, le=2**63 - 1)]
UserId = Annotated[int, Meta(ge=0, lt=2**31)]
Limit1000 = Annotated[int, Meta(ge=1, le=1000)]
Side = Literal["BUY", "SELL"]
OrderType = Literal["LIMIT", "MARKET"]
TimeInForce = Literal["GTC", "IOC"]
Role = Literal["MAKER", "TAKER"]
KeyKind = Literal["ed25519", "hmac"]


class Request(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Base of every request body and query string."""


# -- request bodies --------------------------------------------------------------
class PlaceOrder(Request):
    """LIMIT: price and qty. MARKET SELL: qty. MARKET BUY: quote_qty (the budget),
    and qty as an optional cap; a market buy by qty alone needs a protection
    price (TRADING_RULES.md section 3) and is refused until the gateway has one."""
    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce = "GTC"
    price: Decimal | None = None
    qty: Decimal | None = None
    quote_qty: Decimal | None = None
    cid: Cid | None = None


class CancelOrder(Request):
    order_id: OrderId


class ReduceOrder(Request):
    order_id: OrderId
    reduce_qty: Decimal


class MoveOrder(Request):
    order_id: OrderId
    new_price: Decimal


class Register(Request):
    username: Annotated[str, Meta(max_length=64)]
    email: Annotated[str, Meta(max_length=254)]
    password: Annotated[str, Meta(max_length=1024)]


class Login(Request):
    email: Annotated[str, Meta(max_length=254, description="the email or the username")]
    password: Annotated[str, Meta(max_length=1024)]


class NewApiKey(Request):
    """`permissions`: names among read, trade, withdraw, transfer (default read and
    trade); an admin key is the operator's to make, never through this route.
    `kind`: ed25519 (the default) or hmac (ours: API.md names only Ed25519)."""
    label: Annotated[str, Meta(max_length=64)] = ""
    permissions: list[str] | None = None
    kind: KeyKind = "ed25519"


class AdminTransfer(Request):
    user_id: UserId
    asset: str
    amount: Decimal


# -- query strings -----------------------------------------------------------------
class OrdersQuery(Request):
    """`status` open: the open orders only; absent or all: every order, closed
    ones included; newest first, at most `limit`."""
    symbol: str | None = None
    status: Literal["open", "all"] | None = None
    limit: Limit1000 = 10


class TradesQuery(Request):
    symbol: str | None = None
    limit: Limit1000 = 100


class BalanceQuery(Request):
    """Exactly one of asset (its name) and asset_id."""
    asset: str | None = None
    asset_id: int | None = None


# -- response data -------------------------------------------------------------------
class Fill(msgspec.Struct):
    trade_id: int
    price: str
    qty: str
    fee: str
    fee_asset: str
    role: Role


class OrderAck(msgspec.Struct):
    """Answered once the command is durable and the matching engine has run it."""
    order_id: int
    cid: str | None
    seq: int
    order_status: str
    accepted_at: int
    filled_qty: str
    fills: list[Fill]


class CancelAck(msgspec.Struct):
    order_id: int
    order_status: str
    accepted_at: int


class OrderView(msgspec.Struct):
    """`avg_price`: the filled quote over the filled qty, truncated; null before a fill."""
    order_id: int
    user_id: int
    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    price: str
    qty: str
    filled_qty: str
    avg_price: str | None
    status: str
    cid: str | None
    created_at: int
    updated_at: int


class TradeView(msgspec.Struct):
    trade_id: int
    order_id: int
    user_id: int
    symbol: str
    side: Side
    price: str
    qty: str
    quote_qty: str
    fee: str
    fee_asset: str
    role: Role
    created_at: int


class BalanceView(msgspec.Struct):
    user_id: int
    asset: str
    asset_id: int
    avail: str
    frozen: str


class AccountBalance(msgspec.Struct):
    asset_id: int
    asset: str
    account_type: Literal["spot"]
    available: str
    frozen: str


class AssetView(msgspec.Struct):
    """`decimals`: the digits an amount of it may have in a request;
    `display_decimals`: the digits answers show (truncated)."""
    asset_id: int
    asset: str
    name: str
    decimals: int
    display_decimals: int
    can_deposit: bool
    can_withdraw: bool
    can_trade: bool


class SymbolView(msgspec.Struct):
    """Fees in basis points, a decimal string with two decimals (ppm / 100)."""
    symbol_id: int
    symbol: str
    base_asset: str
    quote_asset: str
    price_decimals: int
    qty_decimals: int
    is_tradable: bool
    is_visible: bool
    base_maker_fee: str
    base_taker_fee: str


class ExchangeInfo(msgspec.Struct):
    assets: list[AssetView]
    symbols: list[SymbolView]
    server_time: int


class Health(msgspec.Struct):
    timestamp_ms: int


class AdminTransferAck(msgspec.Struct):
    user_id: int
    asset: str
    seq: int
    avail: str
    frozen: str


class Registered(msgspec.Struct):
    user_id: int


class LoggedIn(msgspec.Struct):
    """`email` is null for a user the operator made without one."""
    token: str
    user_id: int
    username: str
    email: str | None


class ApiKeyCreated(msgspec.Struct):
    """`api_secret` is shown this once: the Ed25519 seed in hex (sign with it), or
    the HMAC secret in hex."""
    api_key: str
    api_secret: str
    kind: KeyKind
    permissions: list[str]


class ApiKeyView(msgspec.Struct):
    api_key: str
    kind: KeyKind
    permissions: list[str]
    label: str
    created_at: int
    revoked_at: int | None


class ApiKeyRevoked(msgspec.Struct):
    api_key: str
    revoked_at: int


# -- envelopes ---------------------------------------------------------------------------
class Envelope(msgspec.Struct):
    code: int
    msg: str
    data: Any


class ErrorEnvelope(msgspec.Struct):
    code: int
    msg: str
