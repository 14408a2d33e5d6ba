"""`xinf gen-fixture`: a deterministic synthetic dataset in the golden formats.

Shape of the data (modelled on the golden zxi-100k set):

- Users 1..U; assets BTC (id 1, 8 decimals), USDT (2, 2 decimals), ETH (3, 8
  decimals) as in the golden sets, plus the base asset of each extra symbol.
  Symbols: BTC_USDT (2 price decimals, mid 85000.00), then ETH_USDT (4 price
  decimals, mid 3200.0000), SOL_USDT, BNB_USDT; each has its own mid and size.
- Place rows get order ids 1, 2, 3... in file order. Limit prices are around a
  constant mid, buys centred 0.17% below it and sells 0.17% above, spread about
  0.36% (so roughly half the orders cross and the book holds tens of thousands
  of levels); quantities are log-normal (median 0.1 BTC or its value) with 6
  decimals. A chosen share of places is IOC, another share market (a market buy
  carries a quote budget in `amount`, half of them also a qty cap).
- `--orders N` counts every row; exactly round(N*ratio) rows are cancels (and
  likewise reduces and moves). Each comes a short random delay after the place
  of its target and carries the target's owner. Targets are distinct orders
  while there are enough: 4% are ids never placed; of the others 80% are
  passive orders (priced away from the mid, likely still resting), the rest any
  order (IOC, market, crossing limits: mostly filled already). On the 1.3M-row
  recipe about 72% of the cancels find their order open.
- Balances: `high` gives each user 125% of what all their orders could ever
  lock (no place is rejected for its balance); `low` gives a fraction of it
  (8% of the users 0.5-3%, the others 15-70%), so many orders are rejected
  for insufficient balance.

Determinism: everything comes from numpy's PCG64(seed) through
`Generator.random` (uniform doubles, a stable stream) transformed by plain
IEEE arithmetic, which gives the same bits on every platform: the log-normal
and normal shapes use sums of uniforms and a lookup table instead of
exp/log ufuncs, whose last bit may differ between CPUs. No clock, no global
RNG. The same arguments always produce byte-identical files; fixtures/recipes.toml
records their SHA-256.

orders.csv is in the 6-column format (order_id,user_id,action,side,price,qty)
when only places and cancels on one symbol occur, the extended format otherwise.
orders.csv and balances_init.csv end lines in CRLF, the config files in LF, as
the golden sets do.
"""
from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import sys
import time

import numpy as np
from numba import njit

from xinfinity.edge.csv_format import put_int as _put_int  # the one numba integer formatter

MAX_SYMBOLS = 4
USDT_ID, USDT_DECIMALS = 2, 2
FEE_MAKER_PPM, FEE_TAKER_PPM = 200, 500
CHUNK_ROWS = 65536


@dataclasses.dataclass(frozen=True)
class Market:
    symbol: str
    base: str
    base_id: int
    base_display: int
    price_decimals: int
    mid: int               # price units
    median_qty6: int       # median order size in 10^-6 base units


MARKETS = (
    Market("BTC_USDT", "BTC", 1, 6, 2, 8_500_000, 100_000),
    Market("ETH_USDT", "ETH", 3, 4, 4, 32_000_000, 2_600_000),
    Market("SOL_USDT", "SOL", 4, 4, 4, 1_400_000, 60_000_000),
    Market("BNB_USDT", "BNB", 5, 4, 4, 6_000_000, 14_000_000),
)
BASE_DECIMALS = 8          # every base asset; quantities are written with 6 decimals

# Command codes of the generator (the orders.csv action words, in this order).
A_PLACE, A_CANCEL, A_REDUCE, A_MOVE = 0, 1, 2, 3
ACTIONS = ("place", "cancel", "reduce", "move")
SIDES = ("buy", "sell")
TYPES = ("limit", "market")
TIFS = ("gtc", "ioc")

