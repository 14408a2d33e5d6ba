"""Record layouts: every command, event, message and state slot, defined once.

All layouts are little-endian numpy structured dtypes with explicit offsets and
no hidden padding; each size is asserted at import. Rings, the WAL, event files
and the numba kernels all import these; nothing else defines a layout.

Codes (command kinds, sides, statuses, reasons, balance ops) are small integers
defined here as module constants so numba sees them as compile-time globals.

Money fields are int64 in the smallest unit of their asset (see
spec/TRADING_RULES.md section 1). A quantity of ``QTY_UNLIMITED`` means "no
quantity limit" (a market buy bounded by its quote budget only).
"""
import numpy as np

INT64_MAX = np.int64(2**63 - 1)
QTY_UNLIMITED = INT64_MAX

# -- command kinds -----------------------------------------------------------
CMD_PLACE = 1
CMD_CANCEL = 2
CMD_REDUCE = 3
CMD_MOVE = 4
CMD_DEPOSIT = 5
CMD_WITHDRAW = 6
# Internal to the MT pipeline, never a client command: UBSCore -> ME "every
# command up to `seq` has been sent", echoed by the ME in the settle stream.
CMD_MARK = 15
CMD_NAMES = {CMD_PLACE: "place", CMD_CANCEL: "cancel", CMD_REDUCE: "reduce",
             CMD_MOVE: "move", CMD_DEPOSIT: "deposit", CMD_WITHDRAW: "withdraw"}

SIDE_BUY = 0
SIDE_SELL = 1
SIDE_NAMES = {SIDE_BUY: "buy", SIDE_SELL: "sell"}

TYPE_LIMIT = 0
TYPE_MARKET = 1
TYPE_NAMES = {TYPE_LIMIT: "limit", TYPE_MARKET: "market"}

TIF_GTC = 0
TIF_IOC = 1
TIF_NAMES = {TIF_GTC: "gtc", TIF_IOC: "ioc"}

# -- order event statuses ----------------------------------------------------
ST_ACCEPTED = 1
ST_REJECTED = 2
ST_PARTIALLY_FILLED = 3
ST_FILLED = 4
ST_CANCELLED = 5
ST_EXPIRED = 6
ST_REDUCED = 7
ST_MOVED = 8
STATUS_NAMES = {ST_ACCEPTED: "accepted", ST_REJECTED: "rejected",
                ST_PARTIALLY_FILLED: "partially_filled", ST_FILLED: "filled",
                ST_CANCELLED: "cancelled", ST_EXPIRED: "expired",
                ST_REDUCED: "reduced", ST_MOVED: "moved"}

# -- rejection / expiry reasons ---------------------------------------------
R_NONE = 0
R_INVALID_PRICE = 1
R_INVALID_QUANTITY = 2
R_USER_NOT_FOUND = 3
R_ASSET_NOT_FOUND = 4
R_INSUFFICIENT_BALANCE = 5
R_ORDER_NOT_FOUND = 6
R_DUPLICATE_ORDER_ID = 7
R_ORDER_CAPACITY = 8
R_USER_CAPACITY = 9
R_OVERFLOW = 10
R_SELF_TRADE = 11
R_BOOK_CAPACITY = 12
R_INVALID_COMMAND = 13
R_DUPLICATE_CID = 14
REASON_TEXT = {
    R_NONE: "", R_INVALID_PRICE: "Invalid price", R_INVALID_QUANTITY: "Invalid quantity",
    R_USER_NOT_FOUND: "User not found", R_ASSET_NOT_FOUND: "Asset not found",
    R_INSUFFICIENT_BALANCE: "Insufficient balance", R_ORDER_NOT_FOUND: "Order not found",
    R_DUPLICATE_ORDER_ID: "Duplicate order id", R_ORDER_CAPACITY: "Order capacity exceeded",
    R_USER_CAPACITY: "User capacity exceeded", R_OVERFLOW: "Amount overflows",
    R_SELF_TRADE: "Self-trade prevented", R_BOOK_CAPACITY: "Price level capacity exceeded",
    R_INVALID_COMMAND: "Invalid command", R_DUPLICATE_CID: "Duplicate client order id",
}

