"""Exact conversion between decimal strings and integer units.

Every amount inside the core is an int64 count of the smallest unit of its asset
(spec/TRADING_RULES.md section 1). Strings from the outside are parsed here
digit by digit, and integers are rendered back here; no float is ever involved.

Grammar accepted by ``parse_decimal``: ASCII digits with at most one ``'.'``
and at least one digit (``"12"``, ``"12.5"``, ``"12."``, ``".5"``). No sign, no
exponent, no spaces, no thousands separators. A string with more fractional
digits than the unit allows is refused, even when the extra digits are zeros:
the rule is about the text, so that a value never depends on rounding.
The result must be below 2**63.

``edge/dataset.py`` has a numba twin of this parser for bulk CSV loading; a
property test keeps the two in agreement, and the loader builds its error
messages by calling ``parse_decimal`` on the offending text.
"""
from __future__ import annotations

INT64_LIMIT = 2**63          # every unit count is strictly below this
MAX_DECIMALS = 18            # 10**18 units per whole still fits an int64

_DIGITS = frozenset("0123456789")


def parse_decimal(text: str, decimals: int, what: str) -> int:
    """Return ``text`` as an integer count of ``10**-decimals`` units.

    Raises ValueError naming ``what``, the text and the reason when the text is
    empty, has a character other than digits and one '.', has more than
    ``decimals`` fractional digits, or is 2**63 units or more.
    """
    if not isinstance(text, str):
        raise TypeError(f"{what}: expected a str, got {type(text).__name__}")
    if not isinstance(decimals, int) or not 0 <= decimals <= MAX_DECIMALS:
        raise ValueError(f"{what}: decimals must be an int in 0..{MAX_DECIMALS}, got {decimals!r}")
    if text == "":
        raise ValueError(f"{what} is empty")
    for pos, ch in enumerate(text, 1):
        if ch not in _DIGITS and ch != ".":
            raise ValueError(f"{what} {text!r} has a bad character {ch!r} at position {pos} "
                             "(expected digits and at most one '.')")
    if text.count(".") > 1:
        raise ValueError(f"{what} {text!r} has more than one '.'")
    whole, _, frac = text.partition(".")
    if not whole and not frac:
        raise ValueError(f"{what} {text!r} has no digits")
    if len(frac) > decimals:
        raise ValueError(f"{what} {text!r} has {len(frac)} fractional digits, "
                         f"at most {decimals} allowed")
    units = int(whole or "0") * 10**decimals + int(frac or "0") * 10**(decimals - len(frac))
    if units >= INT64_LIMIT:
        raise ValueError(f"{what} {text!r} overflows: {units} units is not below 2**63")
    return units


def format_decimal(units: int, decimals: int, display_decimals: int | None = None) -> str:
    """Render ``units`` of ``10**-decimals`` as a decimal string.

    With ``display_decimals`` fewer than ``decimals`` the extra digits are
    truncated (toward zero, never rounded); with more, zeros are appended.
    ``display_decimals == 0`` gives no '.'. Negative values get a leading '-'
    (deltas); "-0" is never produced.
    """
    if not isinstance(units, int) or isinstance(units, bool):
        raise TypeError(f"units must be an int, got {type(units).__name__}")
    if not 0 <= decimals <= MAX_DECIMALS:
        raise ValueError(f"decimals must be in 0..{MAX_DECIMALS}, got {decimals}")
    shown = decimals if display_decimals is None else display_decimals
    if not 0 <= shown <= MAX_DECIMALS:
        raise ValueError(f"display_decimals must be in 0..{MAX_DECIMALS}, got {shown}")
    magnitude = -units if units < 0 else units
    if shown < decimals:
        magnitude //= 10**(decimals - shown)
    else:
        magnitude *= 10**(shown - decimals)
    sign = "-" if units < 0 and magnitude else ""
    if shown == 0:
        return f"{sign}{magnitude}"
    whole, frac = divmod(magnitude, 10**shown)
    return f"{sign}{whole}.{frac:0{shown}d}"
