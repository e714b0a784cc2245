"""What every API view shares: the route table with its OpenAPI metadata, request parsing
(JSON bodies, query strings, ids) and the commit after a write.

Parsing turns every malformed input into an ``ApiError`` (a ``CrmError``, so ``web.errors``
renders it as ``{"error": {"code", "message", "fields"}}``) before any service runs: a view
never sees a body that is not a JSON object, a string with NUL or lone surrogates, or a key
that would collide with a service function's own parameters.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import request
from werkzeug.routing import IntegerConverter

from crm_models.errors import CrmError, ValidationFailed
from crm_models.fields import READONLY_COMMON, clean, field_map
from crm_models.permissions import Actor
from crm_models.services.records import MAX_ID, MAX_PAGE, MAX_PER_PAGE
from strictnum import NumberError, at_most_regex, parse_int
from web.auth import require_actor
from web.database import get_db

from . import bp

DEFAULT_PER_PAGE = 50


class ApiError(CrmError):
    """A request the API refuses before any service runs; carries its own status and code."""

    def __init__(self, status: int, code: str, message: str,
                 fields: dict[str, str] | None = None) -> None:
        super().__init__(message, fields=fields)
        self.status = status
        self.code = code


class IdConverter(IntegerConverter):
    """``<id:name>``: a positive id of ASCII digits that fits the id columns; anything else
    (``²``, ``١``, ``007``, too large) does not match the pattern (→ 404 whatever the method:
    a number the pattern took but the converter refused made werkzeug answer 405)."""

    regex = at_most_regex(MAX_ID)

    def __init__(self, url_map: Any) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)


# --- the route table -------------------------------------------------------------------------

@dataclass(frozen=True)
class Operation:
    """What OpenAPI needs to know about one endpoint beyond its rule and methods.

    ``body``/``response`` are JSON Schemas (usually ``ref("Lead")``); ``query`` names
    parameters known to ``web.api.openapi``; ``entity`` marks entity-generic endpoints so the
    document can fill in that entity's schemas and list filters.
    """

    summary: str
    tag: str
    body: dict[str, Any] | None = None
    body_required: bool = True
    response: dict[str, Any] | None = None
    status: int = 200
    query: tuple[str, ...] = ()
    public: bool = False
    entity: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


#: endpoint name (without the ``api.`` prefix) → its metadata; filled as routes are added.
OPERATIONS: dict[str, Operation] = {}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def list_of(name: str) -> dict[str, Any]:
    """Schema of ``{"items": [<name>, ...]}``."""
    return {"type": "object", "required": ["items"],
            "properties": {"items": {"type": "array", "items": ref(name)}}}


def add_route(rule: str, endpoint: str, view: Callable[..., Any], methods: Iterable[str],
              op: Operation, defaults: dict[str, Any] | None = None) -> None:
    """Register ``view`` on the API blueprint and remember its OpenAPI metadata."""
    if endpoint in OPERATIONS:
        raise ValueError(f"API endpoint {endpoint!r} is registered twice")
    extra = {"defaults": defaults} if defaults else {}
    bp.add_url_rule(rule, endpoint, view, methods=list(methods), **extra)
    OPERATIONS[endpoint] = op


def api_route(rule: str, *, methods: Iterable[str] = ("GET",), endpoint: str | None = None,
              **op: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator form of ``add_route`` for endpoints with one view each."""
    def deco(view: Callable[..., Any]) -> Callable[..., Any]:
        add_route(rule, endpoint or view.__name__, view, methods, Operation(**op))
        return view

    return deco


# --- requests --------------------------------------------------------------------------------

def db_actor() -> tuple[Any, Actor]:
    """The request's session and actor (401 when nobody is signed in)."""
    return get_db(), require_actor()


def commit() -> None:
    """Commit the request's session after a successful write."""
    get_db().commit()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _check_strings(value: Any, path: str, errors: dict[str, str]) -> None:
    """NUL and lone surrogates pass ``json.loads`` but break PostgreSQL and UTF-8 encoding."""
    if isinstance(value, str):
        if "\x00" in value:
            errors[path or "body"] = "must not contain NUL characters"
        else:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                errors[path or "body"] = "must be valid Unicode text"
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_strings(k, path, errors)
            _check_strings(v, f"{path}.{k}" if path else str(k)[:60], errors)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_strings(v, f"{path}[{i}]", errors)


def json_body(*, required: bool = True) -> dict[str, Any]:
    """The request body as a JSON object.

    An empty body is ``{}`` when not ``required``. Raises 413 (over MAX_CONTENT_LENGTH),
    415 (not ``application/json``), 400 ``invalid_json`` / ``invalid_body``, or 422 for
    strings that the database could not store.
    """
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise ApiError(400, "invalid_body", "Send a JSON object in the request body")
        return {}
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type",
                       "Send the body as JSON with 'Content-Type: application/json'")
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"The body is not valid JSON: {exc.msg} "
                       f"at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        msg = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:100]
        raise ApiError(400, "invalid_json", f"The body is not valid JSON: {msg}") from None
    if not isinstance(data, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(data), "a number")
        raise ApiError(400, "invalid_body", f"The body must be a JSON object, not {kind}")
    errors: dict[str, str] = {}
    _check_strings(data, "", errors)
    if errors:
        raise ValidationFailed(errors)
    return data


