"""Amounts in words as a Russian invoice states its total."""
from __future__ import annotations

from decimal import Decimal

import pytest

from crm_models.money_words import amount_in_words, amount_in_words_en, number_in_words


@pytest.mark.parametrize(("amount", "words"), [
    ("0", "Ноль рублей 00 копеек"),
    ("1", "Один рубль 00 копеек"),
    ("2", "Два рубля 00 копеек"),
    ("5", "Пять рублей 00 копеек"),
    ("11", "Одиннадцать рублей 00 копеек"),
    ("21", "Двадцать один рубль 00 копеек"),
    ("1000", "Одна тысяча рублей 00 копеек"),
    ("1000000", "Один миллион рублей 00 копеек"),
    ("101.01", "Сто один рубль 01 копейка"),
    ("123456.78", "Сто двадцать три тысячи четыреста пятьдесят шесть рублей 78 копеек"),
    ("2002.02", "Две тысячи два рубля 02 копейки"),
    ("14.11", "Четырнадцать рублей 11 копеек"),
    ("1112", "Одна тысяча сто двенадцать рублей 00 копеек"),
    ("22000000.05", "Двадцать два миллиона рублей 05 копеек"),
    ("1234567890.99", "Один миллиард двести тридцать четыре миллиона пятьсот шестьдесят "
                      "семь тысяч восемьсот девяносто рублей 99 копеек"),
    ("2000001", "Два миллиона один рубль 00 копеек"),
])
def test_rubles_in_words(amount, words):
    assert amount_in_words(Decimal(amount)) == words


def test_other_currencies_and_numbers():
    assert amount_in_words("3.5", "USD") == "Три доллара США 50 центов"
    assert amount_in_words("1", "EUR") == "Один евро 00 евроцентов"
    assert amount_in_words("7", "XYZ") == "Семь XYZ 00"
    assert number_in_words(40, feminine=True) == "сорок"
    assert number_in_words(2, feminine=True) == "две"
    with pytest.raises(ValueError):
        amount_in_words("-1")


def test_english_words():
    assert amount_in_words_en("123456.78") == (
        "One hundred twenty-three thousand four hundred fifty-six and 78/100 RUB")
    assert amount_in_words_en("0", "USD") == "Zero and 00/100 USD"
    assert amount_in_words_en("1000000.01") == "One million and 01/100 RUB"
