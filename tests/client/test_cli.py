"""`xinf order|balance|deposit|withdraw` against a recording stub: exit codes, messages, what is sent."""
from __future__ import annotations

import socket
import subprocess
import sys

import msgspec
import pytest

from xinfinity.accounts import signing
from xinfinity.client import cli
from tests.client.stub_http import ED_DOC, SEED, StubServer


@pytest.fixture
def stub():
    s = StubServer()
    yield s
    s.stop()


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "me.json"
    path.write_bytes(msgspec.json.encode(ED_DOC))
    return str(path)


def _answer(data, status=200, code=0, msg="ok"):
    doc = {"code": code, "msg": msg, "data": data} if code == 0 else {"code": code, "msg": msg}
    return lambda seen: (status, msgspec.json.encode(doc))


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


PLACED = {"order_id": 42, "cid": "c1", "seq": 9, "order_status": "PARTIALLY_FILLED", "accepted_at": 1,
          "filled_qty": "0.2", "fills": [{"trade_id": 3, "price": "100", "qty": "0.2", "fee": "0.0002",
                                          "fee_asset": "BTC", "role": "TAKER"}]}


def test_order_place_sends_the_order_and_prints_it_with_its_fills(stub, key_file, capsys):
    stub.responder = _answer(PLACED)
    code, out, err = _run(capsys, "order", "place", "--symbol", "BTC_USDT", "--side", "BUY", "--type", "limit",
                          "--price", "100", "--qty", "0.5", "--cid", "c1", "--url", stub.url, "--key", key_file)
    assert (code, err) == (0, "")
    assert msgspec.json.decode(stub.seen[0].body) == {"symbol": "BTC_USDT", "side": "BUY", "order_type": "LIMIT",
                                                      "time_in_force": "GTC", "price": "100", "qty": "0.5",
                                                      "cid": "c1"}
    assert out.splitlines() == ["order 42 PARTIALLY_FILLED  filled 0.2  cid c1  seq 9",
                                "  fill 3  0.2 @ 100  fee 0.0002 BTC  TAKER"]


def test_json_prints_the_response_data_as_json(stub, key_file, capsys):
    stub.responder = _answer(PLACED)
    code, out, _ = _run(capsys, "order", "place", "--symbol", "BTC_USDT", "--side", "sell", "--type", "market",
                        "--qty", "1", "--json", "--url", stub.url, "--key", key_file)
    assert code == 0 and msgspec.json.decode(out) == PLACED
    assert msgspec.json.decode(stub.seen[0].body)["order_type"] == "MARKET"


def test_order_list_passes_the_filters_and_prints_a_table(stub, key_file, capsys):
    stub.responder = _answer([{"order_id": 1, "symbol": "BTC_USDT", "side": "BUY", "order_type": "LIMIT",
                               "price": "100", "qty": "1", "filled_qty": "0", "status": "NEW"}])
    code, out, _ = _run(capsys, "order", "list", "--symbol", "BTC_USDT", "--status", "open", "--limit", "5",
                        "--url", stub.url, "--key", key_file)
    assert code == 0
    assert stub.seen[0].target == "/api/v1/private/orders?symbol=BTC_USDT&status=open&limit=5"
    header, row = out.splitlines()
    assert header.split() == ["order_id", "symbol", "side", "order_type", "price", "qty", "filled_qty", "status",
                              "cid"]
    assert row.split() == ["1", "BTC_USDT", "BUY", "LIMIT", "100", "1", "0", "NEW"]


def test_order_cancel_and_get_name_the_order(stub, key_file, capsys):
    stub.responder = _answer({"order_id": 7, "order_status": "CANCELED", "accepted_at": 5})
    assert _run(capsys, "order", "cancel", "7", "--url", stub.url, "--key", key_file)[1] == "order 7 CANCELED\n"
    stub.responder = _answer({"order_id": 7, "status": "CANCELED"})
    assert _run(capsys, "order", "get", "7", "--url", stub.url, "--key", key_file)[1].split() == [
        "order_id", "7", "status", "CANCELED"]
    assert [(s.method, s.target) for s in stub.seen] == [("POST", "/api/v1/private/cancel"),
                                                        ("GET", "/api/v1/private/order/7")]


