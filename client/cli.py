"""`xinf order|balance|deposit|withdraw`: the REST client from the command line.

    xinf order place --symbol BTC_USDT --side buy --type limit --price 100 --qty 0.5 --key me.json
    xinf order cancel ORDER_ID | get ORDER_ID | list [--symbol S] [--status open|all] [--limit N]
    xinf balance [--asset A]
    xinf deposit --user alice --asset USDT --amount 1000 --data-dir DIR     (operator)

Private commands take --url (default http://127.0.0.1:8080) and --key FILE (a
key file from `xinf apikey create --json`); --json prints the response's data
as JSON instead of lines and tables. The operator commands find the server's
url in DIR/serve.json and sign with DIR/operator.json.

Exit status: 0 done; 1 the server refused (`xinf: <code> <msg>`), is not
running, or the connection failed; 2 bad arguments or a missing or bad key file.
Amounts are checked to be plain decimals here (digits and one '.') and sent as
the text given; the server applies each asset's precision.
"""
from __future__ import annotations

import argparse
import functools
import pathlib
import sys

import msgspec

from ..engine.money import MAX_DECIMALS, parse_decimal
from .http import ApiError, ConnectionLost, ServerUnreachable, XinfClient
from .keys import KeyFile, KeyFileError

DEFAULT_URL = "http://127.0.0.1:8080"


class UsageError(Exception):
    """Bad arguments found after argparse (exit 2)."""


def _reporting(fn):
    """Run a command, turning the client's errors into `xinf: ...` on stderr and exit status 1 or 2."""
    @functools.wraps(fn)
    def run(args) -> int:
        try:
            return fn(args) or 0
        except (UsageError, KeyFileError) as e:
            print(f"xinf: {e}", file=sys.stderr)
            return 2
        except (ApiError, ServerUnreachable, ConnectionLost) as e:
            print(f"xinf: {e}", file=sys.stderr)
            return 1
    return run


def _amount(text: str | None, flag: str) -> str | None:
    if text is None:
        return None
    # Checked at its own precision (the asset's is the server's to apply), so
    # only a value of 19 significant digits or more overflows.
    decimals = min(len(text.partition(".")[2]), MAX_DECIMALS)
    try:
        parse_decimal(text, decimals, flag)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return text


def _client(args, private: bool = True) -> XinfClient:
    key = None
    if private:
        if not args.key:
            raise UsageError(f"{args.what} needs --key FILE (a key file from `xinf apikey create --json`)")
        key = KeyFile.load(args.key)
    try:
        return XinfClient(args.url, key)
    except ValueError as e:
        raise UsageError(f"--url: {e}") from None


def _emit(args, data, text_lines) -> None:
    if args.json:
        print(msgspec.json.encode(data).decode())
    else:
        for line in text_lines(data):
            print(line)


