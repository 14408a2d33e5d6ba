"""Binance's error codes, as the Binance-compatible API answers them.

Every refusal is `{"code": -NNNN, "msg": "..."}` with Binance's code for the
fault (its spot errors.md), so the clients' own tables (CCXT's `exceptions`,
python-binance's BinanceAPIException) classify it, and a message that names
what was wrong. Where a client matches the message itself, the message is
Binance's text exactly (CCXT: "Account has insufficient balance for requested
action." is InsufficientFunds; with more words it would be a mere InvalidOrder).

HTTP status: 401 for the key codes (-2014, -2015), as Binance; 503 for an
outcome not known (-1007); 500 for an internal error (-1000); 404/405 for a
path or method this API does not have; 400 for every other client fault.
"""
from __future__ import annotations

UNKNOWN = -1000                 # internal error; also "market data unavailable" (503)
TIMEOUT = -1007                 # the command's outcome is unknown
INVALID_MESSAGE = -1013         # a filter failure
UNSUPPORTED_COMBINATION = -1014
UNSUPPORTED_OPERATION = -1020   # no such path or method here
INVALID_TIMESTAMP = -1021       # outside recvWindow, ahead of the server, or a replay
INVALID_SIGNATURE = -1022
ILLEGAL_CHARS = -1100
TOO_MANY_PARAMETERS = -1101     # also a parameter sent twice
MANDATORY_PARAM = -1102
UNREAD_PARAMETERS = -1104       # a parameter this endpoint does not take
PARAM_EMPTY = -1105
PARAM_NOT_REQUIRED = -1106
BAD_PRECISION = -1111
TIF_NOT_REQUIRED = -1114
INVALID_TIF = -1115
INVALID_ORDER_TYPE = -1116
INVALID_SIDE = -1117
BAD_INTERVAL = -1120
BAD_SYMBOL = -1121
BAD_COMBO = -1128
INVALID_PARAMETER = -1130
BAD_RECV_WINDOW = -1131
INVALID_TICKER_TYPE = -1139
DUPLICATE_SYMBOLS = -1151
INVALID_TIME_UNIT = -1194
NEW_ORDER_REJECTED = -2010
CANCEL_REJECTED = -2011
NO_SUCH_ORDER = -2013
BAD_API_KEY_FMT = -2014
REJECTED_MBX_KEY = -2015

_STATUS = {BAD_API_KEY_FMT: 401, REJECTED_MBX_KEY: 401, TIMEOUT: 503, UNKNOWN: 500}


class BinanceError(Exception):
    """A refusal answered as `{code, msg}` with `status`; caught once, in gateway/binance/app.py."""

    def __init__(self, code: int, msg: str, status: int | None = None):
        super().__init__(code, msg)
        self.code = code
        self.msg = msg
        self.status = _STATUS.get(code, 400) if status is None else status
        self.allow: list[str] = []      # a 405's Allow header
