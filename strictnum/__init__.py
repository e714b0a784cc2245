"""Numbers typed by people and programs, read strictly: ASCII digits only.

``str.isdigit()`` is true for ``"²"`` and ``"١"``, and ``int()``/``Decimal()``/``re``'s ``\\d``
accept the digits of every script, so code that checked with one and converted with another
either crashed (``int("²")``) or took ``"١٢"`` for 12. Every number parsed from user input
goes through this module instead: ASCII ``0``-``9``, an optional sign where a negative value
means something, surrounding whitespace ignored, a bounded length, and for row ids the
database's 32-bit range.

No imports beyond the standard library: ``engine``, ``crm_models``, ``integrations`` and
``web`` all use it, and none of them may pull another in through it.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

#: Every id column is a 32-bit INTEGER (PostgreSQL's serial); a larger id can name no row.
MAX_ROW_ID = 2**31 - 1
#: Longest run of digits read as an integer (below 2**63, so any 64-bit column holds it).
MAX_INT_DIGITS = 18

_INT_RE = re.compile(rf"[+-]?[0-9]{{1,{MAX_INT_DIGITS}}}", re.ASCII)
_UINT_RE = re.compile(rf"\+?[0-9]{{1,{MAX_INT_DIGITS}}}", re.ASCII)
_DIGITS_RE = re.compile(r"[0-9]+", re.ASCII)
_DECIMAL_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)


class NumberError(ValueError):
    """A value that is not the number asked for; ``str()`` is a message for the user
    ("must be a whole number …"), to be prefixed by the parameter's name."""


def is_digits(text: Any) -> bool:
    """True for a non-empty string of ASCII digits only (no sign, no spaces)."""
    return isinstance(text, str) and _DIGITS_RE.fullmatch(text) is not None


def parse_int(value: Any, *, minimum: int | None = None, maximum: int | None = None,
              signed: bool = False) -> int:
    """An ``int`` (not a bool) or a string of ASCII digits — with a leading ``-`` only when
    ``signed`` — within ``minimum``…``maximum``. Raises ``NumberError``."""
    if isinstance(value, str):
        text = value.strip()
        if (_INT_RE if signed else _UINT_RE).fullmatch(text) is None:
            raise NumberError(_range_message(minimum, maximum))
        value = int(text)
    elif isinstance(value, bool) or not isinstance(value, int):
        raise NumberError(_range_message(minimum, maximum))
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise NumberError(_range_message(minimum, maximum))
    return value


def parse_id(value: Any) -> int:
    """A row id: a whole number from 1 to ``MAX_ROW_ID``. Raises ``NumberError``."""
    return parse_int(value, minimum=1, maximum=MAX_ROW_ID)


def int_or_none(value: Any, *, minimum: int | None = None, maximum: int | None = None,
                signed: bool = False) -> int | None:
    """``parse_int``, or None where the value is not such a number (for optional choices
    such as a page number or a select box, where anything else means "none")."""
    try:
        return parse_int(value, minimum=minimum, maximum=maximum, signed=signed)
    except NumberError:
        return None


def id_or_none(value: Any) -> int | None:
    """``parse_id``, or None."""
    return int_or_none(value, minimum=1, maximum=MAX_ROW_ID)


def parse_decimal(value: Any, *, max_length: int = 40) -> Decimal:
    """A finite Decimal from an int, a float, a Decimal or a string ``[+-]digits[.digits]``
    of ASCII digits (no exponent, no digits of other scripts). Raises ``NumberError``."""
    if isinstance(value, bool):
        raise NumberError("must be a decimal number")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > max_length or _DECIMAL_RE.fullmatch(text) is None:
            raise NumberError("must be a decimal number")
        try:
            number = Decimal(text)
        except InvalidOperation:  # unreachable for the pattern; kept as the contract
            raise NumberError("must be a decimal number") from None
    else:
        raise NumberError("must be a decimal number")
    if not number.is_finite():
        raise NumberError("must be a finite number")
    return number


def _range_message(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"must be a whole number from {minimum} to {maximum}"
    if minimum is not None:
        return f"must be a whole number of at least {minimum}"
    if maximum is not None:
        return f"must be a whole number of at most {maximum}"
    return "must be a whole number"


def at_most_regex(maximum: int) -> str:
    """A regular expression (no anchors, no groups that capture) for the whole numbers from 1
    to ``maximum`` in ASCII digits without leading zeros — for URL routing, where a number
    the pattern admits but a converter then refuses can turn a 404 into a 405."""
    if maximum < 1:
        raise ValueError("maximum must be at least 1")
    top = str(maximum)
    parts = []
    if len(top) > 1:  # every number with fewer digits
        parts.append(f"[1-9][0-9]{{0,{len(top) - 2}}}")
    for i, ch in enumerate(top):  # same length: a prefix of top, then a smaller digit
        low = "1" if i == 0 else "0"
        if ch > low:
            high = chr(ord(ch) - 1)
            digit = low if high == low else f"[{low}-{high}]"
            rest = len(top) - i - 1
            parts.append(top[:i] + digit + (f"[0-9]{{{rest}}}" if rest else ""))
    parts.append(top)
    return "(?:" + "|".join(parts) + ")"
