"""The sandbox: what expressions may do, and the escape corpus that must all fail safely."""
from __future__ import annotations

import time
from decimal import Decimal

import pytest

from engine.errors import SandboxError
from engine.sandbox import Limits, Sandbox

from .support import DATA, deal


def corpus() -> list[tuple[str, str]]:
    text = (DATA / "sandbox_escapes.txt").read_text(encoding="utf-8")
    out = []
    for chunk in text.split("\n%%\n"):
        lines = chunk.strip("\n").splitlines()
        label = " ".join(line[1:].strip() for line in lines if line.startswith("#"))
        code = "\n".join(line for line in lines if not line.startswith("#"))
        out.append((label or code.splitlines()[0], code))
    return out


ESCAPES = corpus()


def names() -> dict:
    return deal() | {"threshold": "1000000", "items": [1, 2, 3]}


def test_the_corpus_is_large_enough():
    assert len(ESCAPES) >= 25


@pytest.mark.parametrize("label,code", ESCAPES, ids=[c[0][:40] for c in ESCAPES])
def test_escape_fails_safely_as_expression_and_as_script(label, code):
    sb = Sandbox()
    data = names()
    started = time.monotonic()
    with pytest.raises(SandboxError):
        sb.evaluate(code, data)
    with pytest.raises(SandboxError):
        sb.execute(code, data)
    assert time.monotonic() - started < 5, "the limits must stop it quickly"
    assert data == names(), "a failed script must not change the data"


@pytest.mark.parametrize("expr,expected", [
    ("deal.amount > threshold", True),
    ("deal.amount > 1000000", True),
    ("deal.amount == 1500000", True),
    ("deal.amount < 1500000.5", True),
    ("deal.company.title == 'ООО «Вектор»'", True),
    ("deal['company']['title'].lower().startswith('ооо')", True),
    ("deal.responsible.department == 'Sales' and not deal.amount < 5", True),
    ("deal.responsible.id in [11, 12]", True),
    ("'Sales' in deal.responsible.department", True),
    ("len(deal.title) * 2 + 1", 27),
    ("decimal(deal.amount) / 4", Decimal("375000")),
    ("deal.amount * 2", Decimal("3000000.00")),
    ("round(decimal('2.345'), 2)", Decimal("2.35")),
    ("max(items) + min(1, 2) - abs(-3)", 1),
    ("sum([x * 2 for x in items if x > 1])", 10),
    ("any(x > 2 for x in items)", True),
    ("sorted(['b', 'a'], reverse=True)", ["b", "a"]),
    ("deal.get('missing', 'none')", "none"),
    ("f'{deal.title}: {deal.amount}'", "Vector supply: 1500000.00"),
    ("'007' == '7'", False),
    ("'2026-01-05' > '2025-12-31'", True),
    ("'10' < '9'", False),
    ("deal.company and deal.company.title", "ООО «Вектор»"),
    ("None if deal.id else 1", None),
    ("deal.title.split(' ')[-1].upper()", "SUPPLY"),
])
def test_expressions_over_the_data(expr, expected):
    assert Sandbox().evaluate(expr, names()) == expected


@pytest.mark.parametrize("expr,message", [
    ("deal.amonut > 1", "unknown field 'deal.amonut'"),
    ("deal.company.inn == '1'", "unknown field 'deal.company.inn'"),
    ("deal['nope']", "unknown field deal['nope']"),
    ("missing > 1", "unknown name 'missing'"),
    ("deal.amount > 'a lot'", "one is a number and the other is not"),
    ("deal.title > 5", "is not a number"),
    ("deal.company + 1", "cannot apply '+'"),
    ("deal.title + 1", "is not a number"),
    ("items[10]", "out of range"),
    ("1 / 0", "division by zero"),
    ("deal.title()", "is not a function"),
    ("deal.company.title.format(1)", "has no field 'format'"),
    ("items.append(4)", "has no field 'append'"),
    ("nothing.title", "empty"),
    ("x = 1", "syntax error"),
    # digits of other scripts are text, not numbers (int("١") would be 1)
    ("int('\u0661')", "int() of"),
    ("int('\u00b2')", "int() of"),
    ("'\u0661\u0662' > 5", "is not a number"),
    ("decimal('\u0661')", "is not a number"),
])
def test_errors_name_what_is_wrong(expr, message):
    data = names() | {"nothing": None}
    with pytest.raises(SandboxError, match=None) as info:
        Sandbox().evaluate(expr, data)
    assert message in info.value.message


