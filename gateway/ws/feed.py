"""The feed: the exchange's data turned into the messages of both WebSocket
protocols, published through the hub (gateway/ws/hub.py) to the keys of
gateway/ws/streams.py.

Two entry points, called on the worker's event loop by its push stream
(gateway/push.py), each batch once:

- `market(update, now_ms)`: a marketdata MarketUpdate. At once: 0xInfinity's
  `market.depth` (each diff as it is), `market.trade`, `market.kline`;
  Binance's `@trade`, `@aggTrade` (one per trade), `@kline_<i>` and
  `@bookTicker` (when the best bid or ask changed). Over windows of 100 ms
  and 1000 ms (Binance's update speeds): `@depth@100ms` and `@depth`, the
  window's diffs merged (U of the first, u of the last, each level's last
  qty, E the last one's time), and `@depth<N>[@100ms]`, the top N levels of
  the book at the window's end, if the book changed in it. At most once a
  second: every ticker stream of each symbol that traded or whose best
  prices moved (0xInfinity's `market.ticker`, Binance's `@ticker` and
  `@miniTicker`), from `market.ticker(symbol, now_ms)` at the latest
  `now_ms` handed in.
- `private(orders, trades, balances, ts_ns)`: the core's ORDER_EVENT,
  TRADE_EVENT and BALANCE_EVENT records of whole seqs, with each seq's entry
  time. To each user concerned, on the streams they subscribed to:
  0xInfinity's `order.update` (per order event), `trade` (per trade, to both
  sides: makers hear about their fills) and `balance.update` (each asset's
  last state in the batch); Binance's `executionReport` (per order event, a
  fill's commission from its trade), `balanceUpdate` (per deposit or
  withdrawal) and `outboundAccountPosition` (per user and batch, the assets
  that changed). A refused cancel, reduce or move (an order event `rejected`
  of a command other than a place) changes no order and is not sent; a
  refused place is 0xInfinity's order.update REJECTED but no executionReport
  (a Binance client learns it from its REST answer, as from Binance); a
  refused deposit or withdrawal changes no balance and is not sent either.
  A batch must hold every event of its seqs (a fill's trade with its order
  events), as settlement hands them over.

Work is done only for streams someone subscribed to: a message is built and
encoded when its key has a subscriber, once, whatever their number.

Binance's executionReport from what an order event holds: `c` the client
order id text (the `client_order_id(user_id, order_id)` callable, asked once
per order and kept until the order ends; "" without one), `Z` the
cumulative quote of avg_price x filled_qty (within a unit of the fills'
sum), `O` only on the event that opened the order (x NEW), `q` "0" for a
market buy by quote amount. A reduce or a move is execution type REPLACED.
"""
from __future__ import annotations

import asyncio
from typing import Callable, NamedTuple

from ...engine import records as R
from ...marketdata.book import NS_PER_MS, rests
from ...marketdata.types import MarketUpdate
from ..link import SIDE_NAME, TIF_NAME, TYPE_NAME
from .hub import Hub
from .streams import (COMBINED, DEPTH_WINDOWS_MS, PARTIAL_LEVELS, RAW, USER, ZX, Catalog, SymbolUnits,
                      depth_stream)

TICKER_PERIOD_S = 1.0
# An order event's status as both APIs name it; reduced and moved orders are open (None: by filled_qty).
STATUS = {R.ST_ACCEPTED: "NEW", R.ST_PARTIALLY_FILLED: "PARTIALLY_FILLED", R.ST_FILLED: "FILLED",
          R.ST_CANCELLED: "CANCELED", R.ST_EXPIRED: "EXPIRED", R.ST_REJECTED: "REJECTED", R.ST_REDUCED: None,
          R.ST_MOVED: None}
EXECUTION = {R.ST_ACCEPTED: "NEW", R.ST_PARTIALLY_FILLED: "TRADE", R.ST_FILLED: "TRADE",
             R.ST_CANCELLED: "CANCELED", R.ST_EXPIRED: "EXPIRED", R.ST_REJECTED: "REJECTED",
             R.ST_REDUCED: "REPLACED", R.ST_MOVED: "REPLACED"}
ENDED = frozenset((R.ST_FILLED, R.ST_CANCELLED, R.ST_EXPIRED, R.ST_REJECTED))


class _Fill(NamedTuple):
    """What an executionReport takes from a fill's TRADE_EVENT."""
    buyer_order_id: int
    quote_qty: int
    buyer_fee: int          # base units
    seller_fee: int         # quote units
    taker_side: int


