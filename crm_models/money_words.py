"""Amounts in words, as a Russian invoice states its total: «Сто двадцать три тысячи
четыреста пятьдесят шесть рублей 78 копеек» (whole units in words, the fraction in digits)."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

_UNITS_M = ("", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять")
_UNITS_F = ("", "одна", "две", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять")
_TEENS = ("десять", "одиннадцать", "двенадцать", "тринадцать", "четырнадцать", "пятнадцать",
          "шестнадцать", "семнадцать", "восемнадцать", "девятнадцать")
_TENS = ("", "", "двадцать", "тридцать", "сорок", "пятьдесят", "шестьдесят", "семьдесят",
         "восемьдесят", "девяносто")
_HUNDREDS = ("", "сто", "двести", "триста", "четыреста", "пятьсот", "шестьсот", "семьсот",
             "восемьсот", "девятьсот")
#: Scale words (forms for 1, 2–4, 5+) and whether they are feminine.
_SCALES = (
    (("тысяча", "тысячи", "тысяч"), True),
    (("миллион", "миллиона", "миллионов"), False),
    (("миллиард", "миллиарда", "миллиардов"), False),
    (("триллион", "триллиона", "триллионов"), False),
)
#: Currency → (whole unit forms, feminine?, fraction unit forms).
CURRENCIES: dict[str, tuple[tuple[str, str, str], bool, tuple[str, str, str]]] = {
    "RUB": (("рубль", "рубля", "рублей"), False, ("копейка", "копейки", "копеек")),
    "USD": (("доллар США", "доллара США", "долларов США"), False, ("цент", "цента", "центов")),
    "EUR": (("евро", "евро", "евро"), False, ("евроцент", "евроцента", "евроцентов")),
    "CNY": (("юань", "юаня", "юаней"), False, ("фэнь", "фэня", "фэней")),
    "KZT": (("тенге", "тенге", "тенге"), False, ("тиын", "тиына", "тиынов")),
    "BYN": (("белорусский рубль", "белорусских рубля", "белорусских рублей"), False,
            ("копейка", "копейки", "копеек")),
}


def plural_form(n: int, forms: tuple[str, str, str]) -> str:
    """The Russian form for ``n``: 1 рубль, 2 рубля, 5 рублей, 11 рублей, 21 рубль."""
    n = abs(n) % 100
    if 11 <= n <= 19:
        return forms[2]
    n %= 10
    if n == 1:
        return forms[0]
    if 2 <= n <= 4:
        return forms[1]
    return forms[2]


def _triad(n: int, feminine: bool) -> list[str]:
    words = [_HUNDREDS[n // 100]]
    rest = n % 100
    if 10 <= rest <= 19:
        words.append(_TEENS[rest - 10])
    else:
        words.append(_TENS[rest // 10])
        words.append((_UNITS_F if feminine else _UNITS_M)[rest % 10])
    return [w for w in words if w]


def number_in_words(n: int, *, feminine: bool = False) -> str:
    """A whole non-negative number in Russian words, lower case ("ноль" for 0)."""
    if n < 0:
        raise ValueError("a negative number")
    if n == 0:
        return "ноль"
    words: list[str] = []
    triads = []
    while n:
        triads.append(n % 1000)
        n //= 1000
    if len(triads) > len(_SCALES) + 1:
        raise ValueError("too large a number")
    for power in range(len(triads) - 1, -1, -1):
        t = triads[power]
        if not t:
            continue
        if power == 0:
            words += _triad(t, feminine)
        else:
            forms, fem = _SCALES[power - 1]
            words += _triad(t, fem)
            words.append(plural_form(t, forms))
    return " ".join(words)


def amount_in_words(amount: Decimal | int | str, currency: str = "RUB") -> str:
    """«Сто один рубль 01 копейка»: the whole units in words (capitalised), the fraction in
    two digits. A currency without Russian names keeps its code («… 00 USD» style)."""
    value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if value < 0:
        raise ValueError("a negative amount")
    whole = int(value)
    cents = int((value - whole) * 100)
    spec = CURRENCIES.get(currency)
    if spec is None:
        text = f"{number_in_words(whole)} {currency} {cents:02d}"
    else:
        unit_forms, fem, cent_forms = spec
        text = (f"{number_in_words(whole, feminine=fem)} {plural_form(whole, unit_forms)} "
                f"{cents:02d} {plural_form(cents, cent_forms)}")
    return text[0].upper() + text[1:]


# --- English ---------------------------------------------------------------------------------

_EN_SMALL = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
             "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
             "seventeen", "eighteen", "nineteen")
_EN_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
            "ninety")
_EN_SCALES = ("", "thousand", "million", "billion", "trillion")


def _en_triad(n: int) -> str:
    parts = []
    if n >= 100:
        parts.append(f"{_EN_SMALL[n // 100]} hundred")
    rest = n % 100
    if rest >= 20:
        parts.append(_EN_TENS[rest // 10] + (f"-{_EN_SMALL[rest % 10]}" if rest % 10 else ""))
    elif rest:
        parts.append(_EN_SMALL[rest])
    return " ".join(parts)


def amount_in_words_en(amount: Decimal | int | str, currency: str = "RUB") -> str:
    """"One hundred one and 01/100 RUB" — the English invoice's wording."""
    value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    whole = int(value)
    cents = int((value - whole) * 100)
    if whole == 0:
        words = "zero"
    else:
        chunks = []
        n, power = whole, 0
        while n:
            if n % 1000:
                chunks.append(f"{_en_triad(n % 1000)} {_EN_SCALES[power]}".strip())
            n //= 1000
            power += 1
        words = " ".join(reversed(chunks))
    text = f"{words} and {cents:02d}/100 {currency}"
    return text[0].upper() + text[1:]
