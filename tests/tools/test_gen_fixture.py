"""tools/gen_fixture.py and tools/recipes.py: deterministic datasets, exact counts, recipes."""
import argparse
import dataclasses
import pathlib
import tomllib

import numpy as np
import pytest

from xinfinity.engine import records as R
from xinfinity.tools import gen_fixture as G
from xinfinity.tools import recipes as RC
from xinfinity.edge.dataset import load_dataset

FILES = ("orders.csv", "balances_init.csv", "assets_config.csv", "symbols_config.csv")
MIX = G.GenParams(orders=6000, cancel_ratio=0.2, users=50, seed=11, ioc_ratio=0.1,
                  market_ratio=0.1, move_ratio=0.05, reduce_ratio=0.05, symbols=2,
                  balance="low", fees=True)


def gen(tmp_path, name="ds", **kw) -> pathlib.Path:
    out = tmp_path / name
    G.generate(G.GenParams(**kw), out)
    return out


def kinds(ds) -> dict[int, int]:
    k, n = np.unique(ds.commands["kind"], return_counts=True)
    return dict(zip(k.tolist(), n.tolist()))


def test_same_seed_gives_byte_identical_files(tmp_path):
    p = dataclasses.asdict(MIX)
    a, b = gen(tmp_path, "a", **p), gen(tmp_path, "b", **p)
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_a_different_seed_gives_different_orders(tmp_path):
    a = gen(tmp_path, "a", orders=3000, seed=1)
    b = gen(tmp_path, "b", orders=3000, seed=2)
    assert (a / "orders.csv").read_bytes() != (b / "orders.csv").read_bytes()
    assert (a / "assets_config.csv").read_bytes() == (b / "assets_config.csv").read_bytes()


@pytest.mark.parametrize("orders, ratio", [(1000, 0.3), (1294, 294 / 1294), (7, 0.5), (5000, 0.0)])
def test_place_cancel_sets_have_exact_counts_and_the_six_column_format(tmp_path, orders, ratio):
    d = gen(tmp_path, orders=orders, cancel_ratio=ratio, users=20, seed=5)
    header = (d / "orders.csv").read_bytes().split(b"\r\n", 1)[0]
    assert header == b"order_id,user_id,action,side,price,qty"
    ds = load_dataset(d)
    assert ds.rows == orders
    assert kinds(ds).get(R.CMD_CANCEL, 0) == round(orders * ratio)
    assert kinds(ds)[R.CMD_PLACE] == orders - round(orders * ratio)
    assert ds.commands["kind"][0] == R.CMD_PLACE


def test_the_1m3_recipe_arithmetic_gives_exactly_300k_cancels():
    p = G.GenParams(orders=1_300_000, cancel_ratio=300_000 / 1_300_000)
    assert p.counts()["cancels"] == 300_000 and p.counts()["places"] == 1_000_000
    assert G.GenParams(orders=1_300_000, cancel_ratio=0.3).counts()["cancels"] == 390_000


def test_a_mixed_set_has_every_kind_in_the_counts_the_options_ask(tmp_path):
    d = tmp_path / "mix"
    G.generate(MIX, d)
    ds = load_dataset(d)
    c = MIX.counts()
    got = kinds(ds)
    assert got == {R.CMD_PLACE: c["places"], R.CMD_CANCEL: round(6000 * 0.2),
                   R.CMD_REDUCE: round(6000 * 0.05), R.CMD_MOVE: round(6000 * 0.05)}
    places = ds.commands[ds.commands["kind"] == R.CMD_PLACE]
    assert int((places["order_type"] == R.TYPE_MARKET).sum()) == round(c["places"] * 0.1)
    assert int((places["tif"] == R.TIF_IOC).sum()) == round(c["places"] * 0.1)
    assert set(places["symbol"].tolist()) == {0, 1}
    # Market buys carry a budget, limits a price; order ids are 1..places in file order.
    mkt_buy = (places["order_type"] == R.TYPE_MARKET) & (places["side"] == R.SIDE_BUY)
    assert (places["amount"][mkt_buy] > 0).all() and (places["amount"][~mkt_buy] == 0).all()
    assert (places["price"][places["order_type"] == R.TYPE_LIMIT] > 0).all()
    assert places["order_id"].tolist() == list(range(1, c["places"] + 1))
    assert [s.name for s in ds.symbols] == ["BTC_USDT", "ETH_USDT"]
    assert all(s.maker_fee_ppm > 0 and s.taker_fee_ppm > 0 and s.fee_user_id == MIX.users + 1
               for s in ds.symbols)