def test_balance_prints_every_asset_or_the_one_asked(stub, key_file, capsys):
    stub.responder = _answer([{"asset_id": 1, "asset": "BTC", "account_type": "spot", "available": "1.5",
                               "frozen": "0"}])
    code, out, _ = _run(capsys, "balance", "--url", stub.url, "--key", key_file)
    assert code == 0 and [line.split() for line in out.splitlines()] == [["asset", "available", "frozen"],
                                                                         ["BTC", "1.5", "0"]]
    stub.responder = _answer({"user_id": 7, "asset": "USDT", "avail": "10", "frozen": "2"})
    code, out, _ = _run(capsys, "balance", "--asset", "USDT", "--url", stub.url, "--key", key_file)
    assert out.splitlines()[1].split() == ["USDT", "10", "2"]
    assert [s.target for s in stub.seen] == ["/api/v1/private/balances/all", "/api/v1/private/balances?asset=USDT"]


def test_a_refusal_from_the_server_exits_1_with_its_code_and_message(stub, key_file, capsys):
    stub.responder = _answer(None, status=400, code=1002, msg="insufficient balance")
    code, out, err = _run(capsys, "order", "place", "--symbol", "BTC_USDT", "--side", "buy", "--price", "1",
                          "--qty", "1", "--url", stub.url, "--key", key_file)
    assert (code, out, err) == (1, "", "xinf: 1002 insufficient balance\n")


