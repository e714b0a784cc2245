"""Checking what a user submits for a user task against the task's form.

Only the form's fields are accepted (a submitted ``deal`` key must not overwrite the process
data), each value is converted to its JSON form, and all problems are reported at once as
``InvalidTaskData(fields)``.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from strictnum import NumberError, parse_decimal, parse_int

from .errors import InvalidTaskData
from .extensions import FormField

MAX_STRING = 1_000
MAX_TEXT = 20_000


def clean_form_data(form: list[dict[str, Any]], data: Mapping[str, Any] | None
                    ) -> dict[str, Any]:
    """Validated values by field name; missing optional fields are left out."""
    data = dict(data or {})
    fields = [FormField.from_dict(f) for f in form]
    problems: dict[str, str] = {}
    clean: dict[str, Any] = {}
    known = {f.name for f in fields}
    for name in data:
        if name not in known:
            problems[str(name)] = "not a field of this form"
    for f in fields:
        raw = data.get(f.name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if f.required:
                problems[f.name] = "required"
            elif f.type == "boolean":
                clean[f.name] = False
            continue
        try:
            clean[f.name] = _convert(f, raw)
        except ValueError as exc:
            problems[f.name] = str(exc)
    if problems:
        raise InvalidTaskData(problems)
    return clean


def _convert(f: FormField, raw: Any) -> Any:
    if f.type in ("string", "text"):
        if not isinstance(raw, str):
            raise ValueError("must be text")
        limit = MAX_STRING if f.type == "string" else MAX_TEXT
        if len(raw) > limit:
            raise ValueError(f"longer than {limit} characters")
        return raw.strip() if f.type == "string" else raw
    if f.type == "integer":
        try:
            return parse_int(raw, signed=True)
        except NumberError:
            raise ValueError("must be a whole number") from None
    if f.type == "decimal":
        if isinstance(raw, str):
            raw = raw.strip().replace(",", ".").replace(" ", "")
        try:
            return format(parse_decimal(raw), "f")
        except NumberError:
            raise ValueError("must be a number") from None
    if f.type == "boolean":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "on", "1", "yes", "false",
                                                            "off", "0", "no"):
            return raw.strip().lower() in ("true", "on", "1", "yes")
        raise ValueError("must be true or false")
    if f.type == "date":
        if not isinstance(raw, str):
            raise ValueError("must be a date (YYYY-MM-DD)")
        try:
            return dt.date.fromisoformat(raw.strip()).isoformat()
        except ValueError:
            raise ValueError("must be a date (YYYY-MM-DD)") from None
    if f.type in ("enum", "buttons"):
        allowed = [o.value for o in f.options]
        if not isinstance(raw, str) or raw not in allowed:
            raise ValueError(f"must be one of: {', '.join(allowed)}")
        return raw
    raise ValueError(f"unknown field type {f.type}")
