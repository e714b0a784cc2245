"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 document, generated, never hand-written.

Paths come from the app's URL map (every rule of the API blueprint, so a route cannot be
left out); each is enriched with the ``Operation`` its module registered (summary, body and
response schemas, status), and entity routes with that entity's generated schemas and list
filters. A route registered without metadata is still documented, with generic schemas.
"""
from __future__ import annotations

import re
from typing import Any

from flask import current_app
from werkzeug.routing import Rule

from crm_models.fields import SCHEMAS, Field

from .common import OPERATIONS, Operation, api_route, ref
from .schemas import FILTER_OPS, all_schemas, field_json_schema, filterable, sortable

ERRORS = {
    400: "Malformed request: invalid JSON, a body that is not an object, or a CSRF failure",
    401: "Not signed in: send 'Authorization: Bearer <token>' or a session cookie",
    403: "The caller's role does not allow this",
    404: "No such record, or one the caller may not read",
    409: "Conflicts with the current state",
    413: "The body is larger than the server accepts",
    415: "The body is not 'application/json'",
    422: "Invalid values; 'fields' names each faulty field",
    429: "Too many failed attempts",
}
RULE_ARG = re.compile(r"<(?:(?P<conv>[a-zA-Z_]\w*)(?:\([^)]*\))?:)?(?P<name>[a-zA-Z_]\w*)>")


def openapi_path(rule: str) -> str:
    """``/api/v1/leads/<id:record_id>`` → ``/api/v1/leads/{record_id}``."""
    return RULE_ARG.sub(lambda m: "{" + m.group("name") + "}", rule)


def _path_params(rule: str) -> list[dict[str, Any]]:
    out = []
    for m in RULE_ARG.finditer(rule):
        conv, name = m.group("conv") or "default", m.group("name")
        schema: dict[str, Any] = ({"type": "integer", "minimum": 1} if conv in ("id", "int")
                                  else {"type": "string"})
        if name == "entity_name":
            schema = {"type": "string", "enum": list(SCHEMAS)}
        out.append({"name": name, "in": "path", "required": True, "schema": schema})
    return out


def _scalar(f: Field | str) -> dict[str, Any]:
    if isinstance(f, str):  # id, created_at, updated_at
        return {"type": "integer"} if f == "id" else {"type": "string", "format": "date-time"}
    s = field_json_schema(f, writing=True)
    if f.kind in ("refs", "phones", "emails"):
        return {"type": "integer", "minimum": 1}  # contact_ids=5: deals with that contact
    return {k: v for k, v in s.items() if k not in ("readOnly",)}


def _list_params(entity: str) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                    "default": 1}},
        {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                        "maximum": 500, "default": 50}},
        {"name": "sort", "in": "query", "description": "a field name; '-' first for descending",
         "schema": {"type": "string", "enum": [p + n for n in sortable(entity)
                                               for p in ("", "-")], "default": "-id"}},
        {"name": "q", "in": "query", "description": "search in names, phones and e-mails",
         "schema": {"type": "string", "maxLength": 200}},
        {"name": "after", "in": "query",
         "description": "the previous page's 'next': the page after it, as fast as the first "
                        "(instead of 'page', whose cost grows with its number)",
         "schema": {"type": "string", "maxLength": 400}},
    ]
    for f in filterable(entity):
        name = f if isinstance(f, str) else f.name
        params.append({"name": name, "in": "query", "description": f"{name} equals",
                       "schema": _scalar(f)})
    params.append({
        "name": "filters", "in": "query", "style": "form", "explode": True,
        "description": "field__op=value filters ('in' and 'nin' take a comma-separated list)",
        "schema": {"type": "object", "patternProperties": filter_patterns(entity),
                   "additionalProperties": False},
    })
    return params


def filter_patterns(entity: str) -> dict[str, dict[str, str]]:
    """``field__op`` names the list accepts, as regular expressions grouped by operators:
    ``contains`` works on text only, booleans cannot be ordered, a deal's contacts take
    ``eq``/``in`` only."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for f in filterable(entity):
        kind = "id" if isinstance(f, str) else f.kind
        if kind == "refs":
            ops: tuple[str, ...] = ("eq", "in")
        elif kind == "bool":
            ops = tuple(o for o in FILTER_OPS if o in ("eq", "ne", "in", "nin"))
        elif kind in ("string", "enum"):
            ops = FILTER_OPS
        else:
            ops = tuple(o for o in FILTER_OPS if o != "contains")
        groups.setdefault(ops, []).append(f if isinstance(f, str) else f.name)
    return {"^(" + "|".join(names) + ")__(" + "|".join(ops) + ")$": {"type": "string"}
            for ops, names in groups.items()}