# -- balance operations ------------------------------------------------------
OP_DEPOSIT = 1     # avail += x
OP_WITHDRAW = 2    # avail -= x
OP_LOCK = 3        # avail -= x, frozen += x
OP_UNLOCK = 4      # frozen -= x, avail += x
OP_SPEND = 5       # frozen -= x (trade debit)
OP_CREDIT = 6      # avail += x (trade credit, net of fee)
OP_FEE = 7         # avail += x on the fee account
OP_NAMES = {OP_DEPOSIT: "deposit", OP_WITHDRAW: "withdraw", OP_LOCK: "lock",
            OP_UNLOCK: "unlock", OP_SPEND: "spend", OP_CREDIT: "credit", OP_FEE: "fee"}

# -- self-trade prevention modes (per symbol) --------------------------------
STP_NONE = 0
STP_EXPIRE_TAKER = 1
STP_EXPIRE_MAKER = 2
STP_EXPIRE_BOTH = 3
STP_NAMES = {STP_NONE: "none", STP_EXPIRE_TAKER: "expire_taker",
             STP_EXPIRE_MAKER: "expire_maker", STP_EXPIRE_BOTH: "expire_both"}
STP_CODES = {v: k for k, v in STP_NAMES.items()}

# -- dust policies -----------------------------------------------------------
DUST_RELEASE = 0
DUST_KEEP = 1
DUST_NAMES = {DUST_RELEASE: "release", DUST_KEEP: "keep"}
DUST_CODES = {v: k for k, v in DUST_NAMES.items()}

# -- settle message kinds (ME -> UBSCore) ------------------------------------
SETTLE_TRADE = 1
SETTLE_RELEASE = 2
SETTLE_REDUCE = 3
SETTLE_MARK = 4     # the ME has fully processed every command up to `seq`


def words(records: np.ndarray) -> np.ndarray:
    """Records (any layout here: sizes are multiples of 8) as rows of uint64
    words sharing their memory: how rings, buffers and the WAL copy them."""
    return records.view(np.uint64).reshape(len(records), records.dtype.itemsize // 8)


def _dtype(fields, size):
    """Build a packed little-endian dtype from (name, type[, count]) fields and assert its size."""
    names, formats, offsets, off = [], [], [], 0
    for field in fields:
        name, fmt = field[0], field[1]
        t = np.dtype((fmt, field[2])) if len(field) == 3 else np.dtype(fmt).newbyteorder("<")
        names.append(name)
        formats.append(t)
        offsets.append(off)
        off += t.itemsize
    assert off == size, f"layout is {off} bytes, expected {size}"
    # align=True (offsets above are already natural) lets numba emit aligned loads.
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": size},
                    align=True)


# Command, as it enters UBSCore and (accepted) travels on to the ME.
#  0 seq  8 ts  16 order_id  24 user_id  32 price  40 qty  48 amount
# 56 ref(i4)  60 symbol(u2)  62 kind  63 side  64 order_type  65 tif
# 66 source  67 reserved  68 tag(u4)  72 cid
# price: limit price, or the new price of a move. qty: order qty, or the
# reduce-by qty of a reduce. amount: quote budget of a market buy, or the
# amount of a deposit/withdraw (whose asset id is in `symbol`). ref: UBSCore's
# order slot, set by UBSCore for the ME. order_id 0 on a place: UBSCore gives
# it the command's seq (how the gateway's orders get ids unique for ever).
# cid: a client order id's 63-bit hash (0: none), unique among the user's open
# orders. ts: nanoseconds, observation only (no state machine reads it); 0
# until a command's point of entry sets it. source (1 + the gateway worker, 0:
# none) and tag (that worker's request number) route the acknowledgement
# back; no state machine reads them either.
CMD = _dtype([
    ("seq", "i8"), ("ts", "i8"), ("order_id", "i8"), ("user_id", "i8"),
    ("price", "i8"), ("qty", "i8"), ("amount", "i8"),
    ("ref", "i4"), ("symbol", "u2"), ("kind", "u1"), ("side", "u1"),
    ("order_type", "u1"), ("tif", "u1"), ("source", "u1"), ("reserved", "u1", 1),
    ("tag", "u4"), ("cid", "i8"),
], 80)

