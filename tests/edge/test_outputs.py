"""Output writers (edge/outputs.py, formatting with edge/csv_format.py): exact
bytes against plain-Python formatting, and the event files. The golden comparison rules are in tests/tools/test_compare.py."""
import io
import types
from pathlib import Path

import numpy as np
import pytest

from xinfinity.engine import records as R
from xinfinity.edge import csv_format
from xinfinity.edge import outputs as O

BASELINE = Path(__file__).resolve().parents[2] / "baseline" / "zxi-100k"
I64_MIN = -(2 ** 63)
I64_MAX = 2 ** 63 - 1

BAL_ROWS = np.dtype([("user_id", "i8"), ("asset", "u2"), ("avail", "i8"),
                     ("frozen", "i8"), ("version", "i8")])
BOOK_ROWS = np.dtype([("symbol", "u2"), ("side", "u1"), ("price", "i8"), ("order_id", "i8"),
                      ("user_id", "i8"), ("qty", "i8"), ("filled", "i8"), ("lock", "i8")])


@pytest.fixture(params=[None, 3])
def chunk(request, monkeypatch):
    """Run each writer test with the real chunk size and with a tiny one (many chunks)."""
    if request.param:
        monkeypatch.setattr(csv_format, "ROWS_PER_CALL", request.param)
    return request.param


# -- reference formatting with plain Python -----------------------------------

def ledger_ref(batches):
    lines = ["trade_id,user_id,asset_id,op,delta,balance_after\n"]
    for ev in batches:
        for e in ev:
            if e["trade_id"] > 0 and e["op"] in (R.OP_SPEND, R.OP_CREDIT):
                op = "debit" if e["op"] == R.OP_SPEND else "credit"
                after = int(e["avail"]) + int(e["frozen"])
                lines.append(f"{int(e['trade_id'])},{int(e['user_id'])},{int(e['asset'])},"
                             f"{op},{int(e['amount'])},{after}\n")
    return "".join(lines).encode()


def balances_ref(rows):
    return ("user_id,asset_id,avail,frozen,version\n" + "".join(
        f"{int(r['user_id'])},{int(r['asset'])},{int(r['avail'])},{int(r['frozen'])},"
        f"{int(r['version'])}\n" for r in rows)).encode()


def orderbook_ref(rows):
    return ("order_id,user_id,side,order_type,price,qty,filled_qty,status\n" + "".join(
        f"{int(r['order_id'])},{int(r['user_id'])},{'buy' if r['side'] == 0 else 'sell'},limit,"
        f"{int(r['price'])},{int(r['qty'])},{int(r['filled'])},"
        f"{'NEW' if r['filled'] == 0 else 'PARTIALLY_FILLED'}\n" for r in rows)).encode()


def bevents(rows):
    """Balance events from (trade_id, user_id, asset, op, amount, avail, frozen) tuples."""
    ev = np.zeros(len(rows), R.BALANCE_EVENT)
    for i, (tid, uid, asset, op, amount, avail, frozen) in enumerate(rows):
        ev[i]["trade_id"], ev[i]["user_id"], ev[i]["asset"], ev[i]["op"] = tid, uid, asset, op
        ev[i]["amount"], ev[i]["avail"], ev[i]["frozen"] = amount, avail, frozen
    ev["seq"] = np.arange(1, len(ev) + 1)
    return ev


EDGE = [0, 1, -1, 9, 10, -10, 99, 100, -100, 12345, -67890, 10 ** 18 - 1, 10 ** 18,
        -(10 ** 18), I64_MAX, I64_MIN, I64_MAX - 1, I64_MIN + 1]


# -- ledger ---------------------------------------------------------------------