def _table(rows: list[dict], columns: list[str]) -> list[str]:
    cells = [columns] + [["" if r.get(c) is None else str(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]


def _order_result_lines(d: dict) -> list[str]:
    status = d.get("order_status", d.get("status", ""))
    head = f"order {d.get('order_id')} {status}"
    if d.get("filled_qty") is not None:
        head += f"  filled {d['filled_qty']}"
    if d.get("cid"):
        head += f"  cid {d['cid']}"
    if d.get("seq") is not None:
        head += f"  seq {d['seq']}"
    lines = [head]
    for f in d.get("fills") or ():
        lines.append(f"  fill {f.get('trade_id')}  {f.get('qty')} @ {f.get('price')}  "
                     f"fee {f.get('fee')} {f.get('fee_asset')}  {f.get('role')}")
    return lines


def _fields_lines(d: dict) -> list[str]:
    width = max((len(k) for k in d), default=0)
    return [f"{k.ljust(width)}  {v}" for k, v in d.items()]


_ORDER_COLUMNS = ["order_id", "symbol", "side", "order_type", "price", "qty", "filled_qty", "status", "cid"]


def _balance_rows(data) -> list[dict]:
    rows = data if isinstance(data, list) else [data]
    return [{"asset": r.get("asset"), "available": r.get("available", r.get("avail")),
             "frozen": r.get("frozen")} for r in rows]


# -- commands ---------------------------------------------------------------------

@_reporting
def order_place(args) -> int:
    price, qty, quote_qty = (_amount(args.price, "--price"), _amount(args.qty, "--qty"),
                             _amount(args.quote_qty, "--quote-qty"))
    if args.type == "limit" and (price is None or qty is None):
        raise UsageError("order place --type limit needs --price and --qty")
    if args.type == "market" and price is not None:
        raise UsageError("order place --type market takes no --price")
    if args.type == "market" and (qty is None) == (quote_qty is None):
        raise UsageError("order place --type market needs exactly one of --qty and --quote-qty")
    if quote_qty is not None and (args.type != "market" or args.side != "buy"):
        raise UsageError("--quote-qty is for market buys only")
    with _client(args) as c:
        data = c.place(args.symbol, args.side, args.type, qty=qty, price=price, time_in_force=args.tif,
                       quote_qty=quote_qty, cid=args.cid)
    _emit(args, data, _order_result_lines)
    return 0


def _private(call, lines):
    """A command that makes one call with the key and prints its data as `lines` does."""
    @_reporting
    def run(args) -> None:
        with _client(args) as c:
            data = call(c, args)
        _emit(args, data, lines)
    return run


order_cancel = _private(lambda c, a: c.cancel(a.order_id), _order_result_lines)
order_get = _private(lambda c, a: c.order(a.order_id), _fields_lines)
order_list = _private(lambda c, a: c.orders(a.symbol, a.status, a.limit),
                      lambda rows: _table(rows, _ORDER_COLUMNS) if rows else ["no orders"])
balance = _private(lambda c, a: c.balance(a.asset) if a.asset else c.balances(),
                   lambda d: _table(_balance_rows(d), ["asset", "available", "frozen"]))


def resolve_user(data_dir: pathlib.Path, user: str) -> int:
    """A numeric user id as is; a username through the account store of DATA_DIR."""
    if user.isdigit():
        return int(user)
    from ..accounts.cli import accounts_db
    from ..accounts.store import AccountStore
    with AccountStore(accounts_db(data_dir)) as store:
        user_id = store.user_id_of(user)
    if user_id is None:
        raise UsageError(f"--user {user!r}: no such user in {data_dir}")
    return user_id


def operator_client(data_dir: pathlib.Path) -> XinfClient:
    """A client to the server running on DATA_DIR (its serve.json), signing with DATA_DIR/operator.json."""
    key = KeyFile.load(data_dir / "operator.json")
    serve_json = data_dir / "serve.json"
    try:
        serve = msgspec.json.decode(serve_json.read_bytes())
    except FileNotFoundError:
        raise ServerUnreachable(str(data_dir), f"no {serve_json}: is the server running on this data dir?") \
            from None
    except (OSError, msgspec.DecodeError) as e:
        raise UsageError(f"{serve_json}: {e}") from None
    if not isinstance(serve, dict) or not isinstance(serve.get("url"), str):
        raise UsageError(f"{serve_json}: expected {{\"url\": ..., \"pid\": ...}}")
    return XinfClient(serve["url"], key)


def _operator(args, direction: str) -> int:
    data_dir = pathlib.Path(args.data_dir)
    if not data_dir.is_dir():
        raise UsageError(f"--data-dir {data_dir}: not a directory")
    amount = _amount(args.amount, "--amount")
    user_id = resolve_user(data_dir, args.user)
    with operator_client(data_dir) as c:
        data = (c.deposit if direction == "deposit" else c.withdraw)(user_id, args.asset, amount)
    _emit(args, data, lambda d: [f"user {d.get('user_id')} {d.get('asset')}  available {d.get('avail')}  "
                                 f"frozen {d.get('frozen')}  seq {d.get('seq')}"])
    return 0


@_reporting
def deposit(args) -> int:
    return _operator(args, "deposit")


@_reporting
def withdraw(args) -> int:
    return _operator(args, "withdraw")


# -- arguments --------------------------------------------------------------------

def _connection_arguments(p, what: str) -> None:
    p.add_argument("--url", default=DEFAULT_URL, help=f"the server (default {DEFAULT_URL})")
    p.add_argument("--key", metavar="FILE", help="key file from `xinf apikey create --json`")
    p.add_argument("--json", action="store_true", help="print the response's data as JSON")
    p.set_defaults(what=what)


def add_order_arguments(p) -> None:
    sub = p.add_subparsers(dest="order_cmd", required=True)
    place = sub.add_parser("place", help="place an order")
    place.add_argument("--symbol", required=True, help="e.g. BTC_USDT")
    place.add_argument("--side", required=True, type=str.lower, choices=("buy", "sell"))
    place.add_argument("--type", default="limit", type=str.lower, choices=("limit", "market"))
    place.add_argument("--price", help="limit price (decimal)")
    place.add_argument("--qty", help="quantity of the base asset (decimal)")
    place.add_argument("--quote-qty", help="market buy: the quote amount to spend (decimal)")
    place.add_argument("--tif", default="gtc", type=str.lower, choices=("gtc", "ioc"), help="time in force")
    place.add_argument("--cid", help="client order id (lets you find the order if the answer is lost)")
    _connection_arguments(place, "order place")
    place.set_defaults(func=order_place)
    for name, func, help in (("cancel", order_cancel, "cancel an order"),
                             ("get", order_get, "one order")):
        q = sub.add_parser(name, help=help)
        q.add_argument("order_id", type=int)
        _connection_arguments(q, f"order {name}")
        q.set_defaults(func=func)
    lst = sub.add_parser("list", help="your orders")
    lst.add_argument("--symbol")
    lst.add_argument("--status", type=str.lower, choices=("open", "all"))
    lst.add_argument("--limit", type=int)
    _connection_arguments(lst, "order list")
    lst.set_defaults(func=order_list)


def add_balance_arguments(p) -> None:
    p.add_argument("--asset", help="one asset (default: all)")
    _connection_arguments(p, "balance")
    p.set_defaults(func=balance)


def _add_operator_arguments(p, what: str, func) -> None:
    p.add_argument("--user", required=True, help="username, or numeric user id")
    p.add_argument("--asset", required=True)
    p.add_argument("--amount", required=True, help="decimal")
    p.add_argument("--data-dir", required=True, help="the running server's data directory")
    p.add_argument("--json", action="store_true", help="print the response's data as JSON")
    p.set_defaults(func=func, what=what)


def add_deposit_arguments(p) -> None:
    _add_operator_arguments(p, "deposit", deposit)


def add_withdraw_arguments(p) -> None:
    _add_operator_arguments(p, "withdraw", withdraw)


COMMANDS = (
    ("order", add_order_arguments, "place, cancel, get or list orders"),
    ("balance", add_balance_arguments, "your balances"),
    ("deposit", add_deposit_arguments, "operator: credit a user's balance"),
    ("withdraw", add_withdraw_arguments, "operator: debit a user's balance"),
)


def add_commands(sub) -> None:
    """Register order, balance, deposit and withdraw on xinf's subparsers."""
    for name, add, help in COMMANDS:
        add(sub.add_parser(name, help=help))


def main(argv=None) -> int:
    """These commands alone (tests, and a client host without the engine's dependencies)."""
    ap = argparse.ArgumentParser(prog="xinf")
    add_commands(ap.add_subparsers(dest="cmd", required=True))
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
