"""A stand-in for xinfinity.accounts.store while branch `accounts` is not merged.

conftest.py installs it as `xinfinity.accounts.store` only when the real module
is missing, so that the gateway's tests run on their own; once the real module
exists, the tests use it (its AccountError, permission bits and name parsing)
and this file is unused. It mirrors the interface the gateway codes against,
nothing more.
"""
from __future__ import annotations

READ, TRADE, WITHDRAW, TRANSFER, ADMIN = 1, 2, 4, 8, 16
NAMES = {"read": READ, "trade": TRADE, "withdraw": WITHDRAW, "transfer": TRANSFER, "admin": ADMIN}


class AccountError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(code, message)
        self.code = code
        self.message = message


def parse_permissions(text: str) -> int:
    mask = 0
    for name in (n.strip().lower() for n in text.split(",")):
        if name not in NAMES:
            raise AccountError(1001, f"permissions: unknown {name!r}; choose from {', '.join(NAMES)}")
        mask |= NAMES[name]
    return mask


def permission_names(mask: int) -> list[str]:
    return [name for name, bit in NAMES.items() if mask & bit]