def test_scripts_assign_loop_and_mutate_a_copy():
    data = names()
    out = Sandbox().execute("""
        total = 0
        for i in range(10):
            if i % 2:
                continue
            total += i
        deal.doubled = decimal(deal.amount) * 2
        items.append(total)
        for key, value in {'a': 1}.items():
            last = key + str(value)
    """, data)
    assert out["total"] == 20 and out["items"] == [1, 2, 3, 20] and out["last"] == "a1"
    assert out["deal"]["doubled"] == Decimal("3000000.00")
    assert data == names()  # execute never touches its input


def test_limits_are_configurable_and_enforced():
    sb = Sandbox(Limits(max_steps=100))
    with pytest.raises(SandboxError, match="too many steps"):
        sb.execute("n = 0\nwhile n < 1000:\n    n += 1", {})
    sb = Sandbox(Limits(max_seconds=0.05, max_steps=10**9))
    with pytest.raises(SandboxError, match="took longer"):
        sb.execute("n = 0\nwhile True:\n    n += 1", {})
    with pytest.raises(SandboxError, match="longer than"):
        Sandbox(Limits(max_source=10)).evaluate("1 + 1 + 1 + 1 + 1", {})


def test_long_data_can_be_read_but_not_grown():
    text = "x" * 200_000  # longer than max_str, e.g. a long description from the CRM
    assert Sandbox().evaluate("len(t)", {"t": text}) == 200_000
    with pytest.raises(SandboxError, match="exceed"):
        Sandbox().evaluate("t + t", {"t": text})


def test_check_is_static_and_cached():
    sb = Sandbox()
    sb.check("deal.amount > 1")
    sb.check("x = 1\nif x:\n    y = 2", "exec")
    with pytest.raises(SandboxError, match="'Lambda' is not allowed"):
        sb.check("f = lambda: 1", "exec")
    with pytest.raises(SandboxError, match="'Import' is not allowed") as info:
        sb.check("x = 1\nimport os", "exec")
    assert info.value.line == 2


def test_conditions_are_pure_but_scripts_may_change_data():
    with pytest.raises(SandboxError, match="unknown field 'deal.update'"):
        Sandbox().evaluate("deal.update({'amount': 0})", names())
    out = Sandbox().execute("deal.update({'amount': 0})", names())
    assert out["deal"]["amount"] == 0


@pytest.mark.parametrize(("event", "amount", "expected"), [
    ({"type": "deal.created"}, "1500000", True),
    ({"type": "deal.created"}, "900000", False),
    ({"type": "deal.created"}, None, False),
    ({"type": "deal.updated", "changed": {"amount": ["900000", "1500000"]}}, "1500000", True),
    ({"type": "deal.updated", "changed": {"amount": [None, "1500000"]}}, "1500000", True),
    ({"type": "deal.updated", "changed": {"amount": ["1200000", "1500000"]}}, "1500000", False),
    ({"type": "deal.updated", "changed": {"title": ["a", "b"]}}, "1500000", False),
    ({"type": "deal.updated", "changed": {}}, "1500000", False),
])
def test_rose_above_is_true_once_when_a_value_crosses_the_limit(event, amount, expected):
    data = {"event": event, "deal": {"amount": amount}, "threshold": "1000000"}
    assert Sandbox().evaluate("rose_above(event, deal, 'amount', threshold)", data) is expected


def test_rose_above_refuses_arguments_it_cannot_read():
    with pytest.raises(SandboxError, match="rose_above"):
        Sandbox().evaluate("rose_above(1, deal, 'amount', 5)", {"deal": {"amount": 6}})
