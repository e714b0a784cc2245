"""The one strict number parser: ASCII digits only, bounded, never a stray exception."""
from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
from decimal import Decimal

import pytest

from crm_models.db import MAX_ROW_ID as DB_MAX_ROW_ID
from strictnum import (
    MAX_ROW_ID,
    NumberError,
    at_most_regex,
    id_or_none,
    int_or_none,
    is_digits,
    parse_decimal,
    parse_id,
    parse_int,
)

#: Every character Unicode calls a digit or a number (Nd: "١", "٣", "߀"; No: "²", "½", "①"),
#: the ASCII ten excepted.
UNICODE_DIGITS = [chr(c) for c in range(sys.maxunicode + 1)
                  if unicodedata.category(chr(c)) in ("Nd", "No") and not "0" <= chr(c) <= "9"]


def test_the_digit_classes_are_all_there():
    assert len(UNICODE_DIGITS) > 1000
    assert {"²", "١", "½", "①", "٣", "߀", "𝟘"} <= set(UNICODE_DIGITS)


def test_the_bound_is_the_database_one():
    assert MAX_ROW_ID == DB_MAX_ROW_ID == 2**31 - 1


@pytest.mark.parametrize(("raw", "kw", "expected"), [
    ("0", {}, 0), (" 42 ", {}, 42), ("+7", {}, 7), (7, {}, 7), ("-3", {"signed": True}, -3),
    ("000123", {}, 123), ("9" * 18, {}, 10**18 - 1), ("5", {"minimum": 5, "maximum": 5}, 5),
])
def test_good_whole_numbers(raw, kw, expected):
    assert parse_int(raw, **kw) == expected


@pytest.mark.parametrize("raw", [
    "", " ", "-", "+", "1.0", "1e3", "0x10", "1_000", "1 000", "--1", "-3", "9" * 19, "²",
    "١", "1²", "١٢", "𝟙", "Ⅻ", "½", True, False, None, 1.0, Decimal("1"), [1], {"1": 1},
    "1\x00", "\u00a0",
])
def test_bad_whole_numbers(raw):
    with pytest.raises(NumberError):
        parse_int(raw)
    assert int_or_none(raw) is None


def test_every_unicode_digit_is_refused_alone_and_inside_a_number():
    for ch in UNICODE_DIGITS:
        for text in (ch, "1" + ch, ch + "1", "-" + ch):
            assert not is_digits(text)
            with pytest.raises(NumberError):
                parse_int(text, signed=True)
            with pytest.raises(NumberError):
                parse_decimal(text)
            assert id_or_none(text) is None


@pytest.mark.parametrize(("raw", "ok"), [
    ("1", True), (MAX_ROW_ID, True), (str(MAX_ROW_ID), True), ("0", False), (0, False),
    (-1, False), ("-1", False), (MAX_ROW_ID + 1, False), (str(MAX_ROW_ID + 1), False),
    (2**63, False), ("²", False),
])
def test_ids_are_bounded_to_the_database_range(raw, ok):
    if ok:
        assert parse_id(raw) == int(raw)
    else:
        with pytest.raises(NumberError, match="from 1 to 2147483647"):
            parse_id(raw)


def test_range_messages_name_the_bounds():
    with pytest.raises(NumberError, match="at least 1"):
        parse_int("0", minimum=1)
    with pytest.raises(NumberError, match="at most 3"):
        parse_int("4", maximum=3)
    with pytest.raises(NumberError, match="^must be a whole number$"):
        parse_int("x")


@pytest.mark.parametrize(("raw", "expected"), [
    ("1500.00", Decimal("1500.00")), (" -2.5 ", Decimal("-2.5")), (".5", Decimal("0.5")),
    ("7.", Decimal("7")), (3, Decimal(3)), (0.1, Decimal("0.1")), (Decimal("1.10"), Decimal("1.10")),
])
def test_good_decimals(raw, expected):
    assert parse_decimal(raw) == expected


@pytest.mark.parametrize("raw", [
    "", ".", "1e5", "NaN", "Infinity", "-inf", "1,5", "١٫٥", "²", "1" * 41, True, None,
    float("nan"), float("inf"), Decimal("NaN"), [1],
])
def test_bad_decimals(raw):
    with pytest.raises(NumberError):
        parse_decimal(raw)


def test_imports_nothing_of_ours():
    code = ("import sys, strictnum; bad = [m for m in ('flask', 'sqlalchemy', 'crm_models', "
            "'engine', 'web') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("maximum", [1, 7, 9, 10, 19, 20, 99, 100, 305, 1000, 3999])
def test_at_most_regex_matches_exactly_one_to_maximum(maximum):
    pattern = re.compile(at_most_regex(maximum))
    matched = [n for n in range(0, 5000) if pattern.fullmatch(str(n))]
    assert matched == list(range(1, maximum + 1))
    assert not pattern.fullmatch("0" + str(maximum)) and not pattern.fullmatch("١")


def test_at_most_regex_at_the_row_id_bound():
    pattern = re.compile(at_most_regex(MAX_ROW_ID))
    for text in ("1", "999999999", "1999999999", "2147483600", "2147483639", "2147483647"):
        assert pattern.fullmatch(text), text
    for text in ("0", "01", "2147483648", "2147483650", "2147484000", "9999999999", "21474836470"):
        assert not pattern.fullmatch(text), text
