"""A Binance request's parameters, and the readers that turn them into values.

Binance reads a GET's parameters from the query string and a POST's, PUT's or
DELETE's from the query string and/or an application/x-www-form-urlencoded
body; a name in both is taken from the query. Here:

- A name twice in the query, or twice in the body, is -1101 (Binance's
  "Duplicate values for a parameter detected"); an empty value is -1105.
- Each parameter is read at most once by the handler; `done()` then refuses
  any the endpoint did not read (-1104, naming them), so a misspelt or
  unsupported option is never silently ignored. Handlers call it before they
  send anything to the exchange.
- Decimals are parsed exactly (engine/money.py), never through a float.
  Trailing zeros after the point are accepted whatever their number (clients
  send "0.00100000"); a significant digit beyond the unit is -1111; a text that
  is not digits with at most one '.' is -1100; a value that does not fit the
  int64 units, or is zero, is a filter failure (-1013) naming the filter and
  its limit, as Binance answers.
"""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

from ...engine.money import INT64_LIMIT, format_decimal, parse_decimal
from . import errors as E
from .errors import BinanceError

MAX_PARAMETERS = 64
_DECIMAL_RE = re.compile(r"(?=\.?[0-9])[0-9]*(?:\.[0-9]*)?\Z")
_INT_RE = re.compile(r"[0-9]{1,18}\Z")


def pairs(text: str, where: str) -> dict[str, str]:
    """The name=value pairs of a query string or form body, each name once."""
    try:
        items = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_PARAMETERS)
    except ValueError:
        raise BinanceError(E.TOO_MANY_PARAMETERS, f"Too many parameters: the {where} has more than "
                                                  f"{MAX_PARAMETERS}") from None
    out: dict[str, str] = {}
    for name, value in items:
        if name in out:
            raise BinanceError(E.TOO_MANY_PARAMETERS, f"Duplicate values for a parameter detected: "
                                                      f"'{name}' is in the {where} twice")
        out[name] = value
    return out


class Params:
    def __init__(self, query: dict[str, str], body: dict[str, str], endpoint: str):
        self.values = {**body, **query}     # the query wins on a clash
        self.unread = set(self.values)
        self.endpoint = endpoint            # "POST /api/v3/order", for messages

    def get(self, name: str) -> str | None:
        value = self.values.get(name)
        self.unread.discard(name)
        if value == "":
            raise BinanceError(E.PARAM_EMPTY, f"Parameter '{name}' was empty.")
        return value

    def need(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise BinanceError(E.MANDATORY_PARAM, f"Mandatory parameter '{name}' was not sent, was empty/null, "
                                                  "or malformed.")
        return value

    def done(self) -> None:
        """Refuse the parameters nothing read: this endpoint does not take them."""
        if self.unread:
            names = ", ".join(f"'{n}'" for n in sorted(self.unread))
            raise BinanceError(E.UNREAD_PARAMETERS, f"Not all sent parameters were read: {self.endpoint} does "
                                                    f"not take {names}")

    # -- typed readers ----------------------------------------------------------------
    def integer(self, name: str, low: int = 0, high: int = INT64_LIMIT - 1, default: int | None = None) -> int | None:
        text = self.get(name)
        if text is None:
            return default
        if not _INT_RE.match(text):
            raise BinanceError(E.ILLEGAL_CHARS, f"Illegal characters found in parameter '{name}': {text!r}; "
                                                "legal range is '^[0-9]{1,18}$'.")
        value = int(text)
        if not low <= value <= high:
            raise BinanceError(E.INVALID_PARAMETER, f"Data sent for parameter '{name}' is not valid: {value} is "
                                                    f"outside {low}..{high}.")
        return value

    def choice(self, name: str, allowed: tuple[str, ...], code: int = E.INVALID_PARAMETER,
               default: str | None = None, required: bool = False) -> str | None:
        value = self.need(name) if required else self.get(name)
        if value is None:
            return default
        if value not in allowed:
            raise BinanceError(code, f"Data sent for parameter '{name}' is not valid: {value!r} is not one of "
                                     f"{', '.join(allowed)}.")
        return value

    def json_names(self, name: str) -> list[str] | None:
        """A JSON list of names (`symbols=["BTCUSDT","ETHUSDT"]`), each once."""
        text = self.get(name)
        if text is None:
            return None
        try:
            names = json.loads(text)
        except ValueError:
            names = None
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise BinanceError(E.ILLEGAL_CHARS, f"Illegal characters found in parameter '{name}': {text!r}; "
                                                'expected a JSON list of names like ["BTCUSDT","ETHUSDT"].')
        if len(set(names)) != len(names):
            raise BinanceError(E.DUPLICATE_SYMBOLS, f"Symbol is present multiple times in the list: {text}")
        return names

    def units(self, name: str, decimals: int, filter_name: str, maximum: str) -> int | None:
        """A positive decimal as integer units of 10**-decimals; None if absent."""
        text = self.get(name)
        if text is None:
            return None
        if len(text) > 64 or not _DECIMAL_RE.match(text):
            raise BinanceError(E.ILLEGAL_CHARS, f"Illegal characters found in parameter '{name}': {text!r}; "
                                                "expected digits with at most one '.'.")
        whole, _, frac = text.partition(".")
        significant = frac.rstrip("0")
        if len(significant) > decimals:
            raise BinanceError(E.BAD_PRECISION, f"Parameter '{name}' has too much precision: {text!r} has "
                                                f"{len(significant)} significant fractional digits, at most "
                                                f"{decimals} allowed.")
        try:
            units = parse_decimal(f"{whole or 0}.{significant}", decimals, name)
        except ValueError:      # the grammar and the digits are checked: it overflows
            raise BinanceError(E.INVALID_MESSAGE, f"Filter failure: {filter_name}: {name} {text} is above the "
                                                  f"maximum {maximum}.") from None
        if units == 0:
            raise BinanceError(E.INVALID_MESSAGE, f"Filter failure: {filter_name}: {name} {text} is below the "
                                                  f"minimum {format_decimal(1, decimals)}.")
        return units