class _Pending:
    """One symbol's depth changes in the current window of one update speed."""
    __slots__ = ("first", "last", "bids", "asks")

    def __init__(self):
        self.first = 0              # U of the window's first diff (0: no diff merged yet)
        self.last = 0
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}


class Feed:
    def __init__(self, hub: Hub, assets, symbols, market,
                 client_order_id: Callable[[int, int], str | None] | None = None):
        """market: marketdata.book.MarketData (depth, ticker, best); client_order_id:
        (user_id, order_id) -> the order's client order id text or None, e.g. the order store's
        cid_text of the order's cid_hash (a quick read: it runs on the loop)."""
        self.hub = hub
        self.zx = Catalog(assets, symbols)                      # 0xInfinity's formatting
        self.bn = Catalog(assets, symbols, display=False)       # Binance's
        self.market_data = market
        self.client_order_id = client_order_id
        self.now_ms = 0                                     # the latest now_ms handed to `market`
        self._windows: dict[int, dict[int, _Pending]] = {ms: {} for ms in DEPTH_WINDOWS_MS}
        self._window_timers: dict[int, asyncio.TimerHandle] = {}
        self._tickers_due: set[int] = set()
        self._ticker_timer: asyncio.TimerHandle | None = None
        self._ticker_sent_at = -TICKER_PERIOD_S             # loop time of the last ticker flush
        self._best: dict[int, tuple] = {}                   # symbol -> the best prices last sent on @bookTicker
        self._cids: dict[int, str] = {}                     # order -> client order id text, while it lives

    # -- publishing ------------------------------------------------------------------
    def _wants(self, name: str) -> bool:
        """Has a Binance stream a subscriber, raw or combined?"""
        return self.hub.has((RAW, name)) or self.hub.has((COMBINED, name))

    def _emit(self, name: str, event: dict) -> None:
        """A Binance stream event: encoded once, wrapped for the combined subscribers."""
        hub = self.hub
        data = hub.encode(event)
        hub.deliver((RAW, name), data)
        if hub.has((COMBINED, name)):
            hub.deliver((COMBINED, name), f'{{"stream":"{name}","data":{data}}}')

    @staticmethod
    def _levels(c: Catalog, levels, s: SymbolUnits) -> list[list[str]]:
        return [[c.price(p, s), c.qty(q, s)] for p, q in levels]

    # -- market data -------------------------------------------------------------------
    def market(self, update: MarketUpdate, now_ms: int) -> None:
        self.now_ms = now_ms
        hub, z, b = self.hub, self.zx, self.bn
        for d in update.diffs:
            s = z.symbols[d.symbol_id]
            topic = f"market.depth.{s.name}"
            if hub.has(topic):
                hub.publish(topic, {"type": "depthUpdate", "s": s.name, "U": d.first_update_id,
                                    "u": d.last_update_id, "E": d.time_ms, "b": self._levels(z, d.bids, s),
                                    "a": self._levels(z, d.asks, s)})
            for window_ms in DEPTH_WINDOWS_MS:
                self._merge(window_ms, d, s)
            name = f"{s.stream}@bookTicker"
            if self._wants(name):
                best = self.market_data.best(s.id)
                if best != self._best.get(s.id):
                    self._best[s.id] = best
                    self._emit(name, {"u": d.last_update_id, "s": s.binance, "b": b.price(best[0], s),
                                      "B": b.qty(best[1], s), "a": b.price(best[2], s), "A": b.qty(best[3], s)})
            self._ticker_due(s)
        for t in update.trades:
            s = z.symbols[t.symbol_id]
            self._ticker_due(s)
            topic, trade, agg = f"market.trade.{s.name}", f"{s.stream}@trade", f"{s.stream}@aggTrade"
            if hub.has(topic):
                hub.publish(topic, {"type": "public_trade", "symbol": s.name, "trade_id": t.trade_id,
                                    "price": z.price(t.price, s), "qty": z.qty(t.qty, s),
                                    "quote_qty": z.quote(t.quote_qty, s), "time": t.time_ms,
                                    "is_buyer_maker": t.buyer_is_maker})
            if self._wants(trade):
                self._emit(trade, {"e": "trade", "E": t.time_ms, "s": s.binance, "t": t.trade_id,
                                   "p": b.price(t.price, s), "q": b.qty(t.qty, s), "T": t.time_ms,
                                   "m": t.buyer_is_maker, "M": True})
            if self._wants(agg):
                self._emit(agg, {"e": "aggTrade", "E": t.time_ms, "s": s.binance, "a": t.trade_id,
                                 "p": b.price(t.price, s), "q": b.qty(t.qty, s), "f": t.trade_id, "l": t.trade_id,
                                 "T": t.time_ms, "m": t.buyer_is_maker, "M": True})
        for k in update.klines:
            s = z.symbols[k.symbol_id]
            topic = f"market.kline.{k.interval}.{s.name}"
            if hub.has(topic):
                hub.publish(topic, {"type": "kline", "symbol": s.name, "interval": k.interval,
                                    "open_time": k.open_time_ms, "close_time": k.close_time_ms,
                                    "open": z.price(k.open, s), "high": z.price(k.high, s), "low": z.price(k.low, s),
                                    "close": z.price(k.close, s), "volume": z.qty(k.volume, s),
                                    "quote_volume": z.quote(k.quote_volume, s), "trade_count": k.trades,
                                    "closed": k.closed})
            name = f"{s.stream}@kline_{k.interval}"
            if self._wants(name):
                self._emit(name, {"e": "kline", "E": now_ms, "s": s.binance, "k": {
                    "t": k.open_time_ms, "T": k.close_time_ms, "s": s.binance, "i": k.interval,
                    "f": k.first_trade_id, "L": k.last_trade_id, "o": b.price(k.open, s), "c": b.price(k.close, s),
                    "h": b.price(k.high, s), "l": b.price(k.low, s), "v": b.qty(k.volume, s), "n": k.trades,
                    "x": k.closed, "q": b.quote(k.quote_volume, s), "V": b.qty(k.taker_buy_volume, s),
                    "Q": b.quote(k.taker_buy_quote_volume, s), "B": "0"}})

    def _merge(self, window_ms: int, d, s: SymbolUnits) -> None:
        """Fold diff `d` into its symbol's window, if its depth streams of this speed have a subscriber."""
        wants_diff = self._wants(depth_stream(s.stream, window_ms))
        if not (wants_diff or any(self._wants(depth_stream(s.stream, window_ms, n)) for n in PARTIAL_LEVELS)):
            return
        pending = self._windows[window_ms].setdefault(s.id, _Pending())
        if wants_diff:
            if not pending.first:
                pending.first = d.first_update_id
            pending.last = d.last_update_id
            pending.bids.update(d.bids)
            pending.asks.update(d.asks)
        if window_ms not in self._window_timers:
            self._window_timers[window_ms] = asyncio.get_running_loop().call_later(
                window_ms / 1000, self.flush_window, window_ms)

    def flush_window(self, window_ms: int) -> None:
        """Publish the window's merged diffs and partial books (the timer's work; callable at any time)."""
        timer = self._window_timers.pop(window_ms, None)
        if timer is not None:
            timer.cancel()
        pending, self._windows[window_ms] = self._windows[window_ms], {}
        b = self.bn
        closed_ms = self.hub.now_ms()       # E: when the window's message is made (Binance's event time)
        for symbol_id, p in pending.items():
            s = b.symbols[symbol_id]
            name = depth_stream(s.stream, window_ms)
            if p.first and self._wants(name):
                self._emit(name, {"e": "depthUpdate", "E": closed_ms, "s": s.binance, "U": p.first, "u": p.last,
                                  "b": self._levels(b, p.bids.items(), s), "a": self._levels(b, p.asks.items(), s)})
            for levels in PARTIAL_LEVELS:
                name = depth_stream(s.stream, window_ms, levels)
                if self._wants(name):
                    book = self.market_data.depth(symbol_id, levels)
                    self._emit(name, {"lastUpdateId": book.last_update_id, "bids": self._levels(b, book.bids, s),
                                      "asks": self._levels(b, book.asks, s)})

    def _ticker_streams(self, s: SymbolUnits) -> tuple[str, str, str]:
        return f"market.ticker.{s.name}", f"{s.stream}@ticker", f"{s.stream}@miniTicker"

    def _ticker_due(self, s: SymbolUnits) -> None:
        """The symbol's tickers changed: publish them at the next ticker flush, if they have subscribers."""
        zx, full, mini = self._ticker_streams(s)
        if not (self.hub.has(zx) or self._wants(full) or self._wants(mini)):
            return
        self._tickers_due.add(s.id)
        if self._ticker_timer is None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, self._ticker_sent_at + TICKER_PERIOD_S - loop.time())
            self._ticker_timer = loop.call_later(delay, self.flush_tickers)

    def flush_tickers(self) -> None:
        """Publish the ticker streams of the symbols due (the timer's work; callable at any time)."""
        if self._ticker_timer is not None:
            self._ticker_timer.cancel()
            self._ticker_timer = None
        self._ticker_sent_at = asyncio.get_running_loop().time()
        due, self._tickers_due = self._tickers_due, set()
        hub, z, b = self.hub, self.zx, self.bn
        for symbol_id in sorted(due):
            s = z.symbols[symbol_id]
            topic, full, mini = self._ticker_streams(s)
            zx_wants, full_wants, mini_wants = hub.has(topic), self._wants(full), self._wants(mini)
            if not (zx_wants or full_wants or mini_wants):
                continue
            t = self.market_data.ticker(symbol_id, self.now_ms)
            change = t.last - t.open
            if zx_wants:
                hub.publish(topic, {"type": "ticker", "symbol": s.name, "price_change": z.price(change, s),
                                    "price_change_percent": z.percent(change, t.open, 2),
                                    "last_price": z.price(t.last, s), "high_price": z.price(t.high, s),
                                    "low_price": z.price(t.low, s), "volume": z.qty(t.volume, s),
                                    "quote_volume": z.quote(t.quote_volume, s), "open_time": t.open_time_ms,
                                    "close_time": t.close_time_ms, "count": t.trades})
            o, h, lo, last = (b.price(p, s) for p in (t.open, t.high, t.low, t.last))
            volume, quote_volume = b.qty(t.volume, s), b.quote(t.quote_volume, s)
            if full_wants:
                # x, the price before the window, is not kept: the window's first trade stands for it (as REST).
                self._emit(full, {"e": "24hrTicker", "E": self.now_ms, "s": s.binance, "p": b.price(change, s),
                                  "P": b.percent(change, t.open, 3),
                                  "w": b.price(b.mean_price(t.quote_volume, t.volume, s), s), "x": o, "c": last,
                                  "Q": b.qty(t.last_qty, s), "b": b.price(t.bid_price, s), "B": b.qty(t.bid_qty, s),
                                  "a": b.price(t.ask_price, s), "A": b.qty(t.ask_qty, s), "o": o, "h": h, "l": lo,
                                  "v": volume, "q": quote_volume, "O": t.open_time_ms, "C": t.close_time_ms,
                                  "F": t.first_trade_id, "L": t.last_trade_id, "n": t.trades})
            if mini_wants:
                self._emit(mini, {"e": "24hrMiniTicker", "E": self.now_ms, "s": s.binance, "c": last, "o": o,
                                  "h": h, "l": lo, "v": volume, "q": quote_volume})

    # -- private ------------------------------------------------------------------------
    def _binance_sids(self, user_id: int) -> list[int]:
        return [key[2] for key in self.hub.user_keys(user_id) if key[0] == USER]

    def _user_event(self, user_id: int, sids: list[int], event: dict) -> None:
        """A Binance user data event, encoded once, to each of the user's subscriptions."""
        data = self.hub.encode(event)
        for sid in sids:
            self.hub.deliver((USER, user_id, sid), f'{{"subscriptionId":{sid},"event":{data}}}')

    def private(self, orders, trades, balances, ts_ns: dict[int, int]) -> None:
        if not self.hub.has_private():
            self._cids.clear()          # no one to tell: what it kept would wait for ends it will not see
            return
        fills: dict[int, _Fill] = {}        # trade id -> its fill, for executionReport
        for row in trades.tolist():
            fills[row[0]] = self._trade(row)
        for row in orders.tolist():
            self._order(row, fills, ts_ns)
        self._balances(balances.tolist(), ts_ns)

    def _trade(self, row) -> _Fill:
        (trade_id, _seq, price, qty, quote_qty, buyer_order_id, seller_order_id, buyer, seller, buyer_fee,
         seller_fee, symbol, taker_side, _reserved) = row
        hub, z = self.hub, self.zx
        s = z.symbols[symbol]
        for user_id, order_id, side, fee, fee_asset in ((buyer, buyer_order_id, R.SIDE_BUY, buyer_fee, s.base_id),
                                                        (seller, seller_order_id, R.SIDE_SELL, seller_fee,
                                                         s.quote_id)):
            key = (ZX, "trade", user_id)
            if hub.has(key):
                hub.publish(key, {"type": "trade", "trade_id": trade_id, "order_id": order_id, "symbol": s.name,
                                  "side": SIDE_NAME[side], "price": z.price(price, s), "qty": z.qty(qty, s),
                                  "fee": z.amount(fee, fee_asset), "fee_asset": z.assets[fee_asset].name,
                                  "role": "TAKER" if taker_side == side else "MAKER"})
        return _Fill(buyer_order_id, quote_qty, buyer_fee, seller_fee, taker_side)

    def _order(self, row, fills: dict[int, _Fill], ts_ns: dict[int, int]) -> None:
        (seq, order_id, user_id, price, qty, filled, avg_price, last_qty, last_price, trade_id, symbol, kind,
         status, _reason, side, order_type, tif) = row
        if status == R.ST_REJECTED and kind != R.CMD_PLACE:
            return
        hub, z, b = self.hub, self.zx, self.bn
        s = z.symbols[symbol]
        named = STATUS[status] or ("PARTIALLY_FILLED" if filled else "NEW")
        key = (ZX, "order.update", user_id)
        if hub.has(key):
            hub.publish(key, {"type": "order.update", "order_id": order_id, "symbol": s.name, "status": named,
                              "filled_qty": z.qty(filled, s),
                              "avg_price": z.price(avg_price, s) if filled else None})
        sids = self._binance_sids(user_id)
        ended = status in ENDED
        if not sids or status == R.ST_REJECTED:
            if ended:
                self._cids.pop(order_id, None)
            return
        cid = self._cids.pop(order_id, None) if ended else self._cids.get(order_id)
        if cid is None:
            cid = (self.client_order_id(user_id, order_id) if self.client_order_id is not None else None) or ""
            if not ended:
                self._cids[order_id] = cid
        time_ms = ts_ns[seq] // NS_PER_MS
        fill = fills.get(trade_id) if trade_id else None
        maker, fee, fee_asset, last_quote = False, 0, None, 0
        if fill is not None:
            is_buyer = fill.buyer_order_id == order_id
            maker = fill.taker_side != (R.SIDE_BUY if is_buyer else R.SIDE_SELL)
            fee, fee_asset = (fill.buyer_fee, s.base_id) if is_buyer else (fill.seller_fee, s.quote_id)
            last_quote = fill.quote_qty
        else:
            last_qty = last_price = 0   # not a fill (a reduce's last_qty is what it took off)
        execution = EXECUTION[status]
        event = {"e": "executionReport", "E": time_ms, "s": s.binance, "c": cid, "S": SIDE_NAME[side],
                 "o": TYPE_NAME[order_type], "f": TIF_NAME[tif], "q": b.qty(0 if qty == R.QTY_UNLIMITED else qty, s),
                 "p": b.price(price, s), "P": b.price(0, s), "F": b.qty(0, s), "g": -1, "C": "", "x": execution,
                 "X": named, "r": "NONE", "i": order_id, "l": b.qty(last_qty, s), "z": b.qty(filled, s),
                 "L": b.price(last_price, s), "n": b.amount(fee, fee_asset) if fee_asset is not None else "0",
                 "N": b.assets[fee_asset].name if fee_asset is not None else None, "T": time_ms,
                 "t": trade_id if fill is not None else -1, "I": seq,
                 "w": rests(status, order_type, tif), "m": maker, "M": False,
                 "Z": b.quote(b.cost(avg_price, filled, s), s), "Y": b.quote(last_quote, s), "Q": b.quote(0, s)}
        if execution == "NEW":
            event["O"] = time_ms
        self._user_event(user_id, sids, event)

    def _balances(self, rows: list, ts_ns: dict[int, int]) -> None:
        hub, z, b = self.hub, self.zx, self.bn
        latest: dict[int, dict[int, tuple]] = {}        # user -> asset -> (avail, frozen, time_ms)
        for (seq, _trade_id, user_id, amount, avail, frozen, _version, asset, op, reason, _reserved) in rows:
            if reason:
                continue
            time_ms = ts_ns[seq] // NS_PER_MS
            latest.setdefault(user_id, {})[asset] = (avail, frozen, time_ms)
            if op in (R.OP_DEPOSIT, R.OP_WITHDRAW):
                sids = self._binance_sids(user_id)
                if sids:
                    delta = b.amount(amount if op == R.OP_DEPOSIT else -amount, asset)
                    self._user_event(user_id, sids, {"e": "balanceUpdate", "E": time_ms, "a": b.assets[asset].name,
                                                     "d": delta, "T": time_ms})
        for user_id, assets in latest.items():
            key = (ZX, "balance.update", user_id)
            if hub.has(key):
                for asset, (avail, frozen, _time_ms) in assets.items():
                    hub.publish(key, {"type": "balance.update", "asset": z.assets[asset].name,
                                      "avail": z.amount(avail, asset), "frozen": z.amount(frozen, asset)})
            sids = self._binance_sids(user_id)
            if sids:
                time_ms = max(t for _a, _f, t in assets.values())
                self._user_event(user_id, sids, {
                    "e": "outboundAccountPosition", "E": time_ms, "u": time_ms,
                    "B": [{"a": b.assets[asset].name, "f": b.amount(avail, asset), "l": b.amount(frozen, asset)}
                          for asset, (avail, frozen, _t) in assets.items()]})
