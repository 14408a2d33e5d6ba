"""edge/dataset.py: dataset directories into CMD records, exactly, or a file:line: reason."""
import csv
import pathlib
import shutil

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from xinfinity.engine import records as R
from xinfinity.engine.money import parse_decimal
from xinfinity.edge import dataset as D
from xinfinity.edge.dataset import DatasetError, load_dataset

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
GOLDEN_100K = FIXTURES / "zxi-100k"
GOLDEN_CANCEL = FIXTURES / "zxi-cancel-1294"

ASSETS = "asset_id,asset,decimals,display_decimals\n1,BTC,8,6\n2,USDT,2,2\n3,ETH,8,4\n"
SYMBOLS = ("symbol_id,symbol,base_asset_id,quote_asset_id,price_decimal,price_display_decimal\n"
           "0,BTC_USDT,1,2,2,2\n1,ETH_USDT,3,2,4,4\n")
BALANCES = "user_id,asset_id,avail,frozen,version\n1,1,100,0,0\n1,2,200,0,0\n"
EXT = "order_id,user_id,action,side,price,qty,order_type,tif,amount,symbol"


def make_dataset(tmp_path, orders, balances=BALANCES, assets=ASSETS, symbols=SYMBOLS):
    d = tmp_path / "ds"
    d.mkdir(exist_ok=True)
    for name, text in (("orders.csv", orders), ("balances_init.csv", balances),
                       ("assets_config.csv", assets), ("symbols_config.csv", symbols)):
        (d / name).write_bytes(text.encode())
    return d


def plain_python_orders(path):
    """The golden orders.csv parsed with csv + money.parse_decimal: the oracle."""
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            action = row.get("action", "place")
            place = action == "place"
            out.append((int(row["order_id"]), int(row["user_id"]),
                        R.CMD_PLACE if place else R.CMD_CANCEL,
                        (0 if row["side"] == "buy" else 1) if place else 0,
                        parse_decimal(row["price"], 2, "price") if place else 0,
                        parse_decimal(row["qty"], 8, "qty") if place else 0))
    return out


def as_tuples(cmds):
    return list(zip(cmds["order_id"].tolist(), cmds["user_id"].tolist(), cmds["kind"].tolist(),
                    cmds["side"].tolist(), cmds["price"].tolist(), cmds["qty"].tolist()))


# -- the golden fixtures -------------------------------------------------------------

@pytest.mark.slow
def test_golden_100k_loads_100000_places_and_2000_deposits():
    ds = load_dataset(GOLDEN_100K)
    assert ds.rows == len(ds.commands) == 100_000
    assert (ds.commands["kind"] == R.CMD_PLACE).all()
    assert len(ds.deposits) == 2000 and (ds.deposits["kind"] == R.CMD_DEPOSIT).all()
    assert [s.name for s in ds.symbols] == ["BTC_USDT", "ETH_USDT"]
    assert [(a.name, a.decimals) for a in ds.assets] == [("BTC", 8), ("USDT", 2), ("ETH", 8)]
    first = ds.commands[0]
    assert (first["order_id"], first["user_id"], first["side"], first["price"], first["qty"]) == \
        (1, 655, R.SIDE_BUY, 8490712, 39048300)
    assert as_tuples(ds.commands) == plain_python_orders(GOLDEN_100K / "orders.csv")


def test_golden_cancel_set_loads_1000_places_and_294_cancels():
    ds = load_dataset(GOLDEN_CANCEL)
    kinds = ds.commands["kind"]
    assert ds.rows == 1294
    assert int((kinds == R.CMD_PLACE).sum()) == 1000
    assert int((kinds == R.CMD_CANCEL).sum()) == 294
    assert as_tuples(ds.commands) == plain_python_orders(GOLDEN_CANCEL / "orders.csv")
    assert (ds.commands[kinds == R.CMD_CANCEL]["qty"] == 0).all()


@pytest.mark.parametrize("golden", [GOLDEN_100K, GOLDEN_CANCEL])
def test_fixed_fields_of_every_command_are_zero_or_minus_one(golden):
    ds = load_dataset(golden)
    for cmds in (ds.commands, ds.deposits):
        assert (cmds["seq"] == 0).all() and (cmds["ts"] == 0).all()
        assert (cmds["ref"] == -1).all()
        assert not cmds["reserved"].view(np.uint8).any()
    assert (ds.commands["symbol"] == 0).all() and (ds.commands["order_type"] == R.TYPE_LIMIT).all()
    assert (ds.commands["tif"] == R.TIF_GTC).all() and (ds.commands["amount"] == 0).all()


