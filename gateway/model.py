"""What the HTTP layer asks of the exchange behind it, and what it gets back.

`Exchange` is the one interface between the routes (gateway/routes.py) and the
pipeline (gateway/link.py: the command ring into UBSCore, the acknowledgements
from settlement, the order store settlement keeps). Every amount, price and
quantity here is an integer count of its asset's smallest unit (a price: of
the quote asset per whole base unit, at the symbol's price_decimals); the HTTP
layer parses and formats decimal strings at the edge (engine/money.py).
"""
from __future__ import annotations

from typing import NamedTuple, Protocol

from ..config import Asset, Symbol

# Order statuses as the API names them (spec/API.md section 1).
NEW, PARTIALLY_FILLED, FILLED, CANCELED, REJECTED, EXPIRED = (
    "NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "REJECTED", "EXPIRED")


def cost(price: int, qty: int, price_decimals: int, base_decimals: int, quote_decimals: int) -> int:
    """Quote units of qty at price, floored: p * q * 10**(quote - price - base decimals)
    (spec/TRADING_RULES.md section 1)."""
    return price * qty * 10**quote_decimals // 10**(price_decimals + base_decimals)


def mean_price(quote_units: int, qty: int, price_decimals: int, base_decimals: int, quote_decimals: int) -> int:
    """The price of qty for quote_units: cost's inverse, truncated (0 without a qty)."""
    return quote_units * 10**(price_decimals + base_decimals) // (qty * 10**quote_decimals) if qty else 0


class Fill(NamedTuple):
    trade_id: int
    price: int
    qty: int
    quote_qty: int
    fee: int            # in fee_asset_id's units
    fee_asset_id: int
    role: str           # "MAKER" | "TAKER"


class Result(NamedTuple):
    """A command's outcome, known once its WAL record is durable and the ME has run it."""
    seq: int
    order_id: int           # the order the command placed or named (0 for deposit/withdraw)
    status: str             # the order's status after the command (REJECTED: the command was refused)
    reason: str             # why it was refused ("" otherwise), engine/records.py REASON_TEXT
    reason_code: int        # engine/records.py R_*
    accepted_at: int        # ms, when the gateway took it
    filled_qty: int = 0
    fills: tuple = ()       # Fill, the immediate fills of this command
    avail: int = 0          # deposit/withdraw: the balance after
    frozen: int = 0


class Order(NamedTuple):
    order_id: int
    user_id: int
    symbol_id: int
    side: str               # "BUY" | "SELL"
    order_type: str         # "LIMIT" | "MARKET"
    time_in_force: str      # "GTC" | "IOC"
    price: int              # 0 for MARKET
    qty: int                # as it stands now (a reduce lowers it); 0: a market buy by quote_qty only
    quote_qty: int          # a market buy's quote budget (0 otherwise)
    filled_qty: int
    filled_quote: int       # sum of the fills' quote_qty
    status: str
    cid: str | None
    created_at: int         # ms
    updated_at: int         # ms
    seq: int                # the seq that placed it


class Trade(NamedTuple):
    trade_id: int
    order_id: int
    user_id: int
    symbol_id: int
    side: str
    price: int
    qty: int
    quote_qty: int
    fee: int
    fee_asset_id: int
    role: str
    created_at: int
    seq: int


class Balance(NamedTuple):
    asset_id: int
    avail: int
    frozen: int


class Exchange(Protocol):
    assets: list[Asset]
    symbols: list[Symbol]

    def ready(self) -> bool: ...
    def now_ms(self) -> int: ...

    # Commands: each returns once the command is durable and its result known.
    async def place(self, user_id: int, symbol_id: int, side: str, order_type: str, time_in_force: str,
                    price: int, qty: int, quote_qty: int, cid: str | None) -> Result: ...
    async def cancel(self, user_id: int, order_id: int) -> Result: ...
    async def reduce(self, user_id: int, order_id: int, reduce_qty: int) -> Result: ...
    async def move(self, user_id: int, order_id: int, new_price: int) -> Result: ...
    async def deposit(self, user_id: int, asset_id: int, amount: int) -> Result: ...
    async def withdraw(self, user_id: int, asset_id: int, amount: int) -> Result: ...

    # Reads: what every acknowledged command has made so (read your writes).
    def order(self, user_id: int, order_id: int) -> Order | None: ...
    def order_by_cid(self, user_id: int, cid: str) -> Order | None: ...
    def orders(self, user_id: int, symbol_id: int | None, open_only: bool, limit: int) -> list[Order]: ...
    def trades(self, user_id: int, symbol_id: int | None, limit: int) -> list[Trade]: ...
    def balances(self, user_id: int) -> list[Balance]: ...