def test_actions_target_earlier_orders_of_their_owner_and_a_few_unknown_ids(tmp_path):
    d = tmp_path / "mix"
    G.generate(MIX, d)
    cmds = load_dataset(d).commands
    place = cmds["kind"] == R.CMD_PLACE
    owner = dict(zip(cmds["order_id"][place].tolist(), cmds["user_id"][place].tolist()))
    seen, unknown, acts = set(), 0, 0
    for c in cmds:
        oid = int(c["order_id"])
        if c["kind"] == R.CMD_PLACE:
            seen.add(oid)
            continue
        acts += 1
        if oid in owner:
            assert oid in seen, "an action must come after its target"
            assert owner[oid] == c["user_id"]
        else:
            unknown += 1
    assert 0 < unknown <= 0.06 * acts


def test_quantities_have_at_most_six_decimals_and_prices_sit_around_the_mid(tmp_path):
    d = gen(tmp_path, orders=20000, cancel_ratio=0.1, users=100, seed=3)
    ds = load_dataset(d)
    places = ds.commands[ds.commands["kind"] == R.CMD_PLACE]
    assert (places["qty"] % 100 == 0).all() and (places["qty"] > 0).all()
    price = places["price"]
    assert abs(int(np.median(price)) - 8_500_000) < 50_000        # ~85000.00
    assert price.min() > 8_500_000 * 0.95 and price.max() < 8_500_000 * 1.05
    buys, sells = price[places["side"] == 0], price[places["side"] == 1]
    assert buys.mean() < sells.mean()