def test_no_server_exits_1_saying_it_is_not_running_at_the_url(key_file, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    code, _, err = _run(capsys, "balance", "--url", url, "--key", key_file)
    assert code == 1 and f"no server is running at {url} (connection refused)" in err


@pytest.mark.parametrize("argv, message", [
    (["balance"], "balance needs --key FILE"),
    (["order", "place", "--symbol", "S", "--side", "buy", "--qty", "1"], "needs --price and --qty"),
    (["order", "place", "--symbol", "S", "--side", "buy", "--price", "1e5", "--qty", "1"],
     "--price '1e5' has a bad character"),
    (["order", "place", "--symbol", "S", "--side", "buy", "--price", "-1", "--qty", "1"], "--price '-1'"),
    (["order", "place", "--symbol", "S", "--side", "buy", "--type", "market", "--price", "1", "--qty", "1"],
     "takes no --price"),
    (["order", "place", "--symbol", "S", "--side", "buy", "--type", "market"], "exactly one of --qty"),
    (["order", "place", "--symbol", "S", "--side", "sell", "--type", "market", "--quote-qty", "5"],
     "market buys only"),
], ids=["no-key", "limit-no-price", "exponent", "negative", "market-price", "market-no-qty", "sell-quote-qty"])
def test_bad_arguments_exit_2_naming_what_is_wrong(argv, message, key_file, capsys):
    if argv != ["balance"]:
        argv = argv + ["--key", key_file]
    code, _, err = _run(capsys, *argv, "--url", "http://127.0.0.1:9")
    assert code == 2 and message in err, err


@pytest.mark.parametrize("argv", [
    ["order", "place", "--side", "buy", "--price", "1", "--qty", "1"],
    ["order", "place", "--symbol", "S", "--side", "hold", "--price", "1", "--qty", "1"],
    ["order", "place", "--symbol", "S", "--side", "buy", "--tif", "fok", "--price", "1", "--qty", "1"],
    ["order", "cancel", "abc"],
    ["order", "list", "--status", "done"],
    ["order"],
    ["deposit", "--user", "1", "--asset", "BTC", "--amount", "1"],
], ids=["no-symbol", "bad-side", "bad-tif", "non-numeric-id", "bad-status", "no-subcommand", "no-data-dir"])
def test_argument_parse_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_a_missing_or_bad_key_file_exits_2_naming_the_file(tmp_path, capsys):
    code, _, err = _run(capsys, "balance", "--key", tmp_path / "gone.json")
    assert code == 2 and "gone.json: not found" in err
    (tmp_path / "bad.json").write_text('{"api_key": "AK_1"}')
    code, _, err = _run(capsys, "balance", "--key", tmp_path / "bad.json")
    assert code == 2 and "bad.json: api_key 'AK_1'" in err


# -- operator --------------------------------------------------------------------------

@pytest.fixture
def data_dir(tmp_path, stub):
    d = tmp_path / "data"
    d.mkdir()
    (d / "serve.json").write_bytes(msgspec.json.encode({"url": stub.url, "pid": 1}))
    (d / "operator.json").write_bytes(msgspec.json.encode(ED_DOC))
    return d


@pytest.mark.parametrize("what", ["deposit", "withdraw"])
def test_deposit_and_withdraw_sign_with_the_operator_key_and_print_the_new_balance(stub, data_dir, capsys, what):
    stub.responder = _answer({"user_id": 5, "asset": "USDT", "seq": 11, "avail": "1000", "frozen": "0"})
    code, out, err = _run(capsys, what, "--user", "5", "--asset", "USDT", "--amount", "1000",
                          "--data-dir", data_dir)
    assert (code, err) == (0, "")
    assert out == "user 5 USDT  available 1000  frozen 0  seq 11\n"
    seen = stub.seen[0]
    assert (seen.method, seen.target) == ("POST", f"/api/v1/admin/{what}")
    assert msgspec.json.decode(seen.body) == {"user_id": 5, "asset": "USDT", "amount": "1000"}
    api_key, nonce, sig = signing.parse_authorization(seen.headers["authorization"])
    assert signing.verify_ed25519(signing.public_key_of(SEED),
                                  signing.payload(api_key, nonce, "POST", seen.target, seen.body), sig)


def test_a_username_is_resolved_through_the_account_store_of_the_data_dir(stub, data_dir, capsys):
    from xinfinity.accounts.cli import accounts_db
    from xinfinity.accounts.store import AccountStore
    with AccountStore(accounts_db(data_dir)) as store:
        alice = store.create_user("alice")
    stub.responder = _answer({"user_id": alice, "asset": "BTC", "seq": 1, "avail": "1", "frozen": "0"})
    code, _, _ = _run(capsys, "deposit", "--user", "alice", "--asset", "BTC", "--amount", "1", "--data-dir", data_dir)
    assert code == 0
    assert msgspec.json.decode(stub.seen[0].body)["user_id"] == alice
    code, _, err = _run(capsys, "deposit", "--user", "bob", "--asset", "BTC", "--amount", "1", "--data-dir", data_dir)
    assert code == 2 and "--user 'bob': no such user" in err
    assert len(stub.seen) == 1


def test_operator_commands_say_what_is_missing_from_the_data_dir(data_dir, capsys):
    argv = ["withdraw", "--user", "5", "--asset", "BTC", "--amount", "1", "--data-dir", data_dir]
    (data_dir / "serve.json").unlink()
    code, _, err = _run(capsys, *argv)
    assert code == 1 and "serve.json: is the server running" in err
    (data_dir / "operator.json").unlink()
    code, _, err = _run(capsys, *argv)
    assert code == 2 and "operator.json: not found" in err
    code, _, err = _run(capsys, *argv[:-1], data_dir / "nowhere")
    assert code == 2 and "not a directory" in err


def test_xinf_registers_the_client_commands(stub, key_file):
    stub.responder = _answer({"order_id": 9, "status": "NEW"})
    r = subprocess.run([sys.executable, "-m", "xinfinity.cli", "order", "get", "9", "--json",
                        "--url", stub.url, "--key", key_file], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert msgspec.json.decode(r.stdout) == {"order_id": 9, "status": "NEW"}
