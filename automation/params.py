"""Typed service-task parameters: coercion with per-parameter errors, and JSON schemas.

``coerce_params(spec, params)`` turns the values a service task supplies (literal strings
from ``value="…"`` or JSON values from ``expression="…"``) into Python values of each
``ParamSpec.type``, raising one non-retryable ``ServiceCallError`` whose ``fields`` name every
bad parameter. ``params_schema(spec)`` describes the same parameters to the editor.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from engine.errors import ServiceCallError
from engine.extensions import parse_duration as engine_parse_duration
from engine.ports import OperationSpec, ParamSpec
from strictnum import NumberError, parse_decimal, parse_int

MAX_DURATION = dt.timedelta(days=3660)

_JSON_SCHEMA: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "decimal": {"type": ["number", "string"], "pattern": r"^-?\d+(\.\d+)?$"},
    "boolean": {"type": "boolean"},
    "user": {"type": ["string", "integer"], "format": "user",
             "description": "a user's e-mail or id"},
    "role": {"type": "string", "format": "role", "description": "a role's code or name"},
    "department": {"type": ["string", "integer"], "format": "department",
                   "description": "a department's name or id"},
    "stage": {"type": "string", "format": "stage", "description": "a deal stage code"},
    "duration": {"type": "string", "format": "duration",
                 "description": "an ISO 8601 duration such as PT2H or P1D"},
    "json": {},
}
PARAM_TYPES = tuple(_JSON_SCHEMA)


def parse_duration(value: Any) -> dt.timedelta:
    """``PT2H`` → 2 hours (the engine's ISO 8601 subset), at most ten years. Raises ValueError."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 duration such as PT2H or P1D")
    delta = engine_parse_duration(value)
    if delta > MAX_DURATION:
        raise ValueError("must be at most 10 years")
    return delta


def _coerce(p: ParamSpec, value: Any) -> Any:
    t = p.type
    if t in ("string", "role", "stage"):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and t == "string":
            value = str(value)
        if not isinstance(value, str):
            raise ValueError("must be text")
        value = value.strip()
        if len(value) > 20000:
            raise ValueError("must be at most 20000 characters")
    elif t == "integer":
        try:
            value = parse_int(value, signed=True)
        except NumberError:
            raise ValueError("must be a whole number") from None
    elif t == "decimal":
        try:
            value = parse_decimal(value)
        except NumberError:
            raise ValueError("must be a number") from None
    elif t == "boolean":
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            value = value.strip().lower() in ("true", "1")
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
    elif t in ("user", "department"):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"must be a {t}'s {'e-mail' if t == 'user' else 'name'} or id")
        if isinstance(value, str):
            value = value.strip()
    elif t == "duration":
        value = parse_duration(value)
    elif t == "json":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError("must be JSON") from None
    else:  # pragma: no cover - a programming error in an OperationSpec
        raise ValueError(f"has an unknown type {t}")
    if t in ("string", "role", "stage", "user", "department") and value == "":
        raise ValueError("must not be empty")
    if p.choices and value not in p.choices:
        raise ValueError("must be one of: " + ", ".join(p.choices))
    return value


def coerce_params(spec: OperationSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters as typed values; unknown, missing or ill-typed ones → ServiceCallError."""
    known = {p.name: p for p in spec.params}
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    for name in params:
        if name not in known:
            errors[str(name)[:60]] = f"is not a parameter of {spec.name}"
    for p in spec.params:
        value = params.get(p.name)
        if value is None or (isinstance(value, str) and not value.strip() and p.type != "string"):
            if p.required:
                errors[p.name] = "is required"
            continue
        try:
            out[p.name] = _coerce(p, value)
        except ValueError as exc:
            errors[p.name] = str(exc)
    if errors:
        raise bad_params(spec, errors)
    return out


def bad_params(spec: OperationSpec, errors: dict[str, str]) -> ServiceCallError:
    listed = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
    return ServiceCallError(f"{spec.name}: invalid parameters — {listed}", retryable=False,
                            fields=errors)


def params_schema(spec: OperationSpec) -> dict[str, Any]:
    """A JSON Schema of the operation's parameters (``x-marshrut-type`` keeps our type name)."""
    props: dict[str, Any] = {}
    for p in spec.params:
        prop = dict(_JSON_SCHEMA.get(p.type, {}))
        prop["x-marshrut-type"] = p.type
        if p.description:
            prop["description"] = p.description
        if p.choices:
            prop["enum"] = list(p.choices)
        props[p.name] = prop
    return {"type": "object", "properties": props, "additionalProperties": False,
            "required": [p.name for p in spec.params if p.required]}


def operation_json(spec: OperationSpec) -> dict[str, Any]:
    """An operation as the editor lists it."""
    return {"name": spec.name, "title": spec.title, "description": spec.description,
            "retryable": spec.retryable, "params": [
                {"name": p.name, "type": p.type, "required": p.required,
                 "description": p.description, "choices": list(p.choices)}
                for p in spec.params], "schema": params_schema(spec)}
