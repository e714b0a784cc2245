"""Request parameters the way Bitrix24 (PHP) reads them: query string, form or multipart body
with bracket nesting (``fields[PHONE][0][VALUE]=…``), or a JSON body.

Top-level names are case-insensitive (returned lower-cased); nested names are kept as sent.
PHP arrays whose keys are 0, 1, 2 … become lists. A malformed name (``fields[TITLE``) or a
name used both as a value and as an array is refused with ``INVALID_REQUEST``.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from flask import Request

from strictnum import MAX_INT_DIGITS, is_digits

from .envelope import BitrixError

NAME_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
SEGMENT_RE = re.compile(r"\[([^\[\]]*)\]")
MAX_FIELDS = 5000
MAX_DEPTH = 16


def _bad(message: str) -> BitrixError:
    return BitrixError(400, "INVALID_REQUEST", message)


def _index(key: str) -> bool:
    """A PHP array index: ASCII digits only (``"²"`` or ``"١"`` is a plain string key)."""
    return is_digits(key) and len(key) <= MAX_INT_DIGITS


def _next_index(node: dict[str, Any]) -> str:
    ints = [int(k) for k in node if _index(k)]
    return str(max(ints) + 1 if ints else 0)


def parse_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """PHP's ``parse_str`` for (name, value) pairs, strict about malformed names."""
    root: dict[str, Any] = {}
    for count, (name, value) in enumerate(pairs, start=1):
        if count > MAX_FIELDS:
            raise _bad(f"Too many parameters (at most {MAX_FIELDS})")
        m = NAME_RE.match(name)
        if m is None:
            raise _bad(f"Malformed parameter name '{name[:80]}'")
        path = [m.group(1), *SEGMENT_RE.findall(m.group(2))]
        if len(path) > MAX_DEPTH:
            raise _bad(f"Parameter '{name[:80]}' is nested too deeply")
        node = root
        for i, key in enumerate(path[:-1]):
            if key == "" and i > 0:
                key = _next_index(node)
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            elif not isinstance(child, dict):
                raise _bad(f"Parameter '{name[:80]}' conflicts with a plain value of the "
                           f"same name")
            node = child
        last = path[-1]
        if last == "" and len(path) > 1:
            last = _next_index(node)
        if isinstance(node.get(last), dict):
            raise _bad(f"Parameter '{name[:80]}' conflicts with an array of the same name")
        node[last] = value
    return {k: _listify(v) for k, v in root.items()}


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        value = {k: _listify(v) for k, v in value.items()}
        if value and all(_index(k) for k in value) and sorted(int(k) for k in value) == list(
                range(len(value))):
            return [value[str(i)] for i in range(len(value))]
    return value


def lower_top(params: dict[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in params.items()}


def parse_query_string(query: str) -> dict[str, Any]:
    """Parameters of a batch command's query string (already URL-decoded by this parse)."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False,
                          max_num_fields=MAX_FIELDS)
    except ValueError as exc:
        raise _bad(f"Malformed query string: {str(exc)[:100]}") from None
    return lower_top(parse_pairs(pairs))


def request_params(req: Request) -> dict[str, Any]:
    """Every parameter of a REST call, query string first, the body overriding it."""
    query_pairs = list(req.args.items(multi=True))
    ctype = (req.mimetype or "").lower()
    raw = req.get_data(cache=True)
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return lower_top(parse_pairs(query_pairs + list(req.form.items(multi=True))))
    params = lower_top(parse_pairs(query_pairs))
    text = raw.strip()
    if not text:
        return params
    if ctype.endswith("json") or text[:1] in (b"{", b"["):
        try:
            body = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise _bad(f"The body is not valid JSON: {str(exc)[:100]}") from None
        if isinstance(body, list) and not body:
            body = {}
        if not isinstance(body, dict):
            raise _bad("The JSON body must be an object of parameters")
        params.update(lower_top(body))
        return params
    try:
        text_body = text.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("The body is neither JSON nor form-encoded UTF-8") from None
    params.update(parse_query_string(text_body))
    return params
