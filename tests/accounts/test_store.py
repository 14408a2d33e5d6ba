"""The account store: users register and log in with argon2id-hashed
passwords; API keys are made with their secret shown once (an Ed25519 seed is
never stored), revoked only by their owner, and carry a nonce high-water mark
that only rises and survives reopening the file."""
import sqlite3

import pytest

from xinfinity.accounts import signing
from xinfinity.accounts.errors import INVALID_PARAMETER, TAKEN, AccountError
from xinfinity.accounts.permissions import (ADMIN, READ, TRADE, TRANSFER, WITHDRAW, parse_permissions,
                                            permission_names)
from xinfinity.accounts.store import FIRST_USER_ID, SCHEMA_VERSION, AccountStore

PASSWORD = "correct horse"


@pytest.fixture
def store(tmp_path):
    with AccountStore(tmp_path / "accounts.db") as s:
        yield s


def _refused(code: int, fn, *args, **kw) -> str:
    with pytest.raises(AccountError) as e:
        fn(*args, **kw)
    assert e.value.code == code, e.value.message
    return e.value.message


# Users.

def test_user_ids_start_at_1000_and_increase(store):
    assert store.create_user("alice") == FIRST_USER_ID == 1000
    assert store.create_user("bob") == 1001
    assert store.user_id_of("bob") == 1001
    assert store.user(1000).username == "alice"
    assert store.user(1) is None and store.user_id_of("carol") is None


def test_get_or_create_user_reuses_the_existing_id(store):
    assert store.get_or_create_user("alice") == (1000, True)
    assert store.get_or_create_user("alice") == (1000, False)
    assert store.get_or_create_user("Alice") == (1000, False)


def test_registered_user_logs_in_by_username_or_email(store):
    user_id = store.register("alice", "alice@example.com", PASSWORD)
    by_name = store.login("alice", PASSWORD)
    assert by_name is not None and by_name.user_id == user_id and by_name.email == "alice@example.com"
    assert store.login("ALICE@example.com", PASSWORD) == by_name


def test_login_fails_for_a_wrong_password_and_for_an_unknown_user(store):
    store.register("alice", "alice@example.com", PASSWORD)
    assert store.login("alice", PASSWORD + "!") is None
    assert store.login("mallory", PASSWORD) is None
    assert store.login("mallory@example.com", PASSWORD) is None


def test_a_user_made_without_a_password_cannot_log_in(store):
    store.create_user("operator_made")
    assert store.login("operator_made", "") is None
    assert store.login("operator_made", PASSWORD) is None


def test_the_password_is_stored_as_an_argon2id_hash(store, tmp_path):
    store.register("alice", "alice@example.com", PASSWORD)
    (stored,) = sqlite3.connect(tmp_path / "accounts.db").execute("SELECT password_hash FROM users").fetchone()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_a_taken_username_or_email_is_refused_naming_the_field(store):
    store.register("alice", "alice@example.com", PASSWORD)
    assert _refused(TAKEN, store.register, "alice", "other@example.com", PASSWORD).startswith("username:")
    assert _refused(TAKEN, store.register, "ALICE", "other@example.com", PASSWORD).startswith("username:")
    assert _refused(TAKEN, store.register, "alice2", "Alice@Example.com", PASSWORD).startswith("email:")
    assert _refused(TAKEN, store.create_user, "alice").startswith("username:")


@pytest.mark.parametrize("username, email, password, field", [
    ("alice", "alice@example.com", "short", "password:"),
    ("al", "alice@example.com", PASSWORD, "username:"),
    ("a" * 33, "alice@example.com", PASSWORD, "username:"),
    ("alice smith", "alice@example.com", PASSWORD, "username:"),
    ("alice@home", "alice@example.com", PASSWORD, "username:"),
    ("alice", "alice.example.com", PASSWORD, "email:"),
    ("alice", "@example.com", PASSWORD, "email:"),
    ("alice", "alice@", PASSWORD, "email:"),
    ("alice", "a@b@example.com", PASSWORD, "email:"),
    ("alice", "alice @example.com", PASSWORD, "email:"),
])
def test_an_invalid_registration_is_refused_naming_the_field(store, username, email, password, field):
    assert _refused(INVALID_PARAMETER, store.register, username, email, password).startswith(field)
    assert store.user_id_of(username) is None


def test_the_schema_version_is_recorded_and_a_newer_one_is_refused(tmp_path):
    path = tmp_path / "accounts.db"
    AccountStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    assert "newer" in _refused(5000, AccountStore, path)


def test_the_database_file_is_readable_by_its_owner_only(store, tmp_path):
    assert (tmp_path / "accounts.db").stat().st_mode & 0o077 == 0


# API keys.

def test_an_ed25519_keys_stored_public_key_verifies_what_the_returned_seed_signs(store):
    user_id = store.create_user("alice")
    new = store.create_api_key(user_id, label="bot")
    assert signing.API_KEY_RE.match(new.api_key) and new.kind == signing.ED25519
    record = store.key(new.api_key)
    assert (record.user_id, record.permissions, record.revoked, record.hmac_secret) == (user_id, READ | TRADE,
                                                                                        False, None)
    data = signing.payload(new.api_key, 1, "POST", "/api/v1/private/order", b'{"qty":"1"}')
    seed = bytes.fromhex(new.secret_hex)
    assert signing.seed_of_pem(new.secret_pem) == seed
    for signer in (seed, signing.seed_of_pem(new.secret_pem)):
        assert signing.verify_ed25519(record.public_key, data, signing.sign_ed25519(signer, data))
    assert not signing.verify_ed25519(record.public_key, data + b" ", signing.sign_ed25519(seed, data))


