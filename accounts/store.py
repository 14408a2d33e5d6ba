"""Users and their API keys, in one SQLite file several processes share.

The gateway's workers and the operator CLI each open their own `AccountStore`
on the same file; SQLite's WAL mode lets readers run beside one writer, and
`busy_timeout` makes a writer wait (up to 5 s) for another rather than fail.
One `AccountStore` is one connection and belongs to one thread.

Invariants:
- User ids are 1000 and up: the ids below belong to the exchange's own
  accounts (user 1 receives the fees). A new user gets the largest id so far
  plus one, never below 1000; ids are never reused while the row exists.
- Usernames and emails are unique ignoring ASCII case ("Alice" is "alice"), so
  one name cannot be registered twice in two spellings.
- Passwords are stored only as argon2id hashes (argon2-cffi's defaults,
  RFC 9106's low-memory profile: 64 MiB, 3 passes, 4 lanes; about 0.2 s of
  one core per hash or verify here, which is what makes guessing expensive).
- An Ed25519 key stores only its public key: the 32-byte seed is returned once
  by `create_api_key` and then exists only with its owner. An HMAC key must
  store its secret, because verifying an HMAC means computing it again.
- `nonce` is the largest ts_nonce accepted for the key. `advance_nonce` raises
  it in one conditional UPDATE, so of two processes offering nonces for one key
  at once each nonce is accepted at most once and the accepted ones increase.
  It survives restarts; with `synchronous=NORMAL` a power loss (not a process
  crash) may lose the last few raises, which the gateway's 30 s timestamp
  window then bounds.
- `signatures` holds the signed requests of the Binance-compatible API
  (gateway/binance/), which carry no nonce: a (key, signature digest) pair is
  claimed once, by a primary key, so an exact replay is refused in any process
  and after a restart. A row is needed only while its timestamp could still pass
  the gateway's window, so each claim first forgets the rows the caller says are
  older than that.

The database file is created readable by its owner only (it holds HMAC secrets
and password hashes); SQLite gives its -wal and -shm files the same mode.
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import re
import secrets
import sqlite3
import time
from typing import NamedTuple

import argon2
import argon2.exceptions

from .errors import INTERNAL, INVALID_PARAMETER, TAKEN, AccountError
from .permissions import DEFAULT, check_mask
from .signing import API_KEY_RE, ED25519, HMAC, ed25519_pem, public_key_of

SCHEMA_VERSION = 1
FIRST_USER_ID = 1000
BUSY_TIMEOUT_MS = 5000
USERNAME_RE = re.compile(r"[A-Za-z0-9_.-]{3,32}")
PASSWORD_MIN, PASSWORD_MAX = 8, 1024    # the maximum bounds the work a request can ask of the hasher
EMAIL_MAX = 254                         # RFC 5321's limit on a forward path
LABEL_MAX = 64
SECRET_BYTES = 32
_KEY_ATTEMPTS = 8                       # 64 random bits: a collision is already unlikely once

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS users (
        user_id       INTEGER PRIMARY KEY,
        username      TEXT NOT NULL COLLATE NOCASE UNIQUE,
        email         TEXT COLLATE NOCASE UNIQUE,
        password_hash TEXT,                 -- argon2id; NULL for users made by the operator
        created_ms    INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS api_keys (
        api_key     TEXT PRIMARY KEY,       -- AK_ and 16 uppercase hex digits
        user_id     INTEGER NOT NULL REFERENCES users(user_id),
        kind        TEXT NOT NULL CHECK (kind IN ('ed25519', 'hmac')),
        -- Ed25519: only the 32-byte public key; the seed was shown once and is not kept.
        public_key  BLOB CHECK (public_key IS NULL OR length(public_key) = 32),
        -- HMAC: the secret itself, since verifying an HMAC means computing it again.
        hmac_secret BLOB,
        permissions INTEGER NOT NULL,       -- READ 1, TRADE 2, WITHDRAW 4, TRANSFER 8, ADMIN 16
        label       TEXT NOT NULL DEFAULT '',
        created_ms  INTEGER NOT NULL,
        revoked_ms  INTEGER,
        nonce       INTEGER NOT NULL DEFAULT 0,  -- the largest ts_nonce accepted
        CHECK ((kind = 'ed25519') = (public_key IS NOT NULL)
               AND (kind = 'hmac') = (hmac_secret IS NOT NULL))
    )""",
    "CREATE INDEX IF NOT EXISTS api_keys_by_user ON api_keys(user_id)",
    # Added after schema 1 shipped: CREATE IF NOT EXISTS gives it to older files as they open,
    # and older code never reads it, so the schema version stays.
    """CREATE TABLE IF NOT EXISTS signatures (
        api_key TEXT NOT NULL,
        digest  BLOB NOT NULL,              -- a hash of the signature of a request
        ts_ms   INTEGER NOT NULL,           -- that request's timestamp, for forgetting it
        PRIMARY KEY (api_key, digest)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS signatures_by_ts ON signatures(ts_ms)",
)


class User(NamedTuple):
    user_id: int
    username: str
    email: str | None
    created_ms: int


class NewKey(NamedTuple):
    """A key just made: the only time its secret is seen."""
    api_key: str
    kind: str               # ED25519 | HMAC
    secret_hex: str         # Ed25519: the 32-byte seed; HMAC: the 32-byte secret
    secret_pem: str | None  # Ed25519: the seed as a PKCS#8 PEM (what CCXT takes); HMAC: None
    permissions: int


class KeyInfo(NamedTuple):
    """A key as its owner lists it: no secret."""
    api_key: str
    kind: str
    permissions: int
    label: str
    created_ms: int
    revoked_ms: int | None


class KeyRecord(NamedTuple):
    """What the gateway needs to verify a request signed with the key."""
    api_key: str
    user_id: int
    kind: str
    public_key: bytes | None    # Ed25519 keys
    hmac_secret: bytes | None   # HMAC keys
    permissions: int
    revoked: bool
    nonce: int                  # the largest ts_nonce accepted so far


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def check_username(username) -> str:
    if not isinstance(username, str) or not USERNAME_RE.fullmatch(username):
        raise AccountError(INVALID_PARAMETER, "username: 3 to 32 characters of A-Z a-z 0-9 _ . -")
    return username


def check_email(email) -> str:
    local, _, domain = email.partition("@") if isinstance(email, str) else ("", "", "")
    if (not local or not domain or "@" in domain or len(email) > EMAIL_MAX
            or any(ch.isspace() for ch in email)):
        raise AccountError(INVALID_PARAMETER,
                           f"email: expected one @ with text on both sides, no spaces, at most {EMAIL_MAX} characters")
    return email


def check_password(password) -> str:
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise AccountError(INVALID_PARAMETER, f"password: {PASSWORD_MIN} to {PASSWORD_MAX} characters")
    return password


def check_label(label) -> str:
    if not isinstance(label, str) or len(label) > LABEL_MAX or not label.isprintable():
        raise AccountError(INVALID_PARAMETER, f"label: at most {LABEL_MAX} printable characters")
    return label


class AccountStore:
    def __init__(self, path, password_hasher: argon2.PasswordHasher | None = None, checkpoints: bool = True):
        """checkpoints False: this connection never checkpoints the WAL itself (a
        checkpoint syncs the database file: milliseconds a gateway worker must not
        spend inside a request); someone else must (app/serve.py's supervisor does)."""
        self.path = pathlib.Path(path)
        self._hasher = password_hasher or argon2.PasswordHasher()
        self._dummy_hash: str | None = None
        # Create the file owner-only before SQLite does (it would use the umask).
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        # isolation_level=None: every statement commits by itself unless inside
        # `_transaction`, so advance_nonce's UPDATE is one atomic transaction.
        self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._enter_wal()
            self._db.execute("PRAGMA synchronous = NORMAL")
            if not checkpoints:
                self._db.execute("PRAGMA wal_autocheckpoint = 0")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._create_schema()
        except BaseException:
            self._db.close()
            raise

    def _enter_wal(self) -> None:
        # WAL mode is stored in the file, so only its first opener switches it;
        # but openers of a fresh file race to, and the switch answers SQLITE_BUSY
        # at once instead of waiting on busy_timeout. Retry until then.
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as e:
                if e.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.002)
        if mode != "wal":
            raise AccountError(INTERNAL, f"{self.path}: SQLite refused WAL mode (got {mode!r})")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AccountStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self):
        # IMMEDIATE takes the write lock now (waiting up to busy_timeout), so a
        # read inside sees what the write after it will be checked against.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _create_schema(self) -> None:
        with self._transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise AccountError(INTERNAL, f"{self.path}: schema version {version} is newer than this "
                                             f"code's {SCHEMA_VERSION}; upgrade xinfinity")
            for statement in _SCHEMA:
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # Users.

    def create_user(self, username: str, email: str | None = None, password: str | None = None,
                    now_ms: int | None = None) -> int:
        """A new user's id; AccountError 1005 naming the field if the username or email is taken."""
        check_username(username)
        if email is not None:
            check_email(email)
        password_hash = self._hasher.hash(check_password(password)) if password is not None else None
        created = _now(now_ms)
        try:
            with self._transaction():
                cur = self._db.execute(
                    "INSERT INTO users (user_id, username, email, password_hash, created_ms) "
                    "SELECT max(coalesce(max(user_id), 0), ?) + 1, ?, ?, ?, ? FROM users",
                    (FIRST_USER_ID - 1, username, email, password_hash, created))
                user_id = cur.lastrowid
        except sqlite3.IntegrityError as e:
            raise _taken(e, username, email) from None
        assert user_id >= FIRST_USER_ID, user_id
        return user_id

    def register(self, username: str, email: str, password: str, now_ms: int | None = None) -> int:
        """A user who signed up (POST /api/v1/auth/register); every field is required."""
        check_username(username)
        check_email(email)
        check_password(password)
        # Refuse a taken name before spending a hash on it; the UNIQUE
        # constraints still decide a race between two registrations.
        row = self._db.execute("SELECT username = ?, email = ? FROM users WHERE username = ? OR email = ? "
                               "ORDER BY 1 DESC", (username, email, username, email)).fetchone()
        if row is not None:
            raise _taken_field("username" if row[0] else "email", username, email)
        return self.create_user(username, email, password, now_ms)

    def user_id_of(self, username: str) -> int | None:
        row = self._db.execute("SELECT user_id FROM users WHERE username = ?", (username,)).fetchone()
        return row[0] if row else None

    def get_or_create_user(self, username: str, now_ms: int | None = None) -> tuple[int, bool]:
        """(user_id, created): the user named `username`, made (without email or password) if new."""
        user_id = self.user_id_of(username)
        if user_id is not None:
            return user_id, False
        try:
            return self.create_user(username, now_ms=now_ms), True
        except AccountError as e:
            if e.code != TAKEN:
                raise
            return self.user_id_of(username), False    # another process made it first

    def user(self, user_id: int) -> User | None:
        row = self._db.execute("SELECT user_id, username, email, created_ms FROM users WHERE user_id = ?",
                               (user_id,)).fetchone()
        return User(*row) if row else None

    def login(self, email_or_username: str, password: str) -> User | None:
        """The user if the password is theirs, else None. An unknown user costs
        the same hash verification as a wrong password, so the answer's time
        does not say which names exist."""
        if not isinstance(email_or_username, str) or not isinstance(password, str):
            return None
        column = "email" if "@" in email_or_username else "username"
        row = self._db.execute(
            f"SELECT user_id, username, email, created_ms, password_hash FROM users WHERE {column} = ?",
            (email_or_username,)).fetchone()
        if row is None or row[4] is None:
            self._verify_dummy(password)
            return None
        try:
            self._hasher.verify(row[4], password)
        except argon2.exceptions.VerificationError:
            return None
        if self._hasher.check_needs_rehash(row[4]):
            # The hasher's parameters changed since this hash was made: store one at today's cost.
            self._db.execute("UPDATE users SET password_hash = ? WHERE user_id = ?",
                             (self._hasher.hash(password), row[0]))
        return User(*row[:4])

    def _verify_dummy(self, password: str) -> None:
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_hex(16))
        try:
            self._hasher.verify(self._dummy_hash, password)
        except argon2.exceptions.VerificationError:
            pass

    # API keys.

    def create_api_key(self, user_id: int, label: str = "", permissions: int = DEFAULT, kind: str = ED25519,
                       now_ms: int | None = None) -> NewKey:
        """A new key for the user. Its secret is in the result and nowhere else
        for Ed25519 (only the public key is stored); stored too for HMAC."""
        if kind not in (ED25519, HMAC):
            raise AccountError(INVALID_PARAMETER, f"kind: {kind!r} is neither {ED25519!r} nor {HMAC!r}")
        check_mask(permissions)
        check_label(label)
        if self.user(user_id) is None:
            raise AccountError(INVALID_PARAMETER, f"user_id: no user {user_id}")
        secret = secrets.token_bytes(SECRET_BYTES)
        public_key, hmac_secret = (public_key_of(secret), None) if kind == ED25519 else (None, secret)
        created = _now(now_ms)
        for _ in range(_KEY_ATTEMPTS):
            api_key = "AK_" + secrets.token_hex(8).upper()
            assert API_KEY_RE.match(api_key), api_key
            try:
                self._db.execute(
                    "INSERT INTO api_keys (api_key, user_id, kind, public_key, hmac_secret, permissions, label, "
                    "created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (api_key, user_id, kind, public_key, hmac_secret, permissions, label, created))
            except sqlite3.IntegrityError as e:
                if "api_keys.api_key" in str(e):
                    continue
                raise
            pem = ed25519_pem(secret) if kind == ED25519 else None
            return NewKey(api_key, kind, secret.hex(), pem, permissions)
        raise AccountError(INTERNAL, f"api_key: {_KEY_ATTEMPTS} random keys in a row were taken")

    def api_keys(self, user_id: int) -> list[KeyInfo]:
        """The user's keys, revoked ones included, oldest first."""
        rows = self._db.execute(
            "SELECT api_key, kind, permissions, label, created_ms, revoked_ms FROM api_keys "
            "WHERE user_id = ? ORDER BY created_ms, api_key", (user_id,)).fetchall()
        return [KeyInfo(*row) for row in rows]

    def revoke_api_key(self, user_id: int, api_key: str, now_ms: int | None = None) -> bool:
        """True if the key was the user's and active; it is refused from now on."""
        cur = self._db.execute(
            "UPDATE api_keys SET revoked_ms = ? WHERE api_key = ? AND user_id = ? AND revoked_ms IS NULL",
            (_now(now_ms), api_key, user_id))
        return cur.rowcount == 1

    def key(self, api_key: str) -> KeyRecord | None:
        row = self._db.execute(
            "SELECT api_key, user_id, kind, public_key, hmac_secret, permissions, revoked_ms IS NOT NULL, nonce "
            "FROM api_keys WHERE api_key = ?", (api_key,)).fetchone()
        if row is None:
            return None
        key = KeyRecord(*row[:6], bool(row[6]), row[7])
        assert (key.public_key is not None) == (key.kind == ED25519), key.api_key
        return key

    def advance_nonce(self, api_key: str, ts_nonce: int) -> bool:
        """Accept `ts_nonce` for the key if it is larger than every one accepted
        before (in any process) and the key is active; False otherwise.

        Call it only after the signature verified and ts_nonce fell inside the
        timestamp window: a forged request must not raise the mark."""
        if not isinstance(ts_nonce, int) or not 0 < ts_nonce < 1 << 63:
            return False
        # One statement, so the comparison and the write are one transaction
        # under SQLite's write lock: no other process's raise can fall between.
        cur = self._db.execute(
            "UPDATE api_keys SET nonce = ? WHERE api_key = ? AND nonce < ? AND revoked_ms IS NULL",
            (ts_nonce, api_key, ts_nonce))
        return cur.rowcount == 1

    def claim_signature(self, api_key: str, digest: bytes, ts_ms: int, forget_before_ms: int) -> bool:
        """Accept a signed request once: True if (api_key, digest) was never claimed
        before (in any process) and the key is active; False for a replay and for a
        revoked or unknown key. Claims with ts_ms below `forget_before_ms` are
        forgotten first: the caller's window refuses those timestamps anyway.

        Call it only after the signature verified and the timestamp fell inside the
        window: a forger must not fill the table."""
        assert isinstance(digest, bytes) and 16 <= len(digest) <= 64, digest
        with self._transaction():
            self._db.execute("DELETE FROM signatures WHERE ts_ms < ?", (forget_before_ms,))
            # One conditional INSERT reads the key's state and writes the claim under the
            # write lock, so of two processes claiming one signature exactly one wins.
            cur = self._db.execute(
                "INSERT INTO signatures (api_key, digest, ts_ms) SELECT ?, ?, ? WHERE EXISTS "
                "(SELECT 1 FROM api_keys WHERE api_key = ? AND revoked_ms IS NULL) ON CONFLICT DO NOTHING",
                (api_key, digest, ts_ms, api_key))
            return cur.rowcount == 1


def _now(ms: int | None) -> int:
    if ms is None:
        return now_ms()
    assert isinstance(ms, int), ms
    return ms


def _taken_field(field: str, username: str, email: str | None) -> AccountError:
    if field == "username":
        return AccountError(TAKEN, f"username: {username!r} is taken")
    return AccountError(TAKEN, f"email: {email!r} is already registered")


def _taken(e: sqlite3.IntegrityError, username: str, email: str | None) -> Exception:
    text = str(e)
    if "users.username" in text:
        return _taken_field("username", username, email)
    if "users.email" in text:
        return _taken_field("email", username, email)
    return e