# Price offsets from the mid, as fractions (see the module docstring).
SIDE_SHIFT = 0.0017
PRICE_SPREAD = 0.0036
PRICE_CLIP = 0.05
QTY_SIGMA = 1.5
QTY_MAX_FACTOR = 100       # largest order = 100 x the median (10 BTC)
# Targets of cancel/reduce/move rows.
UNKNOWN_SHARE = 0.04       # ids never placed
PASSIVE_SHARE = 0.80       # of the others: resting-prone orders first
MAX_DELAY = 200_000        # rows after the target, at most (skewed short: u^3)


@dataclasses.dataclass(frozen=True)
class GenParams:
    orders: int = 100_000
    cancel_ratio: float = 0.0
    users: int = 1000
    seed: int = 1
    ioc_ratio: float = 0.0
    market_ratio: float = 0.0
    move_ratio: float = 0.0
    reduce_ratio: float = 0.0
    symbols: int = 1
    balance: str = "high"
    fees: bool = False

    def counts(self) -> dict[str, int]:
        """Exact row counts of each kind, as the options define them."""
        cancels = round(self.orders * self.cancel_ratio)
        reduces = round(self.orders * self.reduce_ratio)
        moves = round(self.orders * self.move_ratio)
        places = self.orders - cancels - reduces - moves
        markets = round(places * self.market_ratio)
        iocs = round(places * self.ioc_ratio)
        return {"rows": self.orders, "places": places, "cancels": cancels, "reduces": reduces,
                "moves": moves, "markets": markets, "iocs": iocs}

    def validate(self) -> None:
        if self.orders < 1:
            raise ValueError("--orders must be at least 1")
        if self.users < 1:
            raise ValueError("--users must be at least 1")
        if not 1 <= self.symbols <= MAX_SYMBOLS:
            raise ValueError(f"--symbols must be in 1..{MAX_SYMBOLS}")
        if self.balance not in ("low", "high"):
            raise ValueError("--balance must be low or high")
        if not 0 <= self.seed < 2**128:
            raise ValueError("--seed must be a non-negative integer")
        for name in ("cancel_ratio", "ioc_ratio", "market_ratio", "move_ratio", "reduce_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"--{name.replace('_', '-')} must be in 0..1")
        c = self.counts()
        if c["places"] < 1:
            raise ValueError("cancel + reduce + move ratios leave no place row")
        if c["markets"] + c["iocs"] > c["places"]:
            raise ValueError("--ioc-ratio + --market-ratio must not exceed 1")

    @property
    def extended(self) -> bool:
        c = self.counts()
        return bool(c["reduces"] or c["moves"] or c["markets"] or c["iocs"] or self.symbols > 1)


# -- deterministic shapes from uniform doubles --------------------------------

def _uniform_int(u: np.ndarray, n) -> np.ndarray:
    """floor(u * n) for u in [0, 1), clamped below n; n an int or an int array."""
    n = np.asarray(n, np.int64)
    return np.minimum(np.floor(u * n).astype(np.int64), np.maximum(n - 1, 0))


def _normal(rng: np.random.Generator, n: int) -> np.ndarray:
    """Approximately standard normal: the sum of 6 uniforms, centred and scaled."""
    z = rng.random(n)
    for _ in range(5):
        z += rng.random(n)
    return (z - 3.0) * math.sqrt(2.0)


_EXP_LO, _EXP_HI, _EXP_STEPS = -8.0, 8.0, 16384
_EXP_TABLE = np.array([math.exp(_EXP_LO + (_EXP_HI - _EXP_LO) * i / _EXP_STEPS)
                       for i in range(_EXP_STEPS + 1)])


def _exp(x: np.ndarray) -> np.ndarray:
    """exp(x) for x in [-8, 8] by linear interpolation in a fixed table (plain IEEE ops)."""
    pos = (np.clip(x, _EXP_LO, _EXP_HI) - _EXP_LO) * (_EXP_STEPS / (_EXP_HI - _EXP_LO))
    i = np.minimum(np.floor(pos).astype(np.int64), _EXP_STEPS - 1)
    frac = pos - i
    return _EXP_TABLE[i] + frac * (_EXP_TABLE[i + 1] - _EXP_TABLE[i])


def _choose(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """k distinct indices of range(n), in random order (a stable sort of random keys)."""
    return np.argsort(rng.random(n), kind="stable")[:k]


def _cost(price: np.ndarray, qty6: np.ndarray, price_decimals: int) -> np.ndarray:
    """Exact quote cost in USDT units of qty6 (10^-6 base) at price (10^-pd quote)."""
    return (price * qty6) // 10 ** (6 + price_decimals - USDT_DECIMALS)


# -- generation ------------------------------------------------------------------

def _places(rng, p: GenParams, n_place: int, markets: tuple[Market, ...]) -> dict[str, np.ndarray]:
    """Attributes of every place, indexed by order id - 1."""
    c = p.counts()
    user = 1 + _uniform_int(rng.random(n_place), p.users)
    sym = _uniform_int(rng.random(n_place), len(markets))
    side = (rng.random(n_place) >= 0.5).astype(np.int64)
    picked = _choose(rng, n_place, c["markets"] + c["iocs"])
    otype = np.zeros(n_place, np.int64)
    tif = np.zeros(n_place, np.int64)
    otype[picked[:c["markets"]]] = 1
    tif[picked[c["markets"]:]] = 1
    mid = np.array([m.mid for m in markets], np.int64)[sym]
    median = np.array([m.median_qty6 for m in markets], np.int64)[sym]
    offset = np.where(side == 0, -SIDE_SHIFT, SIDE_SHIFT) + PRICE_SPREAD * _normal(rng, n_place)
    offset = np.clip(offset, -PRICE_CLIP, PRICE_CLIP)
    price = np.rint(mid * (1.0 + offset)).astype(np.int64)
    qty6 = np.rint(median * _exp(QTY_SIGMA * _normal(rng, n_place))).astype(np.int64)
    qty6 = np.clip(qty6, 1, median * QTY_MAX_FACTOR)
    # Market orders: no price; a buy's budget is the cost of its size at the
    # mid, times 0.5..1.5, and half the buys also carry their qty as a cap.
    market = otype == 1
    price_decimals = np.array([m.price_decimals for m in markets], np.int64)[sym]
    budget_scale = 0.5 + rng.random(n_place)
    cap_qty = rng.random(n_place) < 0.5
    amount = np.zeros(n_place, np.int64)
    for k, m in enumerate(markets):
        sel = market & (side == 0) & (sym == k)
        base = _cost(mid[sel], qty6[sel], m.price_decimals)
        amount[sel] = np.maximum(1, np.floor(base * budget_scale[sel]).astype(np.int64))
    qty6 = np.where(market & (side == 0) & ~cap_qty, 0, qty6)
    price = np.where(market, 0, price)
    passive = (~market) & (tif == 0) & (np.where(side == 0, -offset, offset) > 0.002)
    return {"user": user, "sym": sym, "side": side, "otype": otype, "tif": tif, "price": price,
            "qty6": qty6, "amount": amount, "price_decimals": price_decimals, "passive": passive}


def _actions(rng, p: GenParams, pl: dict, act_kind: np.ndarray,
             markets: tuple[Market, ...]) -> dict[str, np.ndarray]:
    """Targets, fields and row times of the cancel/reduce/move rows.

    Targets are distinct orders while there are enough: first passive ones
    (priced away from the mid, so likely still resting), then any others (IOC,
    market, crossing limits: mostly filled already); UNKNOWN_SHARE of the rows
    target an id that is never placed. Each row comes a random delay (skewed
    short) after its target's place row; `time` orders it among the places,
    whose time is their index.
    """
    n_place, n = pl["user"].shape[0], act_kind.shape[0]
    n_unknown = round(n * UNKNOWN_SHARE)
    n_known = n - n_unknown
    perm = _choose(rng, n_place, n_place)
    passive = perm[pl["passive"][perm]]
    others = perm[~pl["passive"][perm]]
    a = min(passive.shape[0], round(PASSIVE_SHARE * n_known))
    pool = np.concatenate([passive[:a], others, passive[a:]])[:n_known]
    if n_known > n_place:                 # more actions than orders: repeat some targets
        pool = np.concatenate([pool, _uniform_int(rng.random(n_known - n_place), n_place)])
    slots = _choose(rng, n, n)            # which action rows get the known targets
    known = np.zeros(n, bool)
    known[slots[:n_known]] = True
    t = np.zeros(n, np.int64)             # target index (order id - 1) of known targets
    t[slots[:n_known]] = pool
    u = rng.random(n)
    delay = 1 + _uniform_int(u * u * u, min(max(n_place // 2, 1), MAX_DELAY))
    time = np.where(known, t + delay + 0.5, rng.random(n) * n_place + 0.25)
    target = np.where(known, t + 1, n_place + 1 + _uniform_int(rng.random(n), n_place))
    user = np.where(known, pl["user"][t], 1 + _uniform_int(rng.random(n), p.users))
    sym = np.where(known, pl["sym"][t], _uniform_int(rng.random(n), len(markets)))
    mid = np.array([m.mid for m in markets], np.int64)[sym]
    median = np.array([m.median_qty6 for m in markets], np.int64)[sym]
    # Reduce by 5%..125% of the target's size (a fifth of them remove it all).
    size = np.where(known & (pl["qty6"][t] > 0), pl["qty6"][t], median)
    reduce_by = np.maximum(1, np.floor(size * (0.05 + 1.2 * rng.random(n))).astype(np.int64))
    # Move within 1% of the target's price (some cross the book).
    old = np.where(known & (pl["price"][t] > 0), pl["price"][t], mid)
    new_price = np.maximum(1, np.rint(old * (1.0 + 0.02 * (rng.random(n) - 0.5))).astype(np.int64))
    return {"target": target, "user": user, "sym": sym, "reduce_by": reduce_by,
            "new_price": new_price, "time": time,
            "price_decimals": np.array([m.price_decimals for m in markets], np.int64)[sym]}


def _rows(rng, p: GenParams, markets) -> tuple[dict[str, np.ndarray], dict]:
    """Every orders.csv row as columns (-1 = empty field), plus the place attributes."""
    c = p.counts()
    n_place = c["places"]
    act_kind = np.concatenate([np.full(c["cancels"], A_CANCEL), np.full(c["reduces"], A_REDUCE),
                               np.full(c["moves"], A_MOVE)]).astype(np.int64)
    act_kind = act_kind[_choose(rng, act_kind.shape[0], act_kind.shape[0])]
    pl = _places(rng, p, n_place, markets)
    ac = _actions(rng, p, pl, act_kind, markets)
    # Rows in time order: place i at time i, each action after its target.
    order = np.argsort(np.concatenate([np.arange(n_place, dtype=np.float64), ac["time"]]),
                       kind="stable")
    market = pl["otype"] == 1
    n_act = act_kind.shape[0]
    none = np.full(n_act, -1, np.int64)
    cols = {
        "action": (np.full(n_place, A_PLACE), act_kind),
        "order_id": (np.arange(1, n_place + 1), ac["target"]),
        "user": (pl["user"], ac["user"]),
        "sym": (pl["sym"], ac["sym"]),
        "price_decimals": (pl["price_decimals"], ac["price_decimals"]),
        "side": (pl["side"], none),
        "price": (np.where(market, -1, pl["price"]),
                  np.where(act_kind == A_MOVE, ac["new_price"], -1)),
        "qty6": (np.where(market & (pl["qty6"] == 0), -1, pl["qty6"]),
                 np.where(act_kind == A_REDUCE, ac["reduce_by"], -1)),
        "amount": (np.where(market & (pl["side"] == 0), pl["amount"], -1), none),
        "otype": (pl["otype"] if p.extended else np.full(n_place, -1), none),
        "tif": (np.where(market, -1, pl["tif"]) if p.extended else np.full(n_place, -1), none),
    }
    rows = {k: np.concatenate([a.astype(np.int64), b.astype(np.int64)])[order]
            for k, (a, b) in cols.items()}
    assert rows["action"][0] == A_PLACE
    return rows, pl


def _balances(p: GenParams, rng, pl: dict, markets) -> tuple[np.ndarray, list[int]]:
    """(users x assets) avail in raw units, and the asset ids of its columns."""
    asset_ids = sorted([USDT_ID] + [m.base_id for m in markets])
    col = {a: k for k, a in enumerate(asset_ids)}
    need = np.zeros((p.users + 1, len(asset_ids)), np.int64)
    buy, sell, market = pl["side"] == 0, pl["side"] == 1, pl["otype"] == 1
    for k, m in enumerate(markets):
        s = pl["sym"] == k
        lim_buy = s & buy & ~market
        cost = _cost(pl["price"][lim_buy], pl["qty6"][lim_buy], m.price_decimals)
        np.add.at(need[:, col[USDT_ID]], pl["user"][lim_buy], cost + 1)
        mkt_buy = s & buy & market
        np.add.at(need[:, col[USDT_ID]], pl["user"][mkt_buy], pl["amount"][mkt_buy])
        sells = s & sell
        np.add.at(need[:, col[m.base_id]], pl["user"][sells],
                  pl["qty6"][sells] * 10 ** (BASE_DECIMALS - 6))
    need = need[1:]
    whole = np.array([10 ** (USDT_DECIMALS if a == USDT_ID else BASE_DECIMALS) for a in asset_ids],
                     np.int64)
    if p.balance == "high":
        # Moves can raise a buy's lock by 1% (or more, moved again): 25% margin.
        avail = need + need // 4 + whole
    else:
        poor = rng.random(p.users) < 0.08
        permille = np.where(poor, 5 + _uniform_int(rng.random(p.users), 26),
                            150 + _uniform_int(rng.random(p.users), 551))
        avail = need * permille[:, None] // 1000
    totals = [sum(int(v) for v in avail[:, k]) for k in range(len(asset_ids))]
    if max(totals) >= 2**63:
        raise ValueError("balances would overflow an asset's int64 total: use fewer orders or users")
    return avail, asset_ids


# -- output ----------------------------------------------------------------------

@njit(cache=True)
def _put_decimal(out, pos, v, decimals):
    """v units of 10^-decimals, with exactly `decimals` fractional digits."""
    scale = 1
    for _ in range(decimals):
        scale *= 10
    pos = _put_int(out, pos, v // scale)
    if decimals > 0:
        out[pos] = 46
        f = v % scale
        for k in range(decimals, 0, -1):
            out[pos + k] = 48 + f % 10
            f //= 10
        pos += decimals + 1
    return pos


@njit(cache=True)
def _put_word(out, pos, table, lens, k):
    for j in range(lens[k]):
        out[pos + j] = table[k, j]
    return pos + lens[k]


@njit(cache=True)
def _format_orders(out, extended, order_id, user, action, side, price, price_decimals, qty6, otype, tif,
                   amount, sym, words, wlens):
    """Render rows as CSV bytes (CRLF); a field < 0 is written empty. Returns the length.

    words/wlens tables: 0 actions, 1 sides, 2 order types, 3 tifs, 4 symbol names.
    """
    pos = 0
    for i in range(order_id.shape[0]):
        pos = _put_int(out, pos, order_id[i])
        out[pos] = 44
        pos = _put_int(out, pos + 1, user[i])
        out[pos] = 44
        pos = _put_word(out, pos + 1, words[0], wlens[0], action[i])
        out[pos] = 44
        pos += 1
        if side[i] >= 0:
            pos = _put_word(out, pos, words[1], wlens[1], side[i])
        out[pos] = 44
        pos += 1
        if price[i] >= 0:
            pos = _put_decimal(out, pos, price[i], price_decimals[i])
        out[pos] = 44
        pos += 1
        if qty6[i] >= 0:
            pos = _put_decimal(out, pos, qty6[i], 6)
        if extended:
            out[pos] = 44
            pos += 1
            if otype[i] >= 0:
                pos = _put_word(out, pos, words[2], wlens[2], otype[i])
            out[pos] = 44
            pos += 1
            if tif[i] >= 0:
                pos = _put_word(out, pos, words[3], wlens[3], tif[i])
            out[pos] = 44
            pos += 1
            if amount[i] >= 0:
                pos = _put_decimal(out, pos, amount[i], 2)
            out[pos] = 44
            pos = _put_word(out, pos + 1, words[4], wlens[4], sym[i])
        out[pos] = 13
        out[pos + 1] = 10
        pos += 2
    return pos


def _word_tables(symbol_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    lists = [ACTIONS, SIDES, TYPES, TIFS, symbol_names]
    width = max(len(w) for names in lists for w in names)
    rows = max(len(names) for names in lists)
    words = np.zeros((len(lists), rows, width), np.uint8)
    wlens = np.zeros((len(lists), rows), np.int64)
    for t, names in enumerate(lists):
        for k, w in enumerate(names):
            words[t, k, :len(w)] = np.frombuffer(w.encode(), np.uint8)
            wlens[t, k] = len(w)
    return words, wlens


def _write_orders(path: pathlib.Path, rows: dict, p: GenParams, markets, advance) -> None:
    header = ("order_id,user_id,action,side,price,qty,order_type,tif,amount,symbol"
              if p.extended else "order_id,user_id,action,side,price,qty")
    words, wlens = _word_tables([m.symbol for m in markets])
    buf = np.zeros(CHUNK_ROWS * 192, np.uint8)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(header.encode() + b"\r\n")
        for s in range(0, p.orders, CHUNK_ROWS):
            e = min(p.orders, s + CHUNK_ROWS)
            cols = [rows[k][s:e] for k in ("order_id", "user", "action", "side", "price", "price_decimals",
                                           "qty6", "otype", "tif", "amount", "sym")]
            n = _format_orders(buf, p.extended, *cols, words, wlens)
            f.write(buf[:n].tobytes())
            advance(e - s)
    os.replace(tmp, path)


def _write_text(path: pathlib.Path, lines: list[str], eol: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes("".join(line + eol for line in lines).encode())
    os.replace(tmp, path)


def _write_configs(out: pathlib.Path, p: GenParams, markets) -> None:
    assets = [(1, "BTC", 8, 6), (USDT_ID, "USDT", USDT_DECIMALS, 2), (3, "ETH", 8, 4)]
    assets += [(m.base_id, m.base, BASE_DECIMALS, m.base_display) for m in markets
               if m.base_id not in (1, 3)]
    lines = ["asset_id,asset,decimals,display_decimals"]
    lines += [f"{a},{n},{d},{dd}" for a, n, d, dd in sorted(assets)]
    _write_text(out / "assets_config.csv", lines, "\n")
    head = "symbol_id,symbol,base_asset_id,quote_asset_id,price_decimal,price_display_decimal"
    fee_user = p.users + 1
    lines = [head + (",maker_fee_ppm,taker_fee_ppm,fee_user_id,stp" if p.fees else "")]
    for k, m in enumerate(markets):
        line = f"{k},{m.symbol},{m.base_id},{USDT_ID},{m.price_decimals},{m.price_decimals}"
        if p.fees:
            line += f",{FEE_MAKER_PPM},{FEE_TAKER_PPM},{fee_user},none"
        lines.append(line)
    _write_text(out / "symbols_config.csv", lines, "\n")


def generate(p: GenParams, out_dir, progress=None) -> dict:
    """Write the dataset of `p` into out_dir; returns the row counts and timing.

    progress: an optional callable(rows_done_increment) for a progress display.
    """
    p.validate()
    t0 = time.perf_counter()
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    advance = progress or (lambda n: None)
    markets = MARKETS[:p.symbols]
    rng = np.random.Generator(np.random.PCG64(p.seed))
    rows, pl = _rows(rng, p, markets)
    avail, asset_ids = _balances(p, rng, pl, markets)
    _write_configs(out, p, markets)
    lines = ["user_id,asset_id,avail,frozen,version"]
    for u in range(p.users):
        lines += [f"{u + 1},{a},{int(avail[u, k])},0,0" for k, a in enumerate(asset_ids)]
    _write_text(out / "balances_init.csv", lines, "\r\n")
    _write_orders(out / "orders.csv", rows, p, markets, advance)
    result = dict(p.counts())
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result


# -- CLI -------------------------------------------------------------------------

def add_arguments(parser) -> None:
    d = GenParams()
    parser.add_argument("--orders", type=int, default=d.orders, help="rows of orders.csv, all kinds")
    parser.add_argument("--cancel-ratio", type=float, default=d.cancel_ratio,
                        help="share of rows that cancel (exactly round(N*R) rows)")
    parser.add_argument("--users", type=int, default=d.users)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--ioc-ratio", type=float, default=0.0, help="share of places that are IOC limits")
    parser.add_argument("--market-ratio", type=float, default=0.0, help="share of places that are market orders")
    parser.add_argument("--move-ratio", type=float, default=0.0, help="share of rows that move an order")
    parser.add_argument("--reduce-ratio", type=float, default=0.0, help="share of rows that reduce an order")
    parser.add_argument("--symbols", type=int, default=1,
                        help=f"symbols traded, 1..{MAX_SYMBOLS}: " + ", ".join(m.symbol for m in MARKETS))
    parser.add_argument("--balance", choices=["low", "high"], default="high",
                        help="low: many places rejected for insufficient balance; high: none")
    parser.add_argument("--fees", action="store_true", help="maker/taker fees and a fee account")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def params_from_args(args) -> GenParams:
    return GenParams(orders=args.orders, cancel_ratio=args.cancel_ratio, users=args.users,
                     seed=args.seed, ioc_ratio=args.ioc_ratio, market_ratio=args.market_ratio,
                     move_ratio=args.move_ratio, reduce_ratio=args.reduce_ratio,
                     symbols=args.symbols, balance=args.balance, fees=args.fees)


def run_with_progress(p: GenParams, out_dir, quiet: bool = False) -> dict:
    """generate() with a rich progress bar on stderr when it is a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    console = Console(stderr=True)
    show = not quiet and sys.stderr.isatty()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, disable=not show, transient=True) as bar:
        task = bar.add_task(f"gen-fixture {pathlib.Path(out_dir).name}", total=p.orders)
        return generate(p, out_dir, lambda n: bar.advance(task, n))


def summary_line(p: GenParams, out_dir, r: dict) -> str:
    return (f"gen-fixture: {r['rows']} rows ({r['places']} places, {r['cancels']} cancels, "
            f"{r['reduces']} reduces, {r['moves']} moves; {r['markets']} market, {r['iocs']} ioc), "
            f"{p.users} users, {p.symbols} symbol{'s' if p.symbols > 1 else ''}, "
            f"balance {p.balance}{', fees' if p.fees else ''}, seed {p.seed} -> {out_dir} "
            f"in {r['seconds']:.2f} s")


def main(args) -> int:
    p = params_from_args(args)
    try:
        p.validate()
    except ValueError as e:
        print(f"gen-fixture: {e}", file=sys.stderr)
        return 2
    r = run_with_progress(p, args.out, args.quiet)
    print(summary_line(p, args.out, r))
    return 0