# Order event (ME, or UBSCore for the rejections it decides).
#  0 seq 8 order_id 16 user_id 24 price 32 qty 40 filled_qty 48 avg_price
# 56 last_qty 64 last_price 72 trade_id 80 symbol(u2) 82 kind 83 status
# 84 reason 85 side 86 order_type 87 tif
# last_qty/last_price/trade_id describe the fill of this event (0 otherwise);
# for `reduced`, last_qty is the quantity removed.
ORDER_EVENT = _dtype([
    ("seq", "i8"), ("order_id", "i8"), ("user_id", "i8"), ("price", "i8"),
    ("qty", "i8"), ("filled_qty", "i8"), ("avg_price", "i8"), ("last_qty", "i8"),
    ("last_price", "i8"), ("trade_id", "i8"),
    ("symbol", "u2"), ("kind", "u1"), ("status", "u1"), ("reason", "u1"),
    ("side", "u1"), ("order_type", "u1"), ("tif", "u1"),
], 88)

# Trade event (ME).
#  0 trade_id 8 seq 16 price 24 qty 32 quote_qty 40 buyer_order_id
# 48 seller_order_id 56 buyer_user_id 64 seller_user_id 72 buyer_fee
# 80 seller_fee 88 symbol(u2) 90 taker_side 91..95 reserved
# buyer_fee is in base units, seller_fee in quote units.
TRADE_EVENT = _dtype([
    ("trade_id", "i8"), ("seq", "i8"), ("price", "i8"), ("qty", "i8"),
    ("quote_qty", "i8"), ("buyer_order_id", "i8"), ("seller_order_id", "i8"),
    ("buyer_user_id", "i8"), ("seller_user_id", "i8"), ("buyer_fee", "i8"),
    ("seller_fee", "i8"), ("symbol", "u2"), ("taker_side", "u1"), ("reserved", "u1", 5),
], 96)

# Balance event (UBSCore).
#  0 seq 8 trade_id 16 user_id 24 amount 32 avail 40 frozen 48 version
# 56 asset(u2) 58 op 59 reason 60..63 reserved
# amount >= 0; op gives the direction. reason != 0 marks a refused
# deposit/withdraw (nothing changed; avail/frozen/version are the current ones).
BALANCE_EVENT = _dtype([
    ("seq", "i8"), ("trade_id", "i8"), ("user_id", "i8"), ("amount", "i8"),
    ("avail", "i8"), ("frozen", "i8"), ("version", "i8"),
    ("asset", "u2"), ("op", "u1"), ("reason", "u1"), ("reserved", "u1", 4),
], 64)

# Acknowledgement, settlement -> the gateway worker a command came from: the
# command's outcome once it is durable and the ME has run it.
#  0 seq 8 order_id 16 filled_qty 24 avail 32 frozen 40 tag(u4) 44 kind
# 45 status 46 reason 47 reserved
# status: the order's ST_* after the command (ST_REJECTED: the command was
# refused, reason says why); avail/frozen: a deposit's or withdrawal's balance after.
ACK = _dtype([
    ("seq", "i8"), ("order_id", "i8"), ("filled_qty", "i8"), ("avail", "i8"), ("frozen", "i8"),
    ("tag", "u4"), ("kind", "u1"), ("status", "u1"), ("reason", "u1"), ("reserved", "u1", 1),
], 48)

# Push record, settlement -> every gateway worker: one event of a durable
# command, with that command's entry time, for market data and the private
# streams (marketdata/, gateway/ws/). `body` holds the event's own record
# (ORDER_EVENT, TRADE_EVENT or BALANCE_EVENT by `kind`), zero-padded. A
# PUSH_GAP record says records were dropped before it (the worker was not
# taking them): what the worker built from them must be rebuilt.
PUSH_GAP, PUSH_ORDER, PUSH_TRADE, PUSH_BALANCE = 0, 1, 2, 3
#  0 ts 8 kind(u1) 9..15 reserved 16 body(96)
PUSH = _dtype([("ts", "i8"), ("kind", "u1"), ("reserved", "u1", 7), ("body", "u1", 96)], 112)
PUSH_BODY = {PUSH_ORDER: ORDER_EVENT, PUSH_TRADE: TRADE_EVENT, PUSH_BALANCE: BALANCE_EVENT}