def test_an_hmac_key_verifies_with_the_returned_secret(store):
    new = store.create_api_key(store.create_user("alice"), kind=signing.HMAC)
    assert new.secret_pem is None
    record = store.key(new.api_key)
    assert record.public_key is None and record.hmac_secret == bytes.fromhex(new.secret_hex)
    data = signing.payload(new.api_key, 1, "GET", "/api/v1/private/orders", b"")
    assert signing.verify_hmac(record.hmac_secret, data, signing.sign_hmac(bytes.fromhex(new.secret_hex), data))


def test_an_ed25519_seed_is_nowhere_in_the_database_files(store, tmp_path):
    user_id = store.create_user("alice")
    seeds = [bytes.fromhex(store.create_api_key(user_id).secret_hex) for _ in range(3)]
    public_key = store.key(store.api_keys(user_id)[0].api_key).public_key
    files = [p.read_bytes() for p in tmp_path.iterdir()]    # accounts.db, its -wal and -shm
    assert any(public_key in data for data in files)        # the scan would find what is there
    for seed in seeds:
        for data in files:
            assert seed not in data and seed.hex().encode() not in data


def test_listed_keys_carry_no_secret(store):
    user_id = store.create_user("alice")
    new = store.create_api_key(user_id, label="bot", permissions=READ)
    (info,) = store.api_keys(user_id)
    assert (info.api_key, info.kind, info.permissions, info.label, info.revoked_ms) == (new.api_key, "ed25519",
                                                                                       READ, "bot", None)
    assert new.secret_hex not in repr(info)


def test_a_key_for_a_missing_user_or_with_bad_permissions_is_refused(store):
    assert _refused(INVALID_PARAMETER, store.create_api_key, 4242).startswith("user_id:")
    user_id = store.create_user("alice")
    for mask in (0, 32, -1):
        assert _refused(INVALID_PARAMETER, store.create_api_key, user_id, permissions=mask).startswith("permissions:")
    assert _refused(INVALID_PARAMETER, store.create_api_key, user_id, kind="rsa").startswith("kind:")
    assert store.api_keys(user_id) == []


def test_only_the_owner_revokes_a_key_and_a_revoked_key_takes_no_nonce(store):
    alice, bob = store.create_user("alice"), store.create_user("bob")
    key = store.create_api_key(alice).api_key
    assert not store.revoke_api_key(bob, key, now_ms=5)
    assert store.advance_nonce(key, 1)
    assert store.revoke_api_key(alice, key, now_ms=7)
    assert not store.revoke_api_key(alice, key, now_ms=8)      # already revoked
    assert store.key(key).revoked and store.api_keys(alice)[0].revoked_ms == 7
    assert not store.advance_nonce(key, 2)


def test_the_nonce_only_rises(store):
    key = store.create_api_key(store.create_user("alice")).api_key
    assert store.advance_nonce(key, 1_700_000_000_000)
    assert not store.advance_nonce(key, 1_700_000_000_000)
    assert not store.advance_nonce(key, 1_699_999_999_999)
    assert store.advance_nonce(key, 1_700_000_000_001)
    assert store.key(key).nonce == 1_700_000_000_001
    assert not store.advance_nonce("AK_0000000000000000", 1_800_000_000_000)
    assert not store.advance_nonce(key, 0) and not store.advance_nonce(key, 1 << 63)


def test_the_nonce_mark_survives_reopening_the_store(tmp_path):
    with AccountStore(tmp_path / "accounts.db") as s:
        key = s.create_api_key(s.create_user("alice")).api_key
        assert s.advance_nonce(key, 500)
    with AccountStore(tmp_path / "accounts.db") as s:
        assert s.key(key).nonce == 500
        assert not s.advance_nonce(key, 500)
        assert s.advance_nonce(key, 501)


def test_two_stores_on_one_file_accept_each_nonce_once(tmp_path):
    with AccountStore(tmp_path / "accounts.db") as a, AccountStore(tmp_path / "accounts.db") as b:
        key = a.create_api_key(a.create_user("alice")).api_key
        assert b.key(key) is not None
        for nonce in range(1, 50):
            assert [a.advance_nonce(key, nonce), b.advance_nonce(key, nonce)] == [True, False]


# Permissions.

def test_permissions_parse_by_name_and_name_back():
    assert parse_permissions("read,trade") == READ | TRADE == 3
    assert parse_permissions(" Read , WITHDRAW,transfer,admin") == READ | WITHDRAW | TRANSFER | ADMIN
    assert permission_names(READ | TRADE) == ["read", "trade"]
    assert permission_names(parse_permissions("admin,read")) == ["read", "admin"]


@pytest.mark.parametrize("text, named", [("read,foo", "'foo'"), ("", "none"), ("read,,trade", "''")])
def test_an_unknown_permission_name_is_refused_by_name(text, named):
    message = _refused(INVALID_PARAMETER, parse_permissions, text)
    assert message.startswith("permissions:") and named in message


def test_a_mask_with_unknown_bits_has_no_names():
    assert _refused(INVALID_PARAMETER, permission_names, 64).startswith("permissions:")
