"""The values, operators, functions and methods an expression may use inside the sandbox.

Everything here works on plain JSON-like values (None, bool, int, float, Decimal, str, list,
tuple, dict) and refuses anything else. Every operation that can grow memory checks the size
of its result *before* computing it, so ``'a' * 10**10`` or ``9 ** 9 ** 9`` fail cheaply.

Numbers and decimal strings (the contract with the CRM bridge): money amounts arrive in the
data as decimal strings (``"1500000.00"``). So that ``deal.amount > 1000000`` compares numbers:

* when a string meets a number (int, float, Decimal — not bool) in a comparison or in
  arithmetic, the string is read as a Decimal; a string that is not a decimal number is an
  error (never a silent ``False``);
* ordering comparisons (``<``, ``<=``, ``>``, ``>=``) between two strings that both look like
  decimal numbers compare numerically, and between a decimal-looking string and one that is
  not they are an error; other string comparisons, including ``==``, are exact text
  comparisons (so ``'007' == '7'`` is false, as for codes, and ISO dates order as text);
* ``+`` between two strings concatenates; to add two amounts write ``decimal(a) + decimal(b)``;
* Decimal results are stored back into task data as decimal strings (``"3000000.00"``).
"""
from __future__ import annotations

import decimal
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .errors import SandboxError


@dataclass(frozen=True)
class Limits:
    """Bounds on one evaluation; all are checked before the work they bound is done."""

    max_steps: int = 50_000        # AST nodes evaluated (loops count every iteration)
    max_seconds: float = 1.0       # wall clock per evaluation
    max_str: int = 100_000         # characters in any string produced
    max_items: int = 10_000        # items in any list/dict/range produced
    max_int_bits: int = 4_096      # size of any integer produced
    max_depth: int = 60            # nesting depth of the expression's syntax tree
    max_source: int = 20_000       # characters of source text


#: ASCII digits only (``re.ASCII``): ``"١٢"`` is text, not 12 (see ``strictnum``).
DECIMAL_RE = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,4})?\s*\Z", re.ASCII)
DECIMAL_CONTEXT = decimal.Context(prec=34, Emax=10_000, Emin=-10_000,
                                  traps=[decimal.InvalidOperation, decimal.DivisionByZero,
                                         decimal.Overflow])


def is_number(v: Any) -> bool:
    return isinstance(v, int | float | Decimal) and not isinstance(v, bool)


def is_decimal_text(v: Any) -> bool:
    return isinstance(v, str) and len(v) < 60 and DECIMAL_RE.match(v) is not None


def to_decimal(v: Any) -> Decimal:
    """``decimal(x)`` in expressions: a Decimal from a number or a decimal string."""
    if isinstance(v, Decimal):
        return v
    if isinstance(v, bool) or v is None:
        raise SandboxError(f"{short(v)} is not a number")
    if isinstance(v, int):
        return Decimal(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise SandboxError(f"{v} is not a finite number")
        return Decimal(repr(v))
    if is_decimal_text(v):
        return Decimal(v.strip())
    raise SandboxError(f"{short(v)} is not a number")


def short(v: Any) -> str:
    """A value for error messages: type and a bounded repr."""
    text = repr(v) if isinstance(v, str | int | float | Decimal | bool | type(None)) else ""
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(v).__name__} {text}".strip()