# Settle message, ME -> UBSCore: a trade to settle, or an order that left the
# book (release its lock), or an order reduced in place.
#  0 seq 8 trade_id 16 price 24 qty 32 quote_qty 40 buyer_fee 48 seller_fee
# 56 buyer_ref(i4) 60 seller_ref(i4) 64 kind 65 taker_side 66 symbol(u2) 68..71 reserved
# RELEASE/REDUCE: buyer_ref is the order's UBSCore slot, qty its remaining qty.
SETTLE = _dtype([
    ("seq", "i8"), ("trade_id", "i8"), ("price", "i8"), ("qty", "i8"),
    ("quote_qty", "i8"), ("buyer_fee", "i8"), ("seller_fee", "i8"),
    ("buyer_ref", "i4"), ("seller_ref", "i4"), ("kind", "u1"), ("taker_side", "u1"),
    ("symbol", "u2"), ("reserved", "u1", 4),
], 72)

# -- state slots -------------------------------------------------------------

# One (user, asset) balance.
BALANCE = _dtype([("avail", "i8"), ("frozen", "i8"), ("version", "i8")], 24)

# UBSCore's record of an open order: what it locked and on what terms.
#  0 order_id 8 user_id 16 price 24 remaining 32 lock 40 user_slot(i4)
# 44 symbol(u2) 46 lock_asset(u2) 48 side 49 order_type 50 in_use 51..55 reserved
# 56 cid_key: the key of the order in ref_by_cid (0: it has no client order id)
ORDER_LOCK = _dtype([
    ("order_id", "i8"), ("user_id", "i8"), ("price", "i8"), ("remaining", "i8"),
    ("lock", "i8"), ("user_slot", "i4"), ("symbol", "u2"), ("lock_asset", "u2"),
    ("side", "u1"), ("order_type", "u1"), ("in_use", "u1"), ("reserved", "u1", 5),
    ("cid_key", "i8"),
], 64)

# The ME's order slot (resting, or the taker being matched).
#  0 order_id 8 user_id 16 seq 24 price 32 qty 40 filled 48 budget
# 56 notional_hi(u8) 64 notional_lo(u8) 72 ref 76 next 80 prev 84 level (i4 each)
# 88 symbol(u2) 90 side 91 order_type 92 tif 93 stp_expired 94 in_use 95 reserved
# notional = sum(price*qty) over fills, as 128 bits, for the average price.
ORDER_SLOT = _dtype([
    ("order_id", "i8"), ("user_id", "i8"), ("seq", "i8"), ("price", "i8"),
    ("qty", "i8"), ("filled", "i8"), ("budget", "i8"),
    ("notional_hi", "u8"), ("notional_lo", "u8"),
    ("ref", "i4"), ("next", "i4"), ("prev", "i4"), ("level", "i4"),
    ("symbol", "u2"), ("side", "u1"), ("order_type", "u1"), ("tif", "u1"),
    ("stp_expired", "u1"), ("in_use", "u1"), ("reserved", "u1", 1),
], 96)

# A price level: FIFO list of order slots at one price of one book, and the
# ladder bucket that holds its price.
LEVEL = _dtype([
    ("price", "i8"), ("total_qty", "i8"), ("head", "i4"), ("tail", "i4"),
    ("count", "i4"), ("book", "i4"), ("bucket", "i4"), ("reserved", "u1", 4),
], 40)

# Per-symbol trading terms, shared by UBSCore and the ME.
# cost(p, q) = floor(p * q * cost_num / cost_den); one of num/den is 1.
SYMBOL = _dtype([
    ("cost_num", "i8"), ("cost_den", "i8"), ("maker_fee_ppm", "i8"), ("taker_fee_ppm", "i8"),
    ("fee_user_id", "i8"), ("fee_user_slot", "i4"), ("base_asset", "u2"), ("quote_asset", "u2"),
    ("stp", "u1"), ("active", "u1"), ("reserved", "u1", 6),
], 56)
