"""The JSON shapes of Binance's spot REST API that this subset answers, as msgspec Structs.

Field names and meanings are Binance's (its spot rest-api.md). Amounts,
prices and quantities are decimal strings with the full decimals of what they
measure (a qty: the base asset's, a price: the symbol's price_decimals, a quote
amount: the quote asset's), never truncated, so that a value read here is the
exact value held and matches exchangeInfo's stepSize and tickSize. Times are
ms. Fields Binance always sends but that mean nothing here carry Binance's
neutral value (orderListId -1, stopPrice 0, isBestMatch true).
"""
from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType


class Error(msgspec.Struct):
    code: int
    msg: str


class ServerTime(msgspec.Struct):
    serverTime: int


# -- exchangeInfo ----------------------------------------------------------------------
class PriceFilter(msgspec.Struct, tag_field="filterType", tag="PRICE_FILTER"):
    minPrice: str
    maxPrice: str
    tickSize: str


class LotSize(msgspec.Struct, tag_field="filterType", tag="LOT_SIZE"):
    minQty: str
    maxQty: str
    stepSize: str


class Notional(msgspec.Struct, tag_field="filterType", tag="NOTIONAL"):
    minNotional: str
    applyMinToMarket: bool
    maxNotional: str
    applyMaxToMarket: bool
    avgPriceMins: int


class SymbolInfo(msgspec.Struct):
    symbol: str
    status: str
    baseAsset: str
    baseAssetPrecision: int
    quoteAsset: str
    quotePrecision: int
    quoteAssetPrecision: int
    baseCommissionPrecision: int
    quoteCommissionPrecision: int
    orderTypes: list[str]
    icebergAllowed: bool
    ocoAllowed: bool
    otoAllowed: bool
    quoteOrderQtyMarketAllowed: bool
    allowTrailingStop: bool
    cancelReplaceAllowed: bool
    amendAllowed: bool
    isSpotTradingAllowed: bool
    isMarginTradingAllowed: bool
    filters: list[PriceFilter | LotSize | Notional]
    permissions: list[str]
    permissionSets: list[list[str]]
    defaultSelfTradePreventionMode: str
    allowedSelfTradePreventionModes: list[str]


class ExchangeInfo(msgspec.Struct):
    timezone: str
    serverTime: int
    rateLimits: list[Any]
    exchangeFilters: list[Any]
    symbols: list[SymbolInfo]


# -- market data --------------------------------------------------------------------------
class Depth(msgspec.Struct):
    lastUpdateId: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]


class PublicTrade(msgspec.Struct):
    id: int
    price: str
    qty: str
    quoteQty: str
    time: int
    isBuyerMaker: bool
    isBestMatch: bool


class AggTrade(msgspec.Struct):
    a: int          # aggregate id: here the trade id, one aggregate per trade
    p: str
    q: str
    f: int          # first and last trade id
    l: int          # noqa: E741 (Binance's name)
    T: int
    m: bool         # the buyer was the maker
    M: bool


class MiniTicker(msgspec.Struct):
    symbol: str
    openPrice: str
    highPrice: str
    lowPrice: str
    lastPrice: str
    volume: str
    quoteVolume: str
    openTime: int
    closeTime: int
    firstId: int
    lastId: int
    count: int


class Ticker24h(msgspec.Struct):
    symbol: str
    priceChange: str
    priceChangePercent: str
    weightedAvgPrice: str
    prevClosePrice: str
    lastPrice: str
    lastQty: str
    bidPrice: str
    bidQty: str
    askPrice: str
    askQty: str
    openPrice: str
    highPrice: str
    lowPrice: str
    volume: str
    quoteVolume: str
    openTime: int
    closeTime: int
    firstId: int
    lastId: int
    count: int


class PriceTicker(msgspec.Struct):
    symbol: str
    price: str


class BookTicker(msgspec.Struct):
    symbol: str
    bidPrice: str
    bidQty: str
    askPrice: str
    askQty: str


# -- orders and trades -----------------------------------------------------------------------
class Fill(msgspec.Struct):
    price: str
    qty: str
    commission: str
    commissionAsset: str
    tradeId: int


class NewOrder(msgspec.Struct, omit_defaults=True):
    """POST order's answer: ACK has the first five fields, RESULT adds the
    order's state, FULL adds its immediate fills as well."""
    symbol: str
    orderId: int
    orderListId: int
    clientOrderId: str
    transactTime: int
    price: str | UnsetType = UNSET
    origQty: str | UnsetType = UNSET
    executedQty: str | UnsetType = UNSET
    origQuoteOrderQty: str | UnsetType = UNSET
    cummulativeQuoteQty: str | UnsetType = UNSET
    status: str | UnsetType = UNSET
    timeInForce: str | UnsetType = UNSET
    type: str | UnsetType = UNSET
    side: str | UnsetType = UNSET
    workingTime: int | UnsetType = UNSET
    selfTradePreventionMode: str | UnsetType = UNSET
    fills: list[Fill] | UnsetType = UNSET


class Order(msgspec.Struct):
    symbol: str
    orderId: int
    orderListId: int
    clientOrderId: str
    price: str
    origQty: str
    executedQty: str
    cummulativeQuoteQty: str
    status: str
    timeInForce: str
    type: str
    side: str
    stopPrice: str
    icebergQty: str
    time: int
    updateTime: int
    isWorking: bool
    workingTime: int
    origQuoteOrderQty: str
    selfTradePreventionMode: str


class Canceled(msgspec.Struct):
    symbol: str
    origClientOrderId: str
    orderId: int
    orderListId: int
    clientOrderId: str
    transactTime: int
    price: str
    origQty: str
    executedQty: str
    cummulativeQuoteQty: str
    origQuoteOrderQty: str
    status: str
    timeInForce: str
    type: str
    side: str
    selfTradePreventionMode: str


class MyTrade(msgspec.Struct):
    symbol: str
    id: int
    orderId: int
    orderListId: int
    price: str
    qty: str
    quoteQty: str
    commission: str
    commissionAsset: str
    time: int
    isBuyer: bool
    isMaker: bool
    isBestMatch: bool


class Balance(msgspec.Struct):
    asset: str
    free: str
    locked: str


class CommissionRates(msgspec.Struct):
    maker: str
    taker: str
    buyer: str
    seller: str


class Account(msgspec.Struct):
    makerCommission: int
    takerCommission: int
    buyerCommission: int
    sellerCommission: int
    commissionRates: CommissionRates
    canTrade: bool
    canWithdraw: bool
    canDeposit: bool
    brokered: bool
    requireSelfTradePrevention: bool
    preventSor: bool
    updateTime: int
    accountType: str
    balances: list[Balance]
    permissions: list[str]
    uid: int
