"""Plain-Python reference of the core: docs/ENGINE.md, written to be read.

This is the readable statement of the trading rules, used to check the numba
engine (`engine/core.py`) event for event. It favours the obvious over the fast:
Python ints, dicts and lists; one book per symbol as `price -> deque of orders`
with the best price found in a sorted list of prices kept with `bisect`.

Invariants (docs/ENGINE.md, spec/TRADING_RULES.md section 7), asserted where cheap:
- every avail/frozen is an int64 >= 0; no credit can overflow because deposits
  keep each asset's total over all users <= 2^63-1;
- an open order's lock `L` is >= 0; under the `keep` policy also
  L >= cost(P, R) of a limit buy, so `keep` never releases more than is locked;
- under `release`, a slot's frozen == sum of L over its user's open orders;
- the book is never crossed after a command.

Python ints are unbounded, so the int64 rules are explicit: a cost (limit buy
lock, move of a buy) above INT64_MAX is refused as `Invalid quantity`, a deposit
that would lift the asset total above INT64_MAX as `Amount overflows`.

Readings of docs/ENGINE.md where the text leaves a choice are marked
"Reading:" below; each is the most natural one we saw.
"""
from __future__ import annotations

import bisect
from collections import deque

import numpy as np

from xinfinity.config import Asset, Capacity, Symbol
from xinfinity.engine import records as R
from xinfinity.engine.events import BALANCE_ROW, OPEN_ORDER_ROW, Events, records

INT64_MAX = 2**63 - 1
QTY_UNLIMITED = INT64_MAX
PPM = 10**6
U16_MAX = 2**16 - 1

STP_CODES = {name: code for code, name in R.STP_NAMES.items()}

# Field order of the tuples collected for each event stream (reserved bytes stay zero).
ORDER_FIELDS = ("seq", "order_id", "user_id", "price", "qty", "filled_qty", "avg_price",
                "last_qty", "last_price", "trade_id", "symbol", "kind", "status", "reason",
                "side", "order_type", "tif")
TRADE_FIELDS = ("trade_id", "seq", "price", "qty", "quote_qty", "buyer_order_id",
                "seller_order_id", "buyer_user_id", "seller_user_id", "buyer_fee",
                "seller_fee", "symbol", "taker_side")
BALANCE_FIELDS = ("seq", "trade_id", "user_id", "amount", "avail", "frozen", "version",
                  "asset", "op", "reason")


