"""What an API key may do: a bitmask.

READ, TRADE, WITHDRAW and TRANSFER are spec/API.md's bits; ADMIN is ours: the
operator's key, which may deposit to and withdraw from any user's account. The
gateway checks a route's bit against the key's mask (`mask & TRADE`); a key
with ADMIN does not implicitly hold the others, so an operator key is made
with exactly the bits it needs.
"""
from __future__ import annotations

from .errors import INVALID_PARAMETER, AccountError

READ, TRADE, WITHDRAW, TRANSFER, ADMIN = 1, 2, 4, 8, 16
NAMES = {"read": READ, "trade": TRADE, "withdraw": WITHDRAW, "transfer": TRANSFER, "admin": ADMIN}
ALL = READ | TRADE | WITHDRAW | TRANSFER | ADMIN
DEFAULT = READ | TRADE


def parse_permissions(text: str) -> int:
    """`"read,trade"` as a mask; names are case-insensitive, spaces around commas are ignored."""
    names = [name.strip().lower() for name in text.split(",")]
    if not any(names):
        raise AccountError(INVALID_PARAMETER, f"permissions: none given; choose from {', '.join(NAMES)}")
    mask = 0
    for name in names:
        if name not in NAMES:
            raise AccountError(INVALID_PARAMETER,
                               f"permissions: unknown {name!r}; choose from {', '.join(NAMES)}")
        mask |= NAMES[name]
    return mask


def check_mask(mask: int) -> int:
    """The mask, if it is a non-empty combination of known bits."""
    if not isinstance(mask, int) or isinstance(mask, bool) or mask <= 0 or mask & ~ALL:
        raise AccountError(INVALID_PARAMETER,
                           f"permissions: {mask!r} is not a non-empty combination of the bits {ALL:#x}")
    return mask


def permission_names(mask: int) -> list[str]:
    """The names of the bits in `mask`, in bit order: `permission_names(3) == ["read", "trade"]`."""
    check_mask(mask)
    return [name for name, bit in NAMES.items() if mask & bit]
