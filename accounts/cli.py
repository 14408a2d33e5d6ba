"""`xinf apikey`: the operator makes, lists and revokes API keys.

    xinf apikey create --user U [--hmac] [--label L] [--permissions read,trade] [--json] [--data-dir DIR]
    xinf apikey list   --user U [--json] [--data-dir DIR]
    xinf apikey revoke --user U --key AK_... [--data-dir DIR]

The store is DIR/accounts.db (`accounts_db`), the file the gateway opens.
`create` makes the user U if new and prints the secret once: an Ed25519 key's
seed is not stored anywhere, and an HMAC key's secret is never shown again.
With --json, `create` prints {"api_key", "secret_pem", "secret_hex", "user_id",
"kind"} for Ed25519 and {"api_key", "secret", "user_id", "kind"} for HMAC.
A refused request exits 2 with `xinf: ...` naming what was wrong.
"""
from __future__ import annotations

import json
import pathlib
import sys

from .errors import AccountError
from .permissions import DEFAULT, parse_permissions, permission_names
from .signing import ED25519, HMAC
from .store import AccountStore, check_label, check_username

DEFAULT_DATA_DIR = "data"


def key_file(key, user_id: int) -> dict:
    """A new key as its holder keeps it (the client's key file): Ed25519 {api_key,
    secret_pem, secret_hex}, HMAC {api_key, secret}, both with user_id and kind."""
    if key.kind == ED25519:
        out = {"api_key": key.api_key, "secret_pem": key.secret_pem, "secret_hex": key.secret_hex}
    else:
        out = {"api_key": key.api_key, "secret": key.secret_hex}
    return out | {"user_id": user_id, "kind": key.kind}


def accounts_db(data_dir) -> pathlib.Path:
    """The account store's file in a data directory."""
    return pathlib.Path(data_dir) / "accounts.db"


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="a new key for a user (made if new); prints the secret once")
    _common(create)
    create.add_argument("--hmac", action="store_true", help="an HMAC-SHA256 key (default: Ed25519)")
    create.add_argument("--label", default="", help="a note to tell keys apart")
    create.add_argument("--permissions", default=",".join(permission_names(DEFAULT)),
                        help="comma-separated: read, trade, withdraw, transfer, admin (default %(default)s)")
    create.add_argument("--json", action="store_true", help="print the key as one JSON object")
    lst = sub.add_parser("list", help="a user's keys, revoked ones included (no secrets)")
    _common(lst)
    lst.add_argument("--json", action="store_true", help="print a JSON array")
    revoke = sub.add_parser("revoke", help="refuse a user's key from now on")
    _common(revoke)
    revoke.add_argument("--key", required=True, metavar="AK_...", help="the key to revoke")


def _common(p) -> None:
    p.add_argument("--user", required=True, metavar="USERNAME", help="the key owner's username")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, type=pathlib.Path,
                   help="the directory holding accounts.db (default ./%(default)s)")


class _Refused(Exception):
    """A request the store has no error code for (no such store, user or key)."""


def main(args) -> int:
    try:
        return {"create": _create, "list": _list, "revoke": _revoke}[args.action](args)
    except (AccountError, _Refused) as e:
        print(f"xinf: {e}", file=sys.stderr)
        return 2


def _create(args) -> int:
    # Everything the command line says is checked before the store is touched,
    # so a refused create leaves neither a new file nor a user without a key.
    permissions = parse_permissions(args.permissions)
    check_username(args.user)
    check_label(args.label)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    with AccountStore(accounts_db(args.data_dir)) as store:
        user_id, created = store.get_or_create_user(args.user)
        key = store.create_api_key(user_id, label=args.label, permissions=permissions,
                                   kind=HMAC if args.hmac else ED25519)
    if args.json:
        print(json.dumps(key_file(key, user_id)))
        return 0
    who = f"{'new user' if created else 'user'} {args.user} (id {user_id})"
    print(f"{key.kind} key for {who}, permissions {','.join(permission_names(key.permissions))}")
    print(f"api_key: {key.api_key}")
    if key.kind == ED25519:
        print(f"secret_hex: {key.secret_hex}")
        print(f"secret_pem:\n{key.secret_pem}", end="")
        print("The secret is shown this once and is not stored: keep it now.")
    else:
        print(f"secret: {key.secret_hex}")
        print("The secret is shown this once and cannot be shown again: keep it now.")
    return 0


def _open_existing(args) -> AccountStore:
    path = accounts_db(args.data_dir)
    if not path.is_file():
        raise _Refused(f"no account store at {path}")
    return AccountStore(path)


def _user_id(store: AccountStore, username: str) -> int:
    user_id = store.user_id_of(username)
    if user_id is None:
        raise _Refused(f"no user {username!r} in {store.path}")
    return user_id


def _list(args) -> int:
    with _open_existing(args) as store:
        keys = store.api_keys(_user_id(store, args.user))
    if args.json:
        print(json.dumps([k._asdict() | {"permissions": permission_names(k.permissions)} for k in keys]))
        return 0
    for k in keys:
        state = f"revoked_ms {k.revoked_ms}" if k.revoked_ms is not None else "active"
        print(f"{k.api_key}  {k.kind:7}  {','.join(permission_names(k.permissions)):30}  "
              f"created_ms {k.created_ms}  {state}  {k.label}")
    if not keys:
        print(f"user {args.user} has no keys")
    return 0


def _revoke(args) -> int:
    with _open_existing(args) as store:
        if not store.revoke_api_key(_user_id(store, args.user), args.key):
            raise _Refused(f"{args.key} is not an active key of user {args.user}")
    print(f"revoked {args.key}")
    return 0
