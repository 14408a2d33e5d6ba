"""`xinf apikey`: create prints a working key once (the fields the clients
read), makes the user once and reuses it; list and revoke act on the named
user's keys only; a bad request exits 2 naming what was wrong and changes
nothing. Run through accounts/cli.py's own parser: xinf's full parser imports
the engine."""
import argparse
import json

import pytest

from xinfinity.accounts import cli, signing
from xinfinity.accounts.permissions import READ, TRADE, WITHDRAW
from xinfinity.accounts.store import AccountStore


def _xinf_apikey(capsys, *argv) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="xinf apikey")
    cli.add_arguments(parser)
    code = cli.main(parser.parse_args([str(a) for a in argv]))
    out, err = capsys.readouterr()
    return code, out, err


def _create_json(capsys, data_dir, *extra) -> dict:
    code, out, err = _xinf_apikey(capsys, "create", "--user", "alice", "--json", "--data-dir", data_dir, *extra)
    assert (code, err) == (0, "")
    return json.loads(out)


def test_create_json_prints_an_ed25519_key_whose_pem_matches_the_stored_public_key(capsys, tmp_path):
    key = _create_json(capsys, tmp_path)
    assert set(key) == {"api_key", "secret_pem", "secret_hex", "user_id", "kind"}
    assert key["kind"] == "ed25519" and key["user_id"] == 1000
    seed = signing.seed_of_pem(key["secret_pem"])
    assert seed.hex() == key["secret_hex"] and "PRIVATE KEY" in key["secret_pem"]
    with AccountStore(cli.accounts_db(tmp_path)) as store:
        record = store.key(key["api_key"])
        assert store.user_id_of("alice") == 1000
    assert record.public_key == signing.public_key_of(seed)
    assert (record.user_id, record.permissions) == (1000, READ | TRADE)


def test_a_second_create_for_the_same_user_reuses_its_id_and_hmac_prints_the_secret(capsys, tmp_path):
    first = _create_json(capsys, tmp_path)
    second = _create_json(capsys, tmp_path, "--hmac", "--permissions", "read,withdraw", "--label", "desk")
    assert set(second) == {"api_key", "secret", "user_id", "kind"}
    assert (second["user_id"], second["kind"]) == (first["user_id"], "hmac")
    assert second["api_key"] != first["api_key"]
    with AccountStore(cli.accounts_db(tmp_path)) as store:
        record = store.key(second["api_key"])
        assert [k.label for k in store.api_keys(first["user_id"])] == ["", "desk"]
    data = signing.payload(second["api_key"], 1, "GET", "/api/v1/private/balances/all", b"")
    assert signing.verify_hmac(record.hmac_secret, data, signing.sign_hmac(bytes.fromhex(second["secret"]), data))
    assert record.permissions == READ | WITHDRAW


def test_create_as_text_shows_the_secret_and_says_it_is_shown_once(capsys, tmp_path):
    code, out, _ = _xinf_apikey(capsys, "create", "--user", "alice", "--data-dir", tmp_path)
    assert code == 0
    with AccountStore(cli.accounts_db(tmp_path)) as store:
        (info,) = store.api_keys(1000)
    assert info.api_key in out and "BEGIN PRIVATE KEY" in out and "shown this once" in out


def test_the_default_data_dir_is_data_under_the_working_directory(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, _ = _xinf_apikey(capsys, "create", "--user", "alice")
    assert code == 0 and (tmp_path / "data" / "accounts.db").is_file()
    assert cli.accounts_db(tmp_path / "data") == tmp_path / "data" / "accounts.db"


def test_list_shows_a_users_keys_and_revoke_takes_only_their_own(capsys, tmp_path):
    alice = _create_json(capsys, tmp_path)
    code, out, err = _xinf_apikey(capsys, "create", "--user", "bob", "--json", "--data-dir", tmp_path)
    bob = json.loads(out)
    code, out, err = _xinf_apikey(capsys, "revoke", "--user", "bob", "--key", alice["api_key"], "--data-dir", tmp_path)
    assert code == 2 and alice["api_key"] in err and "bob" in err
    assert _xinf_apikey(capsys, "revoke", "--user", "alice", "--key", alice["api_key"], "--data-dir", tmp_path)[0] == 0
    assert _xinf_apikey(capsys, "revoke", "--user", "alice", "--key", alice["api_key"], "--data-dir", tmp_path)[0] == 2
    code, out, _ = _xinf_apikey(capsys, "list", "--user", "alice", "--json", "--data-dir", tmp_path)
    (listed,) = json.loads(out)
    assert listed["api_key"] == alice["api_key"] and listed["revoked_ms"] is not None
    assert listed["permissions"] == ["read", "trade"] and alice["secret_hex"] not in out
    code, out, _ = _xinf_apikey(capsys, "list", "--user", "bob", "--data-dir", tmp_path)
    assert code == 0 and bob["api_key"] in out and "active" in out and alice["api_key"] not in out


@pytest.mark.parametrize("argv, named", [
    (["create", "--user", "alice", "--permissions", "read,foo"], "xinf: permissions: unknown 'foo'"),
    (["create", "--user", "a b"], "xinf: username:"),
    (["create", "--user", "alice", "--label", "x" * 65], "xinf: label:"),
    (["list", "--user", "alice"], "xinf: no account store at"),
    (["revoke", "--user", "alice", "--key", "AK_0000000000000000"], "xinf: no account store at"),
])
def test_a_bad_request_exits_2_naming_what_was_wrong_and_makes_no_store(capsys, tmp_path, argv, named):
    code, out, err = _xinf_apikey(capsys, *argv, "--data-dir", tmp_path / "data")
    assert (code, out) == (2, "") and err.startswith(named)
    assert not (tmp_path / "data" / "accounts.db").exists()


def test_list_for_an_unknown_user_exits_2_naming_the_user(capsys, tmp_path):
    _create_json(capsys, tmp_path)
    code, _, err = _xinf_apikey(capsys, "list", "--user", "mallory", "--data-dir", tmp_path)
    assert code == 2 and "'mallory'" in err