def only_keys(body: dict[str, Any], allowed: Iterable[str], what: str) -> None:
    """Refuse keys outside ``allowed``, naming each (the services take ``**fields``, so an
    unknown key such as ``actor`` must never reach them)."""
    allowed = set(allowed)
    unknown = {str(k)[:60]: f"is not a field of {what}" for k in body if k not in allowed}
    if unknown:
        raise ValidationFailed(unknown)


def entity_keys(entity: str, body: dict[str, Any], *, partial: bool) -> None:
    """Like ``only_keys`` for a CRM entity (read-only fields pass so ``clean()`` names them);
    when some key is unknown, the error also names every other bad field, as the service's
    own validation would."""
    allowed = set(field_map(entity)) | set(READONLY_COMMON)
    unknown = {str(k)[:60]: f"is not a field of {entity}" for k in body if k not in allowed}
    if not unknown:
        return
    try:
        clean(entity, {k: v for k, v in body.items() if k in allowed}, partial=partial)
    except ValidationFailed as exc:
        unknown = {**exc.fields, **unknown}
    raise ValidationFailed(unknown)


def check_id(value: Any, name: str, *, nullable: bool = False) -> int | None:
    """A JSON id: a positive integer (a bool is not one)."""
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise ValidationFailed({name: "must be a positive whole number (an id)"})
    return value


def _int_param(name: str, raw: str, lo: int, hi: int) -> int:
    try:
        return parse_int(raw, minimum=lo, maximum=hi)
    except NumberError as exc:
        raise ValidationFailed({name: str(exc)}) from None


def id_param(name: str, raw: Any) -> int:
    """An id in the query string or a form (1 … ``MAX_ID``, ASCII digits), or a 400 naming
    ``name``."""
    try:
        return parse_int(raw, minimum=1, maximum=MAX_ID)
    except NumberError:
        raise ValidationFailed({name: "must be an id (a whole number from 1 to "
                                      f"{MAX_ID})"}) from None


def query_args() -> dict[str, list[str]]:
    """Every query parameter with all its values, NUL-free (PostgreSQL refuses NUL)."""
    out: dict[str, list[str]] = {}
    for key in request.args:
        values = request.args.getlist(key)
        if "\x00" in key or any("\x00" in v for v in values):
            raise ValidationFailed({key.replace("\x00", "")[:60] or "query":
                                    "must not contain NUL characters"})
        out[key] = values
    return out


def single(args: dict[str, list[str]], key: str) -> str | None:
    values = args.get(key)
    if not values:
        return None
    if len(values) > 1:
        raise ValidationFailed({key[:60]: "is given more than once"})
    return values[0]


def paging(args: dict[str, list[str]]) -> tuple[int, int]:
    """``page`` (from 1) and ``per_page`` (1–500, default 50) from the query string."""
    page_raw = single(args, "page")
    page = 1 if page_raw is None else _int_param("page", page_raw, 1, MAX_PAGE)
    return page, per_page_param(args)


def per_page_param(args: dict[str, list[str]]) -> int:
    """``per_page`` (1–500, default 50) from the query string."""
    per_raw = single(args, "per_page")
    return (DEFAULT_PER_PAGE if per_raw is None
            else _int_param("per_page", per_raw, 1, MAX_PER_PAGE))


LIST_RESERVED = ("page", "per_page", "sort", "q", "after")


def list_params() -> dict[str, Any]:
    """Keyword arguments for ``records.list_records`` from the query string.

    ``field`` and ``field__op`` parameters become filters; ``__in``/``__nin`` take a
    comma-separated list or the parameter repeated. The service validates field names, operators and values.
    """
    args = query_args()
    page, per_page = paging(args)
    filters: dict[str, Any] = {}
    for key, values in args.items():
        if key in LIST_RESERVED:
            continue
        if key.endswith(("__in", "__nin")):
            filters[key] = ",".join(values)
        else:
            filters[key] = single(args, key)
    return {"filters": filters, "search": single(args, "q") or None,
            "sort": single(args, "sort") or None, "page": page, "per_page": per_page,
            "after": single(args, "after") or None}


def page_json(items: list[Any], total: int, page: int, per_page: int,
              next_cursor: str | None = None) -> dict[str, Any]:
    """A list page; ``next`` (when the list has one) is the ``after`` of the page after it."""
    return {"items": items, "total": total, "page": page, "per_page": per_page,
            "next": next_cursor}