def test_ledger_hand_made(tmp_path, chunk):
    b1 = bevents([
        (1, 96, 2, R.OP_SPEND, 92889, 999907111, 0),
        (1, 96, 1, R.OP_CREDIT, 1093200, 10001093200, 0),
        (1, 176, 1, R.OP_SPEND, 1093200, 9998000000, 906800),
        (1, 176, 2, R.OP_CREDIT, 92889, 1000092889, 0),
        (0, 5, 1, R.OP_DEPOSIT, 100, 100, 0),           # not a trade event
        (0, 5, 1, R.OP_SPEND, 7, 100, 0),               # trade_id 0: left out
        (2, 5, 1, R.OP_LOCK, 7, 93, 7),                 # lock inside a trade: left out
        (2, 5, 1, R.OP_UNLOCK, 7, 100, 0),
        (2, 7, 3, R.OP_FEE, 1, 1, 0),
        (2, 0, 0, R.OP_SPEND, 0, 0, 0),                 # zeros
        (2, -1, 65535, R.OP_CREDIT, -5, -3, 1),         # negatives
    ])
    b2 = bevents([(I64_MAX, I64_MAX, 1, R.OP_SPEND, I64_MAX, I64_MAX, 0),
                  (I64_MAX, I64_MIN, 2, R.OP_CREDIT, I64_MIN, I64_MIN, 0),
                  (3, 3, 3, R.OP_CREDIT, I64_MIN + 1, -(10 ** 18), -1)])
    b3 = bevents([(4, u, 1, R.OP_SPEND if u % 2 else R.OP_CREDIT, v, v, 0)
                  for u, v in enumerate(EDGE)])
    batches = [b1, bevents([]), b2, b3, b1[:0], b1[4:9]]  # the last adds no row
    path = tmp_path / "t2_ledger.csv"
    w = O.LedgerWriter(path)
    counts = [w.write(b) for b in batches]
    w.close()
    w.close()  # idempotent
    assert path.read_bytes() == ledger_ref(batches)
    assert counts == [6, 0, 3, len(EDGE), 0, 0]
    assert w.rows == sum(counts)


def test_ledger_random_int64(tmp_path, chunk):
    rng = np.random.default_rng(7)
    n = 5_000 if chunk else 200_000
    ev = np.zeros(n, R.BALANCE_EVENT)
    for f in ("trade_id", "user_id", "amount"):
        ev[f] = rng.integers(I64_MIN, I64_MAX, n, dtype=np.int64, endpoint=True)
    # avail+frozen must not overflow: split a random total
    total = rng.integers(I64_MIN, I64_MAX, n, dtype=np.int64, endpoint=True)
    ev["frozen"] = total // 3
    ev["avail"] = total - ev["frozen"]
    # magnitudes of every width
    ev["amount"] //= 10 ** rng.integers(0, 19, n)
    ev["asset"] = rng.integers(0, 65536, n)
    ev["op"] = rng.integers(0, 9, n)
    ev["trade_id"][rng.random(n) < 0.1] = 0
    parts = np.array_split(ev, 4)
    with O.LedgerWriter(tmp_path / "l.csv") as w:
        for p in parts:
            w.write(p)
    assert (tmp_path / "l.csv").read_bytes() == ledger_ref(parts)


def test_ledger_rebuilds_baseline(tmp_path):
    """Balance events made from the golden ledger write it back byte for byte."""
    lines = (BASELINE / "t2_ledger.csv").read_bytes().split(b"\n")[1:-1]
    f = [ln.split(b",") for ln in lines]
    ev = np.zeros(len(f), R.BALANCE_EVENT)
    ev["trade_id"] = [int(x[0]) for x in f]
    ev["user_id"] = [int(x[1]) for x in f]
    ev["asset"] = [int(x[2]) for x in f]
    ev["op"] = [R.OP_SPEND if x[3] == b"debit" else R.OP_CREDIT for x in f]
    ev["amount"] = [int(x[4]) for x in f]
    ev["frozen"] = np.arange(len(f)) % 1000
    ev["avail"] = np.array([int(x[5]) for x in f]) - ev["frozen"]
    with O.LedgerWriter(tmp_path / O.LEDGER_FILE) as w:
        for p in np.array_split(ev, 5):
            w.write(p)
    assert (tmp_path / O.LEDGER_FILE).read_bytes() == (BASELINE / O.LEDGER_FILE).read_bytes()


