"""Functions and methods callable from sandboxed expressions — a closed whitelist.

Functions: ``len min max sum abs round int float str bool decimal sorted any all list range``
and ``rose_above(event, record, field, limit)`` (the condition builder's "rose above").
Methods (looked up by the value's exact type, never by ``getattr`` on arbitrary objects):

* text: ``lower upper strip lstrip rstrip title capitalize casefold startswith endswith find
  count split replace join isdigit isalpha isalnum isspace islower isupper``
* lists: ``count index`` and, in scripts only, ``append extend insert pop remove clear``
* dicts: ``get keys values items`` and, in scripts only, ``update pop setdefault clear``

Conditions are pure: the mutating methods exist only when a script task runs.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .errors import SandboxError
from .sandbox_lib import (
    DECIMAL_CONTEXT,
    Checker,
    binop,
    compare,
    is_decimal_text,
    is_number,
    short,
    to_decimal,
    truth,
)


def _items(chk: Checker, v: Any) -> list[Any]:
    return list(chk.iterable(v))


def _len(chk: Checker, v: Any) -> int:
    if isinstance(v, str | list | tuple | dict | range):
        return len(v)
    raise SandboxError(f"{short(v)} has no length")


def _extreme(op: str) -> Callable[..., Any]:
    def pick(chk: Checker, *args: Any) -> Any:
        items = _items(chk, args[0]) if len(args) == 1 else list(args)
        if not items:
            raise SandboxError(f"{'min' if op == '<' else 'max'}() of an empty list")
        best = items[0]
        for v in items[1:]:
            if compare(op, v, best):
                best = v
        return best
    return pick


def _sum(chk: Checker, items: Any, start: Any = 0) -> Any:
    total = start
    for v in _items(chk, items):
        total = binop("+", total, v, chk)
    return total


def _abs(chk: Checker, v: Any) -> Any:
    if is_decimal_text(v):
        v = to_decimal(v)
    if not is_number(v):
        raise SandboxError(f"abs() of {short(v)}")
    return abs(v)


def _round(chk: Checker, v: Any, ndigits: int | None = None) -> Any:
    if is_decimal_text(v):
        v = to_decimal(v)
    if not is_number(v):
        raise SandboxError(f"round() of {short(v)}")
    if ndigits is not None and (not isinstance(ndigits, int) or not -20 <= ndigits <= 20):
        raise SandboxError("round() digits must be an integer between -20 and 20")
    if isinstance(v, Decimal):
        exp = Decimal(1).scaleb(-(ndigits or 0))
        q = v.quantize(exp, rounding=ROUND_HALF_UP, context=DECIMAL_CONTEXT)  # money rounding
        return q if ndigits is not None else int(q)
    return round(v, ndigits) if ndigits is not None else round(v)


def _int(chk: Checker, v: Any) -> int:
    if isinstance(v, str):
        if not is_decimal_text(v):
            raise SandboxError(f"int() of {short(v)}")
        v = to_decimal(v)
    if isinstance(v, bool | int):
        return int(v)
    if isinstance(v, float | Decimal):
        try:
            return chk.size(int(v))
        except (ValueError, OverflowError, ArithmeticError):
            raise SandboxError(f"int() of {short(v)}") from None
    raise SandboxError(f"int() of {short(v)}")


def _float(chk: Checker, v: Any) -> float:
    if isinstance(v, str):
        v = to_decimal(v)
    if isinstance(v, bool) or not is_number(v):
        raise SandboxError(f"float() of {short(v)}")
    try:
        return float(v)
    except OverflowError:
        raise SandboxError("number too large") from None


def _str(chk: Checker, v: Any = "") -> str:
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, str | int | float | bool | type(None) | list | tuple | dict):
        return chk.size(str(v))
    raise SandboxError(f"str() of {short(v)}")


def _sorted(chk: Checker, items: Any, *, reverse: bool = False) -> list[Any]:
    values = _items(chk, items)
    key = functools.cmp_to_key(lambda x, y: -1 if compare("<", x, y) else (
        1 if compare("<", y, x) else 0))
    return sorted(values, key=key, reverse=bool(reverse))


def _range(chk: Checker, *args: Any) -> range:
    if not all(isinstance(a, int) and not isinstance(a, bool) for a in args) or not 1 <= len(args) <= 3:
        raise SandboxError("range() takes 1 to 3 integers")
    r = range(*args)
    return chk.size(r)


def _list(chk: Checker, items: Any = ()) -> list[Any]:
    return chk.size(_items(chk, items))


def _rose_above(chk: Checker, event: Any, record: Any, field: Any, limit: Any) -> bool:
    """Whether ``record[field]`` is above ``limit`` now and was not before this event: the
    record was just created, or the event changed the field from empty or at most ``limit``.
    (A deal raised above a threshold is routed once, not on every later edit.)"""
    if not isinstance(event, dict) or not isinstance(record, dict) or not isinstance(field, str):
        raise SandboxError("rose_above(event, record, 'field', limit) takes the event, a "
                           "record and a field name")
    value = record.get(field)
    if value is None or not compare(">", value, limit):
        return False
    if str(event.get("type") or "").endswith(".created"):
        return True
    changed = event.get("changed")
    if not isinstance(changed, dict) or field not in changed:
        return False
    before = changed[field]
    old = before[0] if isinstance(before, list | tuple) and before else None
    return old is None or not compare(">", to_decimal(old), limit)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": _len, "min": _extreme("<"), "max": _extreme(">"), "sum": _sum, "abs": _abs,
    "round": _round, "int": _int, "float": _float, "str": _str,
    "bool": lambda chk, v=False: truth(v), "decimal": lambda chk, v: to_decimal(v),
    "sorted": _sorted, "any": lambda chk, v: any(truth(x) for x in _items(chk, v)),
    "all": lambda chk, v: all(truth(x) for x in _items(chk, v)), "list": _list,
    "range": _range, "rose_above": _rose_above,
}


# ------------------------------------------------------------------ methods

def _str_replace(chk: Checker, s: str, old: str, new: str, count: int = -1) -> str:
    if not isinstance(old, str) or not isinstance(new, str):
        raise SandboxError("replace() takes text")
    n = len(s) + 1 if old == "" else s.count(old)
    if isinstance(count, int) and count >= 0:
        n = min(n, count)
    chk.expect_len(len(s) + n * max(len(new) - len(old), 0), "str")
    return s.replace(old, new, count)


def _str_join(chk: Checker, sep: str, items: Any) -> str:
    parts = _items(chk, items)
    if not all(isinstance(p, str) for p in parts):
        raise SandboxError("join() takes a list of text")
    chk.expect_len(sum(len(p) for p in parts) + len(sep) * max(len(parts) - 1, 0), "str")
    return sep.join(parts)


def _plain(name: str) -> Callable[..., Any]:
    def call(chk: Checker, obj: Any, *args: Any) -> Any:
        result = getattr(obj, name)(*args)  # name comes from the whitelists below only
        if isinstance(result, dict_views):
            result = list(result)
        return chk.size(result)
    return call


dict_views = (type({}.keys()), type({}.values()), type({}.items()))

_STR_PURE = ("lower upper strip lstrip rstrip title capitalize casefold startswith endswith "
             "find count split isdigit isalpha isalnum isspace islower isupper").split()
STR_METHODS: dict[str, Callable[..., Any]] = {n: _plain(n) for n in _STR_PURE}
STR_METHODS.update(replace=_str_replace, join=_str_join)

LIST_METHODS = {n: _plain(n) for n in ("count", "index")}
LIST_MUTATORS = {n: _plain(n) for n in ("pop", "remove", "clear")}
DICT_METHODS = {n: _plain(n) for n in ("get", "keys", "values", "items")}
DICT_MUTATORS = {n: _plain(n) for n in ("pop", "setdefault", "clear")}


def _list_append(chk: Checker, obj: list[Any], v: Any) -> None:
    chk.expect_len(len(obj) + 1, "items")
    obj.append(v)


def _list_extend(chk: Checker, obj: list[Any], items: Any) -> None:
    more = _items(chk, items)
    chk.expect_len(len(obj) + len(more), "items")
    obj.extend(more)


def _list_insert(chk: Checker, obj: list[Any], i: int, v: Any) -> None:
    chk.expect_len(len(obj) + 1, "items")
    obj.insert(i, v)


def _dict_update(chk: Checker, obj: dict[Any, Any], other: Any) -> None:
    if not isinstance(other, dict):
        raise SandboxError("update() takes a dict")
    chk.expect_len(len(obj) + len(other), "items")
    obj.update(other)


LIST_MUTATORS.update(append=_list_append, extend=_list_extend, insert=_list_insert)
DICT_MUTATORS.update(update=_dict_update)


def find_method(obj: Any, name: str, *, mutating: bool) -> Callable[..., Any] | None:
    """The implementation of ``obj.name(...)`` or None; lookup by exact type only."""
    if type(obj) is str:
        return STR_METHODS.get(name)
    if type(obj) is list:
        return LIST_METHODS.get(name) or (LIST_MUTATORS.get(name) if mutating else None)
    if type(obj) is tuple:
        return LIST_METHODS.get(name)
    if type(obj) is dict:
        return DICT_METHODS.get(name) or (DICT_MUTATORS.get(name) if mutating else None)
    return None