class Checker:
    """Size checks shared by operators, functions and methods of one evaluation."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    def size(self, value: Any) -> Any:
        lim = self.limits
        if isinstance(value, str) and len(value) > lim.max_str:
            raise SandboxError(f"text longer than {lim.max_str} characters")
        if isinstance(value, list | tuple | dict | range) and len(value) > lim.max_items:
            raise SandboxError(f"more than {lim.max_items} items")
        if isinstance(value, int) and not isinstance(value, bool) \
                and value.bit_length() > lim.max_int_bits:
            raise SandboxError("number too large")
        return value

    def expect_len(self, n: int, what: str) -> None:
        limit = self.limits.max_str if what == "str" else self.limits.max_items
        if n > limit:
            raise SandboxError(f"result would exceed {limit} {'characters' if what == 'str' else 'items'}")

    def iterable(self, value: Any) -> Iterable[Any]:
        if isinstance(value, dict):
            return list(value.keys())
        if isinstance(value, list | tuple | str | range):
            return value
        raise SandboxError(f"cannot iterate over {short(value)}")


# ---------------------------------------------------------------- operators

def _numeric_pair(a: Any, b: Any) -> tuple[Any, Any] | None:
    """Both operands as numbers of compatible types, or None if this is not numeric."""
    if is_number(a) and is_number(b):
        if isinstance(a, Decimal) or isinstance(b, Decimal):
            return to_decimal(a), to_decimal(b)
        return a, b
    if (is_number(a) and isinstance(b, str)) or (isinstance(a, str) and is_number(b)):
        return to_decimal(a), to_decimal(b)
    return None


def _both_decimal_text(a: Any, b: Any) -> bool:
    return is_decimal_text(a) and is_decimal_text(b)


def binop(op: str, a: Any, b: Any, chk: Checker) -> Any:
    """``a <op> b`` with the coercion rules of the module docstring and size pre-checks."""
    if op == "+":
        if isinstance(a, str) and isinstance(b, str):
            chk.expect_len(len(a) + len(b), "str")
            return a + b
        if isinstance(a, list | tuple) and type(a) is type(b):
            chk.expect_len(len(a) + len(b), "items")
            return a + b
    if op == "*":
        seq, n = (a, b) if isinstance(b, int) and not isinstance(b, bool) else (b, a)
        if isinstance(seq, str | list | tuple) and isinstance(n, int) and not isinstance(n, bool) \
                and not is_decimal_text(seq):
            chk.expect_len(len(seq) * max(n, 0), "str" if isinstance(seq, str) else "items")
            return seq * n
    if op == "%" and isinstance(a, str) and not is_decimal_text(a):
        raise SandboxError("'%' formatting of text is not allowed; use an f-string")
    pair = _numeric_pair(a, b)
    if pair is None and op != "+" and _both_decimal_text(a, b):
        pair = to_decimal(a), to_decimal(b)
    if pair is None:
        raise SandboxError(f"cannot apply '{op}' to {short(a)} and {short(b)}")
    x, y = pair
    if op == "**":
        return _power(x, y, chk)
    if op == "*" and isinstance(x, int) and isinstance(y, int):
        if x.bit_length() + y.bit_length() > chk.limits.max_int_bits:
            raise SandboxError("number too large")
    try:
        if isinstance(x, Decimal):
            return _DECIMAL_OPS[op](x, y)
        return _PY_OPS[op](x, y)
    except ZeroDivisionError:
        raise SandboxError("division by zero") from None
    except (ArithmeticError, ValueError) as exc:
        raise SandboxError(f"arithmetic error: {exc}") from None


def _power(x: Any, y: Any, chk: Checker) -> Any:
    if isinstance(x, int) and isinstance(y, int):
        if y < 0:
            if x == 0:
                raise SandboxError("division by zero")
            return x ** y if abs(y) <= 1000 else 0.0
        if y > 10_000 or max(x.bit_length(), 1) * y > chk.limits.max_int_bits:
            raise SandboxError("number too large")
        return x ** y
    if abs(y) > 1000:
        raise SandboxError("exponent too large")
    try:
        if isinstance(x, Decimal):
            return DECIMAL_CONTEXT.power(x, y)
        return x ** y
    except (ArithmeticError, ValueError) as exc:
        raise SandboxError(f"arithmetic error: {exc}") from None


_PY_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
    "/": lambda x, y: x / y, "//": lambda x, y: x // y, "%": lambda x, y: x % y,
}
_DECIMAL_OPS: dict[str, Callable[[Decimal, Decimal], Any]] = {
    "+": DECIMAL_CONTEXT.add, "-": DECIMAL_CONTEXT.subtract, "*": DECIMAL_CONTEXT.multiply,
    "/": DECIMAL_CONTEXT.divide, "//": DECIMAL_CONTEXT.divide_int,
    "%": DECIMAL_CONTEXT.remainder,
}


def compare(op: str, a: Any, b: Any) -> bool:
    """One comparison, with numbers and decimal strings compared numerically."""
    if op in ("in", "not in"):
        if not isinstance(b, str | list | tuple | dict):
            raise SandboxError(f"cannot test membership in {short(b)}")
        if isinstance(b, str) and not isinstance(a, str):
            raise SandboxError(f"cannot look for {short(a)} in text")
        found = a in b
        return found if op == "in" else not found
    if op in ("is", "is not"):
        if a is not None and b is not None:
            raise SandboxError("'is' may only compare with None")
        same = a is b
        return same if op == "is" else not same
    pair = _numeric_pair(a, b)
    if pair is None and op in ("<", "<=", ">", ">=") and isinstance(a, str) \
            and isinstance(b, str) and (is_decimal_text(a) or is_decimal_text(b)):
        if not _both_decimal_text(a, b):  # "a lot" > "1000000" must not be decided as text
            raise SandboxError(f"cannot compare {short(a)} with {short(b)}: one is a number "
                               "and the other is not")
        pair = to_decimal(a), to_decimal(b)
    x, y = pair if pair is not None else (a, b)
    if op == "==":
        return bool(x == y)
    if op == "!=":
        return bool(x != y)
    ordered = (isinstance(x, str) and isinstance(y, str)) or (is_number(x) and is_number(y)) \
        or (isinstance(x, list | tuple) and type(x) is type(y))
    if not ordered:
        raise SandboxError(f"cannot compare {short(a)} with {short(b)} using '{op}'")
    try:
        return bool({"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op])
    except TypeError:
        raise SandboxError(f"cannot compare {short(a)} with {short(b)}") from None


def unary(op: str, v: Any) -> Any:
    if op == "not":
        return not truth(v)
    if isinstance(v, str) and is_decimal_text(v):
        v = to_decimal(v)
    if not is_number(v):
        raise SandboxError(f"cannot apply unary '{op}' to {short(v)}")
    return -v if op == "-" else +v


def truth(v: Any) -> bool:
    if isinstance(v, None | bool | int | float | Decimal | str | list | tuple | dict):
        return bool(v)
    raise SandboxError(f"{short(v)} has no truth value")