# -- balances, orderbook, summary ----------------------------------------------

def test_write_balances(tmp_path, chunk):
    rows = np.zeros(len(EDGE) + 3, BAL_ROWS)
    rows["user_id"] = EDGE + [1, 2, 1000]
    rows["asset"] = [i % 3 for i in range(len(rows))]
    rows["avail"] = EDGE[::-1] + [0, 5, 8706909000]
    rows["frozen"] = [e // 7 for e in EDGE] + [0, 0, 967691100]
    rows["version"] = list(range(len(EDGE))) + [0, I64_MAX, 79]
    O.write_balances(tmp_path / "b.csv", rows)
    assert (tmp_path / "b.csv").read_bytes() == balances_ref(rows)
    O.write_balances(tmp_path / "empty.csv", rows[:0])
    assert (tmp_path / "empty.csv").read_bytes() == b"user_id,asset_id,avail,frozen,version\n"


def test_write_orderbook(tmp_path, chunk):
    rows = np.zeros(len(EDGE), BOOK_ROWS)
    rows["order_id"] = EDGE
    rows["user_id"] = EDGE[::-1]
    rows["side"] = [i % 2 for i in range(len(EDGE))]
    rows["price"] = [abs(e) // 3 for e in EDGE]
    rows["qty"] = EDGE
    rows["filled"] = [0 if i % 3 else e for i, e in enumerate(EDGE)]
    rows["lock"] = 12345
    rows["symbol"] = 7
    O.write_orderbook(tmp_path / "o.csv", rows)
    data = (tmp_path / "o.csv").read_bytes()
    assert data == orderbook_ref(rows)
    assert b"PARTIALLY_FILLED" in data and b",NEW\n" in data


def test_summary_round_trip(tmp_path):
    items = O.read_summary(BASELINE / O.SUMMARY_FILE)
    assert list(items)[:3] == ["symbol", "rows", "places"]
    O.write_summary(tmp_path / "s.txt", items)
    assert (tmp_path / "s.txt").read_bytes() == (BASELINE / O.SUMMARY_FILE).read_bytes()
    O.write_summary(tmp_path / "t.txt", {"b": 2, "a": np.int64(-1), "c": "x y"})
    assert (tmp_path / "t.txt").read_bytes() == b"b=2\na=-1\nc=x y\n"
    assert O.read_summary(tmp_path / "t.txt") == {"b": "2", "a": "-1", "c": "x y"}


# -- event files ----------------------------------------------------------------

def _events(k):
    o = np.zeros(3, R.ORDER_EVENT)
    o["seq"] = [k, k, k + 1]
    o["order_id"] = [10 + k, 11 + k, 12 + k]
    o["status"] = [R.ST_ACCEPTED, R.ST_REJECTED, 0]
    o["reason"] = [R.R_NONE, R.R_INSUFFICIENT_BALANCE, 200]
    o["side"] = [R.SIDE_BUY, R.SIDE_SELL, R.SIDE_BUY]
    o["kind"] = R.CMD_PLACE
    o["tif"] = R.TIF_IOC
    o["qty"] = R.QTY_UNLIMITED
    t = np.zeros(1, R.TRADE_EVENT)
    t["trade_id"], t["price"], t["taker_side"] = k, -5, R.SIDE_SELL
    b = bevents([(k, 1, 2, R.OP_SPEND, 3, 4, 5), (0, 1, 2, R.OP_DEPOSIT, 3, 4, 5)])
    b["reason"][1] = R.R_OVERFLOW
    return types.SimpleNamespace(orders=o, trades=t, balances=b)


def test_event_files(tmp_path, chunk):
    e1, e2 = _events(1), _events(2)
    empty = types.SimpleNamespace(orders=e1.orders[:0], trades=e1.trades[:0],
                                  balances=e1.balances[:0])
    with O.EventWriter(tmp_path / "ev") as w:
        w.write(e1)
        w.write(empty)
        w.write({"orders": e2.orders, "trades": e2.trades, "balances": e2.balances})
    d = tmp_path / "ev"
    for stream, (name, dt) in O.EVENT_FILES.items():
        got = O.read_events(d / name, dt)
        want = np.concatenate([getattr(e1, stream), getattr(e2, stream)])
        assert got.dtype == dt
        assert got.tobytes() == want.tobytes()
        assert (d / name).stat().st_size == len(want) * dt.itemsize
    fmt = (d / O.EVENTS_FORMAT_FILE).read_text()
    assert "events_balance.bin" in fmt and "64 bytes" in fmt and "records: 6" in fmt
    assert "5=spend" in fmt and "Insufficient balance" in fmt and "0=buy, 1=sell" in fmt

    out = io.BytesIO()
    assert O.dump_csv(d / "events_order.bin", out) == 6
    lines = out.getvalue().decode().splitlines()
    assert lines[0] == ",".join(R.ORDER_EVENT.names)
    assert lines[1] == f"1,11,0,0,{R.QTY_UNLIMITED},0,0,0,0,0,0,place,accepted,,buy,limit,ioc"
    assert lines[2].endswith(",place,rejected,Insufficient balance,sell,limit,ioc")
    assert lines[3].endswith(",place,0,200,buy,limit,ioc")  # unnamed codes as numbers
    O.dump_csv(d / "events_balance.bin", tmp_path / "b.csv")
    assert (tmp_path / "b.csv").read_text().splitlines() == [
        "seq,trade_id,user_id,amount,avail,frozen,version,asset,op,reason",
        "1,1,1,3,4,5,0,2,spend,", "2,0,1,3,4,5,0,2,deposit,Amount overflows",
        "1,2,1,3,4,5,0,2,spend,", "2,0,1,3,4,5,0,2,deposit,Amount overflows"]
    text = io.StringIO()
    text.buffer = io.BytesIO()  # a text stream with a binary buffer, like sys.stdout
    O.dump_csv(d / "events_trade.bin", text.buffer)
    assert text.buffer.getvalue().decode().splitlines()[1] == "1,0,-5,0,0,0,0,0,0,0,0,0,sell"

    with pytest.raises(TypeError):
        with O.EventWriter(tmp_path / "bad") as w:
            w.write(types.SimpleNamespace(orders=e1.balances, trades=e1.trades,
                                          balances=e1.balances))
    (tmp_path / "trunc").mkdir()
    (tmp_path / "trunc" / "events_trade.bin").write_bytes(b"\0" * 95)
    with pytest.raises(ValueError):
        O.read_events(tmp_path / "trunc" / "events_trade.bin", R.TRADE_EVENT)
    with pytest.raises(ValueError):
        O.dump_csv(tmp_path / "trunc" / "events_trade.bin", io.BytesIO())


def test_ledger_self_trade_shows_the_slot_after_the_whole_trade(tmp_path):
    """Buyer and seller are user 7: the buyer's quote debit row shows the quote
    slot after the seller's credit, the buyer's base credit row the base slot
    after the seller's debit (the Rust engine's rows, 55 of them in zxi-100k)."""
    ev = bevents([
        (9, 7, 2, R.OP_SPEND, 500, 1000, 0),     # buyer quote: 1500 -> 1000
        (9, 7, 1, R.OP_CREDIT, 30, 230, 0),      # buyer base: 200 -> 230
        (9, 7, 1, R.OP_SPEND, 30, 200, 0),       # seller base: 230 -> 200
        (9, 7, 2, R.OP_CREDIT, 500, 1500, 0),    # seller quote: 1000 -> 1500
        (10, 7, 2, R.OP_SPEND, 1, 1499, 0),      # next trade: not merged
    ])
    with O.LedgerWriter(tmp_path / "l.csv") as w:
        w.write(ev)
    rows = (tmp_path / "l.csv").read_text().splitlines()[1:]
    assert [r.rsplit(",", 1)[1] for r in rows] == ["1500", "200", "200", "1500", "1499"]