def _query_params(op: Operation) -> list[dict[str, Any]]:
    if "list" in op.query and op.entity:
        return _list_params(op.entity)
    known = {"page": {"type": "integer", "minimum": 1}, "q": {"type": "string"},
             "per_page": {"type": "integer", "minimum": 1, "maximum": 500},
             "department_id": {"type": "integer", "minimum": 1}, "active": {"type": "boolean"},
             "section_id": {"type": "integer", "minimum": 1},
             "deal_id": {"type": "integer", "minimum": 1},
             "lang": {"type": "string", "enum": ["ru", "en"]},
             "stage": {"type": "string", "enum": ["draft", "sent", "paid", "overdue",
                                                  "cancelled"]},
             "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$"},
             "candidate": {"type": "string", "enum": ["0", "1"]},
             "after": {"type": "string", "maxLength": 400}}
    described = {
        "after": "the previous page's 'next': the page after it, as fast as the first",
        "candidate": "1: the open tasks offered to the caller (to claim) instead of their own",
    }
    out = []
    for n in op.query:
        param = {"name": n, "in": "query", "schema": known.get(n, {"type": "string"})}
        if n == "per_page":
            param["schema"] = {**param["schema"], "default": 50}
        if n in described:
            param["description"] = described[n]
        out.append(param)
    return out


def _operation(rule: Rule, method: str, endpoint: str, op: Operation | None) -> dict[str, Any]:
    view = current_app.view_functions.get(rule.endpoint)
    doc = ((view.__doc__ or "").strip().splitlines() or [""])[0] if view else ""
    op = op or Operation(summary=doc or endpoint.replace("_", " "), tag=endpoint.split("_")[0],
                         body={"type": "object"} if method in ("POST", "PUT", "PATCH") else None,
                         body_required=False, response={"type": "object"})
    out: dict[str, Any] = {
        "operationId": endpoint if method not in ("PUT",) else f"{endpoint}_put",
        "summary": op.summary, "tags": [op.tag],
        "parameters": _path_params(rule.rule) + _query_params(op),
    }
    if op.body is not None:
        out["requestBody"] = {"required": op.body_required,
                              "content": {"application/json": {"schema": op.body}}}
    ok: dict[str, Any] = {"description": "Success"}
    if op.status != 204:
        media = op.extra.get("media", ("application/json",))  # a picture: its image types
        ok["content"] = {m: {"schema": op.response or {"type": "object"}} for m in media}
    if op.status == 201 and rule.endpoint.endswith("_create"):
        ok["headers"] = {"Location": {"schema": {"type": "string"},
                                      "description": "URL of the new record"}}
    codes = {400, 403, 404, 422} | set(op.extra.get("errors", ()))
    if not op.public:
        codes.add(401)
    if op.body is not None:
        codes |= {413, 415}
    out["responses"] = {str(op.status): ok,
                        # other success statuses with the same body (e.g. 200 for a repeat
                        # of an idempotent create)
                        **{str(c): {k: v for k, v in ok.items() if k != "headers"}
                           for c in op.extra.get("also", ())},
                        **{str(c): {"$ref": f"#/components/responses/E{c}"} for c in sorted(codes)}}
    if op.public:
        out["security"] = []
    return out


def build_document() -> dict[str, Any]:
    """The whole OpenAPI document for the running app."""
    paths: dict[str, dict[str, Any]] = {}
    for rule in current_app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        endpoint = rule.endpoint.removeprefix("api.")
        op = OPERATIONS.get(endpoint)
        item = paths.setdefault(openapi_path(rule.rule), {})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            item[method.lower()] = _operation(rule, method, endpoint, op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Marshrut CRM API", "version": "1.0.0",
                 "description": "Leads, deals, contacts, companies, the org chart and its "
                                "rights. Errors are always {\"error\": {code, message, fields}}."
                                " Amounts are decimal strings (numbers are accepted)."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": all_schemas(),
            "responses": {f"E{c}": {"description": d, "content": {
                "application/json": {"schema": ref("Error")}}} for c, d in ERRORS.items()},
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "POST /api/v1/auth/login or `flask create-token`"},
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "session",
                               "description": "The pages' session; unsafe methods then need "
                                              "an X-CSRFToken header"},
            },
        },
        "security": [{"bearerAuth": []}, {"cookieAuth": []}],
    }


@api_route("/openapi.json", public=True, tag="meta", response={"type": "object"},
           summary="This API's OpenAPI 3.1 document")
def openapi_json() -> Any:
    return build_document()
