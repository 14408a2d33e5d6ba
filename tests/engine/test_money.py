"""engine/money.py: exact decimal strings <-> integer units, never through a float."""
import pathlib
import re

import pytest
from hypothesis import given, strategies as st

from xinfinity.engine import money
from xinfinity.engine.money import format_decimal, parse_decimal

I64_MAX = 2**63 - 1


@pytest.mark.parametrize("text, decimals, units", [
    ("84907.12", 2, 8490712),
    ("0.390483", 8, 39048300),
    ("10.0", 8, 1_000_000_000),
    ("1", 2, 100),
    ("1.", 2, 100),
    (".5", 2, 50),
    ("0", 8, 0),
    ("007.50", 2, 750),
    ("12", 0, 12),
    ("92233720368547758.07", 2, I64_MAX),
    ("9.223372036854775807", 18, I64_MAX),
    ("9223372036854775807", 0, I64_MAX),
    ("0000000000000000000000000001", 0, 1),
])
def test_parse_decimal_gives_exact_units(text, decimals, units):
    assert parse_decimal(text, decimals, "x") == units


@pytest.mark.parametrize("text, decimals, reason", [
    ("", 2, "price is empty"),
    ("-1", 2, "price '-1' has a bad character '-' at position 1"),
    ("+1", 2, "bad character '+'"),
    ("1e5", 2, "bad character 'e'"),
    (" 1", 2, "bad character ' '"),
    ("1 ", 2, "bad character ' '"),
    ("1,5", 2, "bad character ','"),
    ("1_000", 2, "bad character '_'"),
    ("\u0661", 2, "bad character"),          # an Arabic-Indic digit is not a digit here
    ("nan", 2, "bad character 'n'"),
    ("1.2.3", 2, "price '1.2.3' has more than one '.'"),
    (".", 2, "price '.' has no digits"),
    ("1.234", 2, "price '1.234' has 3 fractional digits, at most 2 allowed"),
    ("1.230", 2, "price '1.230' has 3 fractional digits, at most 2 allowed"),
    ("1.5", 0, "price '1.5' has 1 fractional digits, at most 0 allowed"),
    ("92233720368547758.08", 2, "price '92233720368547758.08' overflows"),
    ("100000000000", 8, "overflows"),
    ("99999999999999999999999999", 0, "overflows"),
])
def test_parse_decimal_refuses_with_a_reason_naming_the_field(text, decimals, reason):
    with pytest.raises(ValueError) as exc:
        parse_decimal(text, decimals, "price")
    assert reason in str(exc.value)
    assert str(exc.value).startswith("price")


def test_parse_decimal_refuses_non_str_and_bad_decimals():
    with pytest.raises(TypeError):
        parse_decimal(1.5, 2, "price")
    with pytest.raises(ValueError):
        parse_decimal("1", 19, "price")
    with pytest.raises(ValueError):
        parse_decimal("1", -1, "price")


@pytest.mark.parametrize("units, decimals, display, text", [
    (8490712, 2, None, "84907.12"),
    (39048300, 8, 6, "0.390483"),
    (39048399, 8, 6, "0.390483"),            # truncated, not rounded
    (99999999, 8, 6, "0.999999"),
    (1, 8, 2, "0.00"),
    (0, 2, None, "0.00"),
    (12, 0, None, "12"),
    (1234, 2, 0, "12"),
    (150, 2, 4, "1.5000"),                   # more display digits: zeros appended
    (-150, 2, None, "-1.50"),
    (-1, 8, 2, "0.00"),                      # never "-0.00"
    (I64_MAX, 2, None, "92233720368547758.07"),
    (I64_MAX, 18, None, "9.223372036854775807"),
])
def test_format_decimal_is_exact_and_truncates(units, decimals, display, text):
    assert format_decimal(units, decimals, display) == text


def test_format_decimal_refuses_floats():
    with pytest.raises(TypeError):
        format_decimal(1.5, 2)
    with pytest.raises(TypeError):
        format_decimal(True, 2)


@given(st.integers(0, I64_MAX), st.integers(0, 18))
def test_format_then_parse_round_trips(units, decimals):
    assert parse_decimal(format_decimal(units, decimals), decimals, "x") == units


@given(st.integers(0, I64_MAX), st.integers(0, 18), st.integers(0, 18))
def test_format_with_fewer_display_digits_truncates_toward_zero(units, decimals, display):
    text = format_decimal(units, decimals, display)
    assert len(text.partition(".")[2]) == display
    shown = int(text.replace(".", ""))       # units of 10**-display, exactly
    if display <= decimals:
        assert shown == units // 10 ** (decimals - display)
    else:
        assert shown == units * 10 ** (display - decimals)


def test_money_module_uses_no_float():
    source = pathlib.Path(money.__file__).read_text()
    code = re.sub(r'""".*?"""', "", source, flags=re.S)
    assert "float(" not in code and "/ " not in code.replace("//", "")