def fee(amount: int, ppm: int) -> int:
    """fee(amount, ppm) = 0 if either is 0, else max(1, floor(amount * ppm / 10^6))."""
    if amount == 0 or ppm == 0:
        return 0
    return max(1, amount * ppm // PPM)


class Market:
    """One symbol: its trading terms and its book."""

    __slots__ = ("id", "base", "quote", "cost_num", "cost_den", "maker_ppm", "taker_ppm",
                 "fee_user", "stp", "bids", "asks", "bid_prices", "ask_prices")

    def __init__(self, symbol: Symbol, assets: dict[int, Asset]):
        self.id = symbol.id
        self.base = symbol.base_asset_id
        self.quote = symbol.quote_asset_id
        qd = assets[self.quote].decimals
        bd = assets[self.base].decimals
        pd = symbol.price_decimals
        self.cost_num = 10 ** max(0, qd - pd - bd)
        self.cost_den = 10 ** max(0, pd + bd - qd)
        self.maker_ppm = symbol.maker_fee_ppm
        self.taker_ppm = symbol.taker_fee_ppm
        self.fee_user = symbol.fee_user_id
        self.stp = STP_CODES[symbol.stp]
        # price -> deque of resting orders (FIFO); the prices of each side ascending.
        self.bids: dict[int, deque] = {}
        self.asks: dict[int, deque] = {}
        self.bid_prices: list[int] = []
        self.ask_prices: list[int] = []

    def cost(self, price: int, qty: int) -> int:
        """floor(price * qty * cost_num / cost_den), exact (may exceed int64: callers check)."""
        return price * qty * self.cost_num // self.cost_den

    def max_qty_for(self, price: int, budget: int) -> int:
        """The largest q with cost(price, q) <= budget (price > 0, budget >= 0).

        cost(p, q) <= B  <=>  p*q*num / den < B + 1  <=>  p*q*num <= (B + 1)*den - 1.
        """
        return ((budget + 1) * self.cost_den - 1) // (price * self.cost_num)

    def side_book(self, side: int) -> tuple[dict[int, deque], list[int]]:
        return (self.bids, self.bid_prices) if side == R.SIDE_BUY else (self.asks, self.ask_prices)


class Order:
    """An open order (or the taker being matched).

    `lock` is L, the amount of the lock asset still frozen for the order (quote
    for a buy, base for a sell). For a market buy L is its remaining budget.
    """

    __slots__ = ("order_id", "user", "symbol", "side", "type", "tif", "price", "qty",
                 "filled", "lock", "notional")

    def __init__(self, order_id, user, symbol, side, type_, tif, price, qty, lock):
        self.order_id = order_id
        self.user = user
        self.symbol = symbol
        self.side = side
        self.type = type_
        self.tif = tif
        self.price = price
        self.qty = qty
        self.filled = 0
        self.lock = lock
        self.notional = 0       # sum(p_i * q_i) over fills, for the average price

    @property
    def remaining(self) -> int:
        return self.qty - self.filled

    @property
    def avg_price(self) -> int:
        return self.notional // self.filled if self.filled else 0

    @property
    def is_limit_buy(self) -> bool:
        return self.type == R.TYPE_LIMIT and self.side == R.SIDE_BUY

    @property
    def is_market_buy(self) -> bool:
        return self.type == R.TYPE_MARKET and self.side == R.SIDE_BUY


class Reference:
    """The core's state machine in plain Python; see docs/ENGINE.md."""

    def __init__(self, assets: list[Asset], symbols: list[Symbol], dust: int = R.DUST_RELEASE,
                 capacity: Capacity = Capacity()):
        if dust not in R.DUST_NAMES:
            raise ValueError(f"unknown dust policy {dust!r}")
        self.dust = dust
        self.capacity = capacity
        self.assets = {a.id: a for a in assets}
        if len(self.assets) != len(assets):
            raise ValueError("duplicate asset id")
        self.markets: dict[int, Market] = {}
        for s in symbols:
            # Reading: a symbol that cannot trade (unknown asset, bad fee terms) is
            # a configuration error, refused here rather than modelled as an
            # "inactive" symbol; every configured symbol is active.
            if s.id in self.markets or not 0 <= s.id <= U16_MAX:
                raise ValueError(f"symbol {s.name}: bad or duplicate id {s.id}")
            if s.base_asset_id not in self.assets or s.quote_asset_id not in self.assets:
                raise ValueError(f"symbol {s.name}: unknown asset")
            if not (0 <= s.maker_fee_ppm <= PPM and 0 <= s.taker_fee_ppm <= PPM):
                raise ValueError(f"symbol {s.name}: fee rate outside 0..10^6 ppm")
            if s.fee_user_id < 0 and (s.maker_fee_ppm or s.taker_fee_ppm):
                raise ValueError(f"symbol {s.name}: fee rates without a fee account")
            self.markets[s.id] = Market(s, self.assets)
        # Reading: fee accounts exist from the start as known users and take
        # user slots (max_users counts them); their balance slots appear with
        # their first balance event, like everyone's.
        self.users: set[int] = {s.fee_user_id for s in symbols if s.fee_user_id >= 0}
        if len(self.users) > capacity.max_users:
            raise ValueError("more fee accounts than max_users")
        self.slots: dict[tuple[int, int], list[int]] = {}     # (user, asset) -> [avail, frozen, version]
        self.asset_total = {a: 0 for a in self.assets}        # deposits - withdrawals
        self.orders: dict[int, Order] = {}                    # open orders by order id
        self.cid_of: dict[int, tuple[int, int]] = {}          # open order id -> (user, cid), if it has a cid
        self.open_cids: set[tuple[int, int]] = set()          # the (user, cid) of open orders
        self.next_seq = 1
        self.next_trade_id = 1
        self._oev: list[tuple] = []
        self._tev: list[tuple] = []
        self._bev: list[tuple] = []

    # -- Python API ---------------------------------------------------------

    def apply(self, cmds: np.ndarray) -> Events:
        """Apply commands in order (their `seq` is ignored and assigned); return their events."""
        self._oev, self._tev, self._bev = [], [], []
        columns = {name: cmds[name].tolist() for name in
                   ("kind", "order_id", "user_id", "symbol", "side", "order_type", "tif",
                    "price", "qty", "amount", "cid")}
        for i in range(len(cmds)):
            c = {name: col[i] for name, col in columns.items()}
            seq = self.next_seq
            self.next_seq += 1
            kind = c["kind"]
            if kind == R.CMD_PLACE:
                self._place(seq, c)
            elif kind == R.CMD_CANCEL:
                self._cancel(seq, c)
            elif kind == R.CMD_REDUCE:
                self._reduce(seq, c)
            elif kind == R.CMD_MOVE:
                self._move(seq, c)
            elif kind == R.CMD_DEPOSIT:
                self._deposit(seq, c)
            elif kind == R.CMD_WITHDRAW:
                self._withdraw(seq, c)
            else:
                # Reading: ENGINE.md lists no unknown kind; it still takes a seq and
                # is answered by an order event `rejected`, `Invalid command`.
                self._reject(seq, c, R.R_INVALID_COMMAND)
            self._assert_not_crossed()
        return Events(records(R.ORDER_EVENT, self._oev, ORDER_FIELDS),
                      records(R.TRADE_EVENT, self._tev, TRADE_FIELDS),
                      records(R.BALANCE_EVENT, self._bev, BALANCE_FIELDS))

    def balances(self) -> np.ndarray:
        """Every slot that has had a (non-refused) balance event, by user id then asset."""
        rows = [(u, a, s[0], s[1], s[2]) for (u, a), s in sorted(self.slots.items())]
        return np.array(rows, dtype=BALANCE_ROW)

    def open_orders(self) -> np.ndarray:
        """Resting orders: symbol ascending; bids best first, then asks best first; FIFO."""
        rows = []
        for sym in sorted(self.markets):
            m = self.markets[sym]
            for prices, levels in ((reversed(m.bid_prices), m.bids), (m.ask_prices, m.asks)):
                for price in prices:
                    for o in levels[price]:
                        rows.append((sym, o.side, o.price, o.order_id, o.user, o.qty,
                                     o.filled, o.lock))
        return np.array(rows, dtype=OPEN_ORDER_ROW)

    def counters(self) -> dict:
        return {"next_seq": self.next_seq, "next_trade_id": self.next_trade_id}

    # -- balances -----------------------------------------------------------

    def _slot(self, user: int, asset: int) -> list[int]:
        """The (user, asset) slot, or a detached zero slot if it has never had an event."""
        return self.slots.get((user, asset)) or [0, 0, 0]

    def _change(self, seq: int, trade_id: int, user: int, asset: int, op: int, amount: int):
        """Apply one balance operation, bump the version, and emit its balance event."""
        slot = self.slots.get((user, asset))
        if slot is None:
            slot = self.slots[(user, asset)] = [0, 0, 0]
        assert amount >= 0
        if op in (R.OP_DEPOSIT, R.OP_CREDIT, R.OP_FEE):
            slot[0] += amount
        elif op == R.OP_WITHDRAW:
            slot[0] -= amount
        elif op == R.OP_LOCK:
            slot[0] -= amount
            slot[1] += amount
        elif op == R.OP_UNLOCK:
            slot[1] -= amount
            slot[0] += amount
        elif op == R.OP_SPEND:
            slot[1] -= amount
        assert 0 <= slot[0] <= INT64_MAX and 0 <= slot[1] <= INT64_MAX, (user, asset, slot)
        slot[2] += 1
        self._bev.append((seq, trade_id, user, amount, slot[0], slot[1], slot[2], asset, op, 0))

    def _refuse(self, seq: int, user: int, asset: int, op: int, amount: int, reason: int):
        """A refused deposit/withdraw: one balance event with the reason, nothing changed.

        Reading: the event echoes the command (user, asset, amount as given, even a
        negative one) and carries the slot's current avail/frozen/version, all 0 for
        a slot that has never had an event; the refusal does not create the slot.
        """
        avail, frozen, version = self._slot(user, asset)
        self._bev.append((seq, 0, user, amount, avail, frozen, version, asset, op, reason))

    def _deposit(self, seq: int, c: dict):
        user, asset, amount = c["user_id"], c["symbol"], c["amount"]
        if amount < 0:
            reason = R.R_INVALID_QUANTITY
        elif asset not in self.assets:
            reason = R.R_ASSET_NOT_FOUND
        elif self.asset_total[asset] + amount > INT64_MAX:
            reason = R.R_OVERFLOW
        elif user not in self.users and len(self.users) >= self.capacity.max_users:
            reason = R.R_USER_CAPACITY
        else:
            # A deposit of 0 is valid: it creates the user and the slot.
            self.users.add(user)
            self.asset_total[asset] += amount
            self._change(seq, 0, user, asset, R.OP_DEPOSIT, amount)
            return
        self._refuse(seq, user, asset, R.OP_DEPOSIT, amount, reason)

    def _withdraw(self, seq: int, c: dict):
        user, asset, amount = c["user_id"], c["symbol"], c["amount"]
        if amount < 0:
            reason = R.R_INVALID_QUANTITY
        elif user not in self.users:
            reason = R.R_USER_NOT_FOUND
        elif asset not in self.assets:
            reason = R.R_ASSET_NOT_FOUND
        elif self._slot(user, asset)[0] < amount:
            reason = R.R_INSUFFICIENT_BALANCE
        else:
            # Reading: a withdraw of 0 by a known user is accepted like any other
            # (version bump, and it creates the slot if the user had none).
            self.asset_total[asset] -= amount
            self._change(seq, 0, user, asset, R.OP_WITHDRAW, amount)
            return
        self._refuse(seq, user, asset, R.OP_WITHDRAW, amount, reason)

    # -- order events -------------------------------------------------------

    def _event(self, seq: int, kind: int, o: Order, status: int, reason: int = R.R_NONE,
               last_qty: int = 0, last_price: int = 0, trade_id: int = 0):
        """An order event carrying the order's current fields."""
        self._oev.append((seq, o.order_id, o.user, o.price, o.qty, o.filled, o.avg_price,
                          last_qty, last_price, trade_id, o.symbol, kind, status, reason,
                          o.side, o.type, o.tif))

    def _reject(self, seq: int, c: dict, reason: int):
        """Order event `rejected`.

        Reading: a rejection describes the command, not an order: order id, user,
        symbol, side, type, tif, price and qty are the command's fields as given
        (for a reduce, qty is its reduce-by; a market buy's qty 0 stays 0),
        filled/avg/last/trade_id are 0. This holds even when the order exists (a
        cancel of another user's order, a move refused for balance), so a
        rejection never reveals another user's order.
        """
        self._oev.append((seq, c["order_id"], c["user_id"], c["price"], c["qty"], 0, 0, 0, 0, 0,
                          c["symbol"], c["kind"], R.ST_REJECTED, reason, c["side"],
                          c["order_type"], c["tif"]))

    # -- book ---------------------------------------------------------------

    def _rest(self, m: Market, o: Order):
        """Put the order at the tail of its price level."""
        levels, prices = m.side_book(o.side)
        level = levels.get(o.price)
        if level is None:
            level = levels[o.price] = deque()
            bisect.insort(prices, o.price)
        level.append(o)
        self.orders[o.order_id] = o

    def _unlink(self, m: Market, o: Order):
        """Take a resting order out of its level (it stays in `self.orders`)."""
        levels, prices = m.side_book(o.side)
        level = levels[o.price]
        if level[0] is o:
            level.popleft()
        else:
            level.remove(o)
        if not level:
            del levels[o.price]
            del prices[bisect.bisect_left(prices, o.price)]

    def _leave(self, seq: int, o: Order):
        """The order leaves the book for good: release what is still locked for it.

        Reading: the release's balance event carries trade_id 0, also when the
        order leaves because a trade filled it (the release is not part of the
        trade's settlement; the refund is, and carries the trade's id).
        """
        self.orders.pop(o.order_id, None)
        cid = self.cid_of.pop(o.order_id, None)
        if cid is not None:
            self.open_cids.discard(cid)
        m = self.markets[o.symbol]
        if self.dust == R.DUST_KEEP and o.is_limit_buy:
            # compat: a limit buy releases cost(P, R); a filled one releases 0, and
            # whatever rounding left in L stays frozen for ever.
            amount = m.cost(o.price, o.remaining)
            assert amount <= o.lock
        else:
            amount = o.lock
        if amount > 0:
            asset = m.quote if o.side == R.SIDE_BUY else m.base
            self._change(seq, 0, o.user, asset, R.OP_UNLOCK, amount)
        o.lock -= amount

    def _assert_not_crossed(self):
        for m in self.markets.values():
            if m.bid_prices and m.ask_prices:
                assert m.bid_prices[-1] < m.ask_prices[0], f"book {m.id} crossed"

    # -- place --------------------------------------------------------------

    def _place(self, seq: int, c: dict):
        if c["order_id"] == 0:
            c["order_id"] = seq                 # the sequencer gives ids to orders that come without
        side, type_, tif = c["side"], c["order_type"], c["tif"]
        price, qty, budget = c["price"], c["qty"], c["amount"]
        user, sym = c["user_id"], c["symbol"]
        if side not in R.SIDE_NAMES or type_ not in R.TYPE_NAMES or tif not in R.TIF_NAMES:
            # Reading: codes outside records.py are not a place at all.
            return self._reject(seq, c, R.R_INVALID_COMMAND)
        market_buy = type_ == R.TYPE_MARKET and side == R.SIDE_BUY
        # Checks in ENGINE.md's order; the first failure wins.
        if type_ == R.TYPE_LIMIT and price <= 0:
            return self._reject(seq, c, R.R_INVALID_PRICE)
        if (qty < 0 or budget <= 0) if market_buy else qty <= 0:
            return self._reject(seq, c, R.R_INVALID_QUANTITY)
        if user not in self.users:
            return self._reject(seq, c, R.R_USER_NOT_FOUND)
        m = self.markets.get(sym)
        if m is not None:
            if type_ == R.TYPE_LIMIT and side == R.SIDE_BUY:
                lock = m.cost(price, qty)
                if lock > INT64_MAX:
                    return self._reject(seq, c, R.R_INVALID_QUANTITY)
            elif market_buy:
                lock = budget
            else:
                lock = qty
        if m is None:
            return self._reject(seq, c, R.R_ASSET_NOT_FOUND)
        if c["order_id"] in self.orders:
            return self._reject(seq, c, R.R_DUPLICATE_ORDER_ID)
        cid = (user, c["cid"]) if c["cid"] else None
        if cid in self.open_cids:
            return self._reject(seq, c, R.R_DUPLICATE_CID)
        if len(self.orders) >= self.capacity.max_orders:
            # Reading: the taker being matched needs a slot too (Capacity's
            # comment), so a place is refused when the open orders already fill
            # max_orders, even if it would fill at once. A move needs no new slot.
            return self._reject(seq, c, R.R_ORDER_CAPACITY)
        lock_asset = m.quote if side == R.SIDE_BUY else m.base
        if self._slot(user, lock_asset)[0] < lock:
            return self._reject(seq, c, R.R_INSUFFICIENT_BALANCE)

        if market_buy and qty == 0:
            # Reading: an accepted market buy with qty 0 has qty QTY_UNLIMITED in
            # all its events; a rejected one, like every rejection, shows the
            # command's qty (0) as given.
            qty = QTY_UNLIMITED

        # Reading: a market order has no limit price: its price is 0 in all its
        # events, whatever the command carried (its tif is kept as given; a
        # market order expires whatever its tif).
        if type_ == R.TYPE_MARKET:
            price = 0
        t = Order(c["order_id"], user, sym, side, type_, tif, price, qty, lock)
        if cid is not None:
            self.cid_of[t.order_id] = cid
            self.open_cids.add(cid)
        self._change(seq, 0, user, lock_asset, R.OP_LOCK, lock)    # even if 0
        self._event(seq, R.CMD_PLACE, t, R.ST_ACCEPTED)
        stopped_by_stp = self._match(seq, R.CMD_PLACE, m, t)
        self._finish_taker(seq, R.CMD_PLACE, m, t, stopped_by_stp)

    def _done(self, t: Order) -> bool:
        """Filled: no remaining qty, or a market buy whose budget is used up.

        Reading: a market buy whose budget reaches 0 counts as filled everywhere:
        its fill event says `filled`, and matching stops before looking at the
        next maker (so no self-trade expiry happens after it is done).
        """
        return t.remaining == 0 or (t.is_market_buy and t.lock == 0)

    def _finish_taker(self, seq: int, kind: int, m: Market, t: Order, stopped_by_stp: bool):
        """After matching: leave filled, expire market/IOC/STP-stopped, else rest (GTC)."""
        if self._done(t):
            self._leave(seq, t)
        elif t.type == R.TYPE_MARKET or t.tif == R.TIF_IOC or stopped_by_stp:
            reason = R.R_SELF_TRADE if stopped_by_stp else R.R_NONE
            self._event(seq, kind, t, R.ST_EXPIRED, reason)
            self._leave(seq, t)
        else:
            self._rest(m, t)

    # -- matching -----------------------------------------------------------

    def _match(self, seq: int, kind: int, m: Market, t: Order) -> bool:
        """Match taker `t` against the opposite side; True if self-trade prevention stopped it."""
        buy = t.side == R.SIDE_BUY
        levels, prices = m.side_book(R.SIDE_SELL if buy else R.SIDE_BUY)
        limit = t.type == R.TYPE_LIMIT
        while not self._done(t) and prices:
            best = prices[0] if buy else prices[-1]
            if limit and (best > t.price if buy else best < t.price):
                break
            mk = levels[best][0]

            # 1. self-trade prevention
            if mk.user == t.user and m.stp != R.STP_NONE:
                if m.stp == R.STP_EXPIRE_TAKER:
                    return True
                self._event(seq, kind, mk, R.ST_EXPIRED, R.R_SELF_TRADE)
                self._unlink(m, mk)
                self._leave(seq, mk)
                if m.stp == R.STP_EXPIRE_BOTH:
                    return True
                continue

            # 2. fill size
            p = mk.price
            q = min(t.remaining, mk.remaining)
            if t.is_market_buy:
                q = min(q, m.max_qty_for(p, t.lock))
                if q == 0:
                    break

            # 3. amounts
            trade_id = self.next_trade_id
            self.next_trade_id += 1
            cost = m.cost(p, q)
            assert cost <= INT64_MAX
            buyer, seller = (t, mk) if buy else (mk, t)
            buyer_fee = fee(q, m.taker_ppm if buy else m.maker_ppm)
            seller_fee = fee(cost, m.maker_ppm if buy else m.taker_ppm)

            # 4. trade event, then settlement
            self._tev.append((trade_id, seq, p, q, cost, buyer.order_id, seller.order_id,
                              buyer.user, seller.user, buyer_fee, seller_fee, m.id, t.side))
            self._change(seq, trade_id, buyer.user, m.quote, R.OP_SPEND, cost)
            self._change(seq, trade_id, buyer.user, m.base, R.OP_CREDIT, q - buyer_fee)
            self._change(seq, trade_id, seller.user, m.base, R.OP_SPEND, q)
            self._change(seq, trade_id, seller.user, m.quote, R.OP_CREDIT, cost - seller_fee)
            if buyer_fee > 0:
                self._change(seq, trade_id, m.fee_user, m.base, R.OP_FEE, buyer_fee)
            if seller_fee > 0:
                self._change(seq, trade_id, m.fee_user, m.quote, R.OP_FEE, seller_fee)
            refund = 0
            if buy and limit and t.price > p:
                refund = m.cost(t.price - p, q)
                if refund > 0:
                    self._change(seq, trade_id, t.user, m.quote, R.OP_UNLOCK, refund)
            buyer.lock -= cost + refund     # for a market buy: its budget
            seller.lock -= q
            assert buyer.lock >= 0 and seller.lock >= 0

            # 5. fills and their order events, maker first
            for o in (mk, t):
                o.filled += q
                o.notional += p * q
            self._event(seq, kind, mk, R.ST_FILLED if mk.remaining == 0 else R.ST_PARTIALLY_FILLED,
                        last_qty=q, last_price=p, trade_id=trade_id)
            self._event(seq, kind, t, R.ST_FILLED if self._done(t) else R.ST_PARTIALLY_FILLED,
                        last_qty=q, last_price=p, trade_id=trade_id)
            if mk.remaining == 0:
                self._unlink(m, mk)
                self._leave(seq, mk)
        return False

    # -- cancel, reduce, move -----------------------------------------------

    def _find(self, c: dict) -> Order | None:
        """The open order of the command's id, only if it belongs to the command's user."""
        o = self.orders.get(c["order_id"])
        return o if o is not None and o.user == c["user_id"] else None

    def _cancel(self, seq: int, c: dict):
        o = self._find(c)
        if o is None:
            return self._reject(seq, c, R.R_ORDER_NOT_FOUND)
        self._cancel_order(seq, c["kind"], o)

    def _cancel_order(self, seq: int, kind: int, o: Order):
        self._event(seq, kind, o, R.ST_CANCELLED)
        self._unlink(self.markets[o.symbol], o)
        self._leave(seq, o)

    def _reduce(self, seq: int, c: dict):
        by = c["qty"]
        if by <= 0:
            return self._reject(seq, c, R.R_INVALID_QUANTITY)
        o = self._find(c)
        if o is None:
            return self._reject(seq, c, R.R_ORDER_NOT_FOUND)
        if by >= o.remaining:
            # Reading: "as cancel" exactly: event `cancelled` (last_qty 0), then release.
            return self._cancel_order(seq, R.CMD_REDUCE, o)
        m = self.markets[o.symbol]
        old_remaining = o.remaining
        o.qty -= by                                   # in place: keeps its priority
        self._event(seq, R.CMD_REDUCE, o, R.ST_REDUCED, last_qty=by)
        buy = o.side == R.SIDE_BUY                    # a resting buy is a limit buy
        if self.dust == R.DUST_RELEASE:
            new_lock = m.cost(o.price, o.remaining) if buy else o.remaining
            amount = o.lock - new_lock
        elif buy:
            amount = m.cost(o.price, old_remaining) - m.cost(o.price, o.remaining)
        else:
            amount = by
        o.lock -= amount
        assert o.lock >= 0
        if amount > 0:
            self._change(seq, 0, o.user, m.quote if buy else m.base, R.OP_UNLOCK, amount)

    def _move(self, seq: int, c: dict):
        new_price = c["price"]
        if new_price <= 0:
            return self._reject(seq, c, R.R_INVALID_PRICE)
        o = self._find(c)
        if o is None:
            return self._reject(seq, c, R.R_ORDER_NOT_FOUND)
        m = self.markets[o.symbol]
        buy = o.side == R.SIDE_BUY
        rem = o.remaining
        if buy:
            need = m.cost(new_price, rem)
            if need > INT64_MAX:
                return self._reject(seq, c, R.R_INVALID_QUANTITY)
        else:
            need = rem
        if self.dust == R.DUST_RELEASE:
            have = o.lock
        else:
            have = m.cost(o.price, rem) if buy else rem
        delta = need - have
        lock_asset = m.quote if buy else m.base
        if delta > self._slot(o.user, lock_asset)[0]:
            return self._reject(seq, c, R.R_INSUFFICIENT_BALANCE)
        if delta > 0:
            self._change(seq, 0, o.user, lock_asset, R.OP_LOCK, delta)
        elif delta < 0:
            self._change(seq, 0, o.user, lock_asset, R.OP_UNLOCK, -delta)
        o.lock += delta
        self._unlink(m, o)                            # loses its priority
        o.price = new_price
        self._event(seq, R.CMD_MOVE, o, R.ST_MOVED)
        # Reading: the moved order then goes through exactly the taker path of a
        # GTC place: filled -> leaves; stopped by self-trade prevention -> expired
        # (`Self-trade prevented`) and released, since resting it would cross the
        # book; else it rests at the tail of its new level.
        stopped_by_stp = self._match(seq, R.CMD_MOVE, m, o)
        self._finish_taker(seq, R.CMD_MOVE, m, o, stopped_by_stp)


def replay(assets: list[Asset], symbols: list[Symbol], cmds: np.ndarray,
           dust: int = R.DUST_RELEASE, capacity: Capacity = Capacity()) -> tuple[Reference, Events]:
    """Run `cmds` through a fresh Reference; return it and all the events."""
    ref = Reference(assets, symbols, dust, capacity)
    return ref, ref.apply(cmds)


__all__ = ["Reference", "Events", "replay", "fee", "INT64_MAX", "QTY_UNLIMITED"]