def test_high_balances_cover_everything_and_low_ones_do_not(tmp_path):
    low = load_dataset(gen(tmp_path, "low", orders=20000, users=50, seed=4, balance="low"))
    high = load_dataset(gen(tmp_path, "high", orders=20000, users=50, seed=4, balance="high"))
    assert low.commands.tobytes() == high.commands.tobytes()
    assert (low.deposits["amount"] < high.deposits["amount"]).all()
    # high: every user can lock all their sells at once, and all their buys' cost.
    c = high.commands
    for asset, side in ((1, R.SIDE_SELL), (2, R.SIDE_BUY)):
        dep = high.deposits[high.deposits["symbol"] == asset]
        avail = dict(zip(dep["user_id"].tolist(), dep["amount"].tolist()))
        sel = (c["kind"] == R.CMD_PLACE) & (c["side"] == side)
        need = {}
        for u, p, q in zip(c["user_id"][sel].tolist(), c["price"][sel].tolist(), c["qty"][sel].tolist()):
            need[u] = need.get(u, 0) + (q if side == R.SIDE_SELL else p * q // 10**8)
        assert all(avail[u] >= n for u, n in need.items())


def test_the_engine_rejects_none_on_high_and_many_on_low(tmp_path):
    st = pytest.importorskip("xinfinity.app.st")
    rejected = {}
    for balance in ("high", "low"):
        d = gen(tmp_path, balance, **{**dataclasses.asdict(MIX), "orders": 20000, "balance": balance})
        st.run_st(d, tmp_path / f"{balance}.out")
        summary = dict(line.split("=", 1) for line in
                       (tmp_path / f"{balance}.out" / "summary.txt").read_text().splitlines())
        rejected[balance] = int(summary["rejected"])
    assert rejected["high"] == 0
    assert rejected["low"] >= 200


def test_every_symbol_count_generates_and_loads(tmp_path):
    for k in range(1, G.MAX_SYMBOLS + 1):
        ds = load_dataset(gen(tmp_path, f"s{k}", orders=2000, users=10, seed=k, symbols=k,
                              market_ratio=0.2))
        assert len(ds.symbols) == k
        assert set(ds.commands["symbol"].tolist()) == set(range(k))


def test_bad_options_are_refused():
    for bad in (dict(orders=0), dict(users=0), dict(symbols=G.MAX_SYMBOLS + 1),
                dict(cancel_ratio=1.0), dict(ioc_ratio=0.6, market_ratio=0.6),
                dict(cancel_ratio=-0.1), dict(balance="medium")):
        with pytest.raises(ValueError):
            G.GenParams(**bad).validate()


def test_cli_writes_the_files_and_prints_one_summary_line(tmp_path, capsys):
    from xinfinity.cli import main
    out = tmp_path / "cli"
    assert main(["gen-fixture", "--orders", "1000", "--cancel-ratio", "0.3", "--users", "10",
                 "--seed", "9", "--out", str(out), "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gen-fixture: 1000 rows (700 places, 300 cancels")
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)


# -- recipes -----------------------------------------------------------------------

def test_toml_writer_round_trips_through_tomllib():
    data = {"a-b": {"s": 'q"uote\\ \u00e9', "i": -3, "f": 300000 / 1300000, "t": True,
                    "l": [1, 2], "sub": {"x.csv": "0" * 64}, "empty": {}}}
    assert tomllib.loads(RC.dumps_toml(data, "# header\n")) == data


def test_the_repository_recipes_parse_and_define_the_three_datasets():
    recipes = RC.load_recipes()
    assert {"gen-1m3-low", "gen-1m3-c30", "gen-200k-mix"} <= set(recipes)
    low, c30, mix = recipes["gen-1m3-low"], recipes["gen-1m3-c30"], recipes["gen-200k-mix"]
    assert low.params.counts()["cancels"] == 300_000 and low.params.balance == "low"
    assert c30.params.counts()["cancels"] == 390_000 and c30.params.balance == "low"
    assert mix.params.orders == 200_000 and mix.params.symbols == 2 and mix.params.fees
    assert all(getattr(mix.params, f) > 0 for f in ("ioc_ratio", "market_ratio", "move_ratio",
                                                    "reduce_ratio"))
    # Writing back changes nothing (the file is the writer's own output).
    text = RC.dumps_toml({n: r.to_toml() for n, r in recipes.items()}, RC.HEADER)
    assert text == RC.RECIPES_FILE.read_text()


def fixtures_cli(tmp_path, *argv) -> int:
    ap = argparse.ArgumentParser()
    RC.add_arguments(ap)
    args = ap.parse_args([*argv, "--recipes", str(tmp_path / "recipes.toml"),
                          "--dir", str(tmp_path / "generated"), "--quiet"])
    return RC.main(args)


def test_fixtures_record_check_and_refusal_on_a_tiny_recipe(tmp_path, capsys):
    pytest.importorskip("xinfinity.app.st")
    tiny = RC.Recipe("tiny", "a tiny set", G.GenParams(orders=2000, cancel_ratio=0.25, users=20,
                                                       seed=7, balance="low"))
    RC.save_recipes({"tiny": tiny}, tmp_path / "recipes.toml")
    assert fixtures_cli(tmp_path, "check", "tiny") == 2           # nothing recorded yet
    assert fixtures_cli(tmp_path, "record", "tiny") == 0
    rec = RC.load_recipes(tmp_path / "recipes.toml")["tiny"]
    assert set(rec.inputs) == set(FILES)
    assert "summary.txt" in rec.outputs and "perf.txt" not in rec.outputs
    assert fixtures_cli(tmp_path, "record", "tiny") == 2          # refuses without --force
    assert "already recorded" in capsys.readouterr().err
    assert fixtures_cli(tmp_path, "gen", "tiny") == 0             # up to date
    assert fixtures_cli(tmp_path, "check", "tiny") == 0
    # A wrong recorded output hash is a failure, with a verdict naming the file.
    text = (tmp_path / "recipes.toml").read_text()
    bad = text.replace(rec.outputs["summary.txt"], "0" * 64)
    (tmp_path / "recipes.toml").write_text(bad)
    capsys.readouterr()
    assert fixtures_cli(tmp_path, "check", "tiny") == 1
    out = capsys.readouterr().out
    assert "summary.txt" in out and "DIFFERENT" in out
    assert fixtures_cli(tmp_path, "record", "tiny", "--force") == 0
    assert RC.load_recipes(tmp_path / "recipes.toml")["tiny"].outputs == rec.outputs


def test_fixtures_check_fails_clearly_without_the_st_pipeline(tmp_path, monkeypatch, capsys):
    def missing():
        raise RC.RecipeError("the ST pipeline (xinfinity.app.st.run_st) is not available: test")
    monkeypatch.setattr(RC, "_run_st", missing)
    tiny = RC.Recipe("tiny", "", G.GenParams(orders=100), outputs={"summary.txt": "0" * 64})
    RC.save_recipes({"tiny": tiny}, tmp_path / "recipes.toml")
    assert fixtures_cli(tmp_path, "check", "tiny") == 2
    assert "ST pipeline" in capsys.readouterr().err
    assert fixtures_cli(tmp_path, "list") == 0
    assert fixtures_cli(tmp_path, "gen", "nope") == 2