def test_deposits_follow_balances_file_order_with_avail_as_amount():
    ds = load_dataset(GOLDEN_100K)
    with open(GOLDEN_100K / "balances_init.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert ds.deposits["user_id"].tolist() == [int(r["user_id"]) for r in rows]
    assert ds.deposits["symbol"].tolist() == [int(r["asset_id"]) for r in rows]
    assert ds.deposits["amount"].tolist() == [int(r["avail"]) for r in rows]


@pytest.mark.parametrize("golden", [GOLDEN_100K, GOLDEN_CANCEL])
def test_crlf_lf_and_missing_final_newline_give_the_same_records(golden, tmp_path):
    lf = tmp_path / "lf"
    bare = tmp_path / "bare"
    shutil.copytree(golden, lf)
    shutil.copytree(golden, bare)
    for d in (lf, bare):
        for p in d.iterdir():
            p.chmod(0o644)
            data = p.read_bytes().replace(b"\r\n", b"\n")
            p.write_bytes(data.rstrip(b"\n") if d is bare else data)
    ref = load_dataset(golden)
    for d in (lf, bare):
        other = load_dataset(d)
        assert other.commands.tobytes() == ref.commands.tobytes()
        assert other.deposits.tobytes() == ref.deposits.tobytes()
        assert other.symbols == ref.symbols and other.assets == ref.assets


# -- every layout and action -----------------------------------------------------------

def test_five_column_rows_are_limit_gtc_places_on_the_first_symbol(tmp_path):
    d = make_dataset(tmp_path, "order_id,user_id,side,price,qty\r\n7,1,sell,85000.5,0.1\r\n",
                     symbols="symbol_id,symbol,base_asset_id,quote_asset_id,price_decimal,"
                             "price_display_decimal\n5,BTC_USDT,1,2,2,2\n")
    c = load_dataset(d).commands[0]
    assert (c["kind"], c["order_id"], c["user_id"], c["side"], c["price"], c["qty"], c["symbol"]) == \
        (R.CMD_PLACE, 7, 1, R.SIDE_SELL, 8500050, 10_000_000, 5)


def test_extended_rows_map_to_cmd_fields(tmp_path):
    orders = "\n".join([
        EXT,
        "1,1,place,buy,85000.12,0.5,,,,",                   # limit gtc on the first symbol
        "2,1,place,sell,3200.1234,2,limit,ioc,,ETH_USDT",
        "3,2,place,buy,,,market,,1000.50,BTC_USDT",         # market buy, budget only
        "4,2,place,buy,,0.25,market,,99,",                  # market buy with a qty cap
        "5,2,place,sell,,0.001,market,ioc,,",
        "1,1,cancel,,,,,,,",
        "2,1,reduce,,,0.5,,,,ETH_USDT",
        "4,2,move,,,,,,,",
    ]) + "\n"
    orders = orders.replace("4,2,move,,,,,,,", "4,2,move,,84000,,,,,")
    orders += "0,3,deposit,,,,,,12.5,USDT\n,3,withdraw,,,,,,0.00000001,BTC\n"
    ds = load_dataset(make_dataset(tmp_path, orders))
    c = ds.commands
    fields = ["kind", "order_id", "user_id", "side", "price", "qty", "amount", "order_type", "tif",
              "symbol"]
    got = [tuple(int(c[i][f]) for f in fields) for i in range(len(c))]
    assert got == [
        (R.CMD_PLACE, 1, 1, R.SIDE_BUY, 8500012, 50_000_000, 0, R.TYPE_LIMIT, R.TIF_GTC, 0),
        (R.CMD_PLACE, 2, 1, R.SIDE_SELL, 32001234, 200_000_000, 0, R.TYPE_LIMIT, R.TIF_IOC, 1),
        (R.CMD_PLACE, 3, 2, R.SIDE_BUY, 0, 0, 100050, R.TYPE_MARKET, R.TIF_GTC, 0),
        (R.CMD_PLACE, 4, 2, R.SIDE_BUY, 0, 25_000_000, 9900, R.TYPE_MARKET, R.TIF_GTC, 0),
        (R.CMD_PLACE, 5, 2, R.SIDE_SELL, 0, 100_000, 0, R.TYPE_MARKET, R.TIF_IOC, 0),
        (R.CMD_CANCEL, 1, 1, 0, 0, 0, 0, 0, 0, 0),
        (R.CMD_REDUCE, 2, 1, 0, 0, 50_000_000, 0, 0, 0, 1),
        (R.CMD_MOVE, 4, 2, 0, 8400000, 0, 0, 0, 0, 0),
        (R.CMD_DEPOSIT, 0, 3, 0, 0, 0, 1250, 0, 0, 2),       # symbol holds the asset id
        (R.CMD_WITHDRAW, 0, 3, 0, 0, 0, 1, 0, 0, 1),
    ]
    assert (c["ref"] == -1).all()


def test_zero_values_are_left_for_the_core_to_reject(tmp_path):
    d = make_dataset(tmp_path, "order_id,user_id,side,price,qty\n1,99,buy,0,0.00\n")
    c = load_dataset(d).commands[0]
    assert (c["price"], c["qty"], c["user_id"]) == (0, 0, 99)


def test_symbol_fee_columns_are_read(tmp_path):
    symbols = ("symbol_id,symbol,base_asset_id,quote_asset_id,price_decimal,price_display_decimal,"
               "maker_fee_ppm,taker_fee_ppm,fee_user_id,stp\n0,BTC_USDT,1,2,2,2,200,500,9999,"
               "expire_maker\n1,ETH_USDT,3,2,4,4,,,,\n")
    ds = load_dataset(make_dataset(tmp_path, "order_id,user_id,side,price,qty\n", symbols=symbols))
    btc, eth = ds.symbols
    assert (btc.maker_fee_ppm, btc.taker_fee_ppm, btc.fee_user_id, btc.stp) == \
        (200, 500, 9999, "expire_maker")
    assert (eth.maker_fee_ppm, eth.taker_fee_ppm, eth.fee_user_id, eth.stp) == (0, 0, -1, "none")
    assert ds.rows == 0 and ds.commands.dtype == R.CMD


# -- bad rows: file:line: reason ---------------------------------------------------------

O6 = "order_id,user_id,action,side,price,qty\n1,1,place,buy,1.00,1\n"
O5 = "order_id,user_id,side,price,qty\n1,1,buy,1.00,1\n"
OX = EXT + "\n1,1,place,buy,1.00,1,,,,\n"

BAD_ORDERS = [
    (O5 + "2,1,buy,1.00\n", "3: wrong column count: expected 5 (order_id,user_id,side,price,qty), found 4"),
    (O6 + "2,1,place,buy,1.00,1,9\n", "3: wrong column count: expected 6"),
    (O5 + "2,1,hold,1.00,1\n", "3: unknown side 'hold' in column side (expected buy|sell)"),
    (O6 + "2,1,modify,buy,1.00,1\n", "3: unknown action 'modify'"),
    (O6 + "2,1,PLACE,buy,1.00,1\n", "3: unknown action 'PLACE'"),
    (O5 + "2,1,buy,1.234,1\n", "3: price '1.234' has 3 fractional digits, at most 2 allowed"),
    (O5 + "2,1,buy,1.00,0.123456789\n", "3: qty '0.123456789' has 9 fractional digits, at most 8 allowed"),
    (O5 + "2,1,buy,1.00,100000000000\n", "3: qty '100000000000' overflows"),
    (O5 + "2,1,buy,8.5e3,1\n", "3: price '8.5e3' has a bad character 'e'"),
    (O5 + "2,1,buy,-1,1\n", "3: price '-1' has a bad character '-'"),
    (O5 + "2,1,buy, 1,1\n", "3: price ' 1' has a bad character ' '"),
    (O5 + "x1,1,buy,1.00,1\n", "3: non-numeric order_id 'x1'"),
    (O5 + "2,-1,buy,1.00,1\n", "3: non-numeric user_id '-1'"),
    (O5 + "9223372036854775808,1,buy,1.00,1\n", "3: order_id '9223372036854775808' overflows"),
    (O5 + "2,1,buy,,1\n", "3: missing field: price is empty"),
    (O5 + ",1,buy,1.00,1\n", "3: missing field: order_id is empty"),
    (O5 + "2,1,,1.00,1\n", "3: missing field: side is empty"),
    (O6 + "2,1,,buy,1.00,1\n", "3: missing field: action is empty"),
    (O6 + "1,1,cancel,buy,,\n", "3: side must be empty for a cancel row, got 'buy'"),
    (O6 + "1,1,cancel,,1.00,\n", "3: price must be empty for a cancel row"),
    (O5 + "\n2,1,buy,1.00,1\n", "3: empty line"),
    (OX + "2,1,place,buy,1.00,1,,,,DOGE_USDT\n", "3: unknown symbol 'DOGE_USDT' in column symbol"),
    (OX + "2,1,place,buy,1.00,1,stop,,,\n", "3: unknown order_type 'stop'"),
    (OX + "2,1,place,buy,1.00,1,,fok,,\n", "3: unknown tif 'fok'"),
    (OX + "2,1,place,buy,,,market,,,\n", "3: missing field: amount is empty"),
    (OX + "2,1,place,buy,1.00,,market,,5,\n", "3: price must be empty for a place row"),
    (OX + "2,1,place,buy,1.00,1,,,5,\n", "3: amount must be empty for a place row"),
    (OX + "2,1,place,sell,,1,market,,5,\n", "3: amount must be empty for a place row"),
    (OX + "2,1,place,buy,,,market,,1.005,\n", "3: amount '1.005' has 3 fractional digits, at most 2"),
    (OX + "2,1,place,sell,3200.12345,1,,,,ETH_USDT\n",
     "3: price '3200.12345' has 5 fractional digits, at most 4 allowed"),
    (OX + "1,1,reduce,,,,,,,\n", "3: missing field: qty is empty"),
    (OX + "1,1,reduce,,1.00,1,,,,\n", "3: price must be empty for a reduce row"),
    (OX + "1,1,move,,,,,,,\n", "3: missing field: price is empty"),
    (OX + "1,1,move,,2.00,1,,,,\n", "3: qty must be empty for a move row"),
    (OX + ",1,deposit,,,,,,5,DOGE\n", "3: unknown asset 'DOGE' in column symbol"),
    (OX + ",1,deposit,,,,,,5,\n", "3: missing field: symbol is empty"),
    (OX + ",1,withdraw,,,,,,5.123,USDT\n", "3: amount '5.123' has 3 fractional digits, at most 2"),
    (OX + ",1,deposit,,,,,,,USDT\n", "3: missing field: amount is empty"),
    (OX + ",1,deposit,sell,,,,,5,USDT\n", "3: side must be empty for a deposit row"),
    (OX + ",,deposit,,,,,,5,USDT\n", "3: missing field: user_id is empty"),
    ("order_id,user_id,side,price\n1,1,buy,1\n", "1: unexpected header 'order_id,user_id,side,price'"),
    ("", "1: missing header row"),
]


@pytest.mark.parametrize("orders, reason", BAD_ORDERS)
def test_a_bad_orders_row_names_file_line_and_reason(tmp_path, orders, reason):
    d = make_dataset(tmp_path, orders)
    with pytest.raises(DatasetError) as exc:
        load_dataset(d)
    assert str(exc.value).startswith(f"{d / 'orders.csv'}:{reason}")


@pytest.mark.parametrize("orders, reason", BAD_ORDERS[:6])
def test_bad_rows_are_found_with_crlf_line_ends_too(tmp_path, orders, reason):
    d = make_dataset(tmp_path, orders.replace("\n", "\r\n"))
    with pytest.raises(DatasetError) as exc:
        load_dataset(d)
    assert str(exc.value).startswith(f"{d / 'orders.csv'}:{reason}")


BAD_CONFIG = [
    ("balances_init.csv", BALANCES + "2,9,5,0,0\n", "4: unknown asset 9 in column asset_id"),
    ("balances_init.csv", BALANCES + "2,1,5.5,0,0\n", "4: non-numeric avail '5.5'"),
    ("balances_init.csv", BALANCES + "2,1,-5,0,0\n", "4: non-numeric avail '-5'"),
    ("balances_init.csv", BALANCES + "2,1,5,0\n", "4: wrong column count: expected 5"),
    ("balances_init.csv", BALANCES + "2,1,99999999999999999999,0,0\n", "4: avail '99999999999999999999' overflows"),
    ("balances_init.csv", "user,asset\n", "1: unexpected header"),
    ("assets_config.csv", ASSETS + "1,XRP,8,4\n", "5: duplicate asset_id 1"),
    ("assets_config.csv", ASSETS + "4,BTC,8,4\n", "5: duplicate asset 'BTC'"),
    ("assets_config.csv", ASSETS + "4,XRP,19,4\n", "5: decimals '19' out of range 0..18"),
    ("assets_config.csv", ASSETS + "70000,XRP,8,4\n", "5: asset_id '70000' out of range 0..65535"),
    ("assets_config.csv", ASSETS + "x,XRP,8,4\n", "5: non-numeric asset_id 'x'"),
    ("symbols_config.csv", SYMBOLS + "2,XRP_USDT,9,2,4,4\n", "4: unknown asset 9 in base_asset_id"),
    ("symbols_config.csv", SYMBOLS + "1,XRP_USDT,3,2,4,4\n", "4: duplicate symbol_id 1"),
    ("symbols_config.csv", SYMBOLS + "2,BTC_USDT,1,2,2,2\n", "4: duplicate symbol 'BTC_USDT'"),
    ("symbols_config.csv", SYMBOLS + "2,BTC_BTC,1,1,2,2\n", "4: base_asset_id and quote_asset_id are both 1"),
    ("symbols_config.csv", SYMBOLS.replace("price_display_decimal\n", "price_display_decimal,"
     "maker_fee_ppm,taker_fee_ppm,fee_user_id,stp\n").replace("2,2\n", "2,2,1,1,5,none\n")
     .replace("4,4\n", "4,4,0,0,-1,sometimes\n"), "3: unknown stp 'sometimes'"),
    ("symbols_config.csv", SYMBOLS.replace("price_display_decimal\n", "price_display_decimal,"
     "maker_fee_ppm,taker_fee_ppm,fee_user_id,stp\n").replace("2,2\n", "2,2,100,0,,none\n")
     .replace("4,4\n", "4,4,0,0,-1,none\n"), "2: fee rates need a fee_user_id >= 0"),
    ("symbols_config.csv", "symbol_id,symbol,base_asset_id,quote_asset_id,price_decimal,"
     "price_display_decimal\n", "no symbols configured"),
]


@pytest.mark.parametrize("name, text, reason", BAD_CONFIG)
def test_a_bad_config_or_balance_row_names_file_line_and_reason(tmp_path, name, text, reason):
    files = {"balances": BALANCES, "assets": ASSETS, "symbols": SYMBOLS}
    files[name.split("_")[0]] = text
    d = make_dataset(tmp_path, O5, files["balances"], files["assets"], files["symbols"])
    with pytest.raises(DatasetError) as exc:
        load_dataset(d)
    sep = "" if reason.startswith("no ") else ":"
    assert str(exc.value).startswith(f"{d / name}{':' if sep else ': '}{reason}")


def test_a_missing_file_is_named(tmp_path):
    d = make_dataset(tmp_path, O5)
    (d / "balances_init.csv").unlink()
    with pytest.raises(DatasetError, match="balances_init.csv: missing file"):
        load_dataset(d)


# -- the numba parser agrees with money.parse_decimal ------------------------------------

def _python_status(text: str, decimals: int) -> tuple[int, int]:
    try:
        return parse_decimal(text, decimals, "x"), D.D_OK
    except ValueError as e:
        msg = str(e)
    if msg.endswith("is empty"):
        return 0, D.D_EMPTY
    if "bad character" in msg or "more than one" in msg or "no digits" in msg:
        return 0, D.D_BAD
    if "fractional digits" in msg:
        return 0, D.D_FRACTION
    assert "overflows" in msg, msg
    return 0, D.D_OVERFLOW


decimal_text = st.one_of(
    st.text(alphabet="0123456789.", max_size=30),
    st.text(alphabet="0123456789.-+eE ,x\u0661", max_size=12),
    st.builds(lambda units, d: str(units)[:-d] + "." + str(units)[-d:] if d else str(units),
              st.integers(0, 2**64), st.integers(0, 20)),
)


@pytest.mark.slow
@settings(max_examples=2000, deadline=None)
@given(decimal_text, st.integers(0, 18))
@example("92233720368547758.07", 2)
@example("92233720368547758.08", 2)
@example("9223372036854775807", 0)
@example("9223372036854775808", 0)
@example("922337203685477580.8", 1)
@example("0.9223372036854775808", 19 - 1)
@example("1.", 0)
@example(".", 3)
@example("..", 3)
@example("", 3)
def test_numba_decimal_parser_agrees_with_money(text, decimals):
    assert D.parse_decimal_bytes(text.encode(), decimals) == _python_status(text, decimals)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**63 - 1), st.sampled_from([0, 2, 4, 6, 8]))
def test_a_loaded_qty_is_the_exact_decimal(tmp_path_factory, units, decimals):
    from xinfinity.engine.money import format_decimal
    assets = f"asset_id,asset,decimals,display_decimals\n1,BTC,{decimals},6\n2,USDT,2,2\n"
    symbols = ("symbol_id,symbol,base_asset_id,quote_asset_id,price_decimal,"
               "price_display_decimal\n0,BTC_USDT,1,2,2,2\n")
    orders = f"order_id,user_id,side,price,qty\n1,1,buy,1.00,{format_decimal(units, decimals)}\n"
    d = make_dataset(tmp_path_factory.mktemp("q"), orders, BALANCES.replace("1,2,200", "1,2,2"),
                     assets, symbols)
    assert int(load_dataset(d).commands[0]["qty"]) == units
