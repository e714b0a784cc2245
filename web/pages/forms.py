"""Record forms: which fields a form shows, form data → service keyword arguments, and back.

A form's ``values`` are always "form-shaped" (strings for scalars, lists of id strings for
multi-selects, ``[{"value", "value_type"}]`` for phones/e-mails, bools for checkboxes), whether
they come from a record, from defaults, or from a submitted form being shown again with errors.
Validation itself stays in the services; this only reshapes.
"""
from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict

from crm_models.fields import SCHEMAS, Field

#: Fields a record must never be written with an empty value (the columns are NOT NULL).
NOT_EMPTY_ON_UPDATE = {"responsible_id", "currency", "pipeline_id", "stage"}
CHANNEL_KINDS = ("phones", "emails")
#: Blank rows offered for new phones/e-mails (no JavaScript needed to add one).
SPARE_CHANNEL_ROWS = 1


def form_fields(entity: str) -> list[Field]:
    """The editable fields, in schema order."""
    return [f for f in SCHEMAS[entity] if not f.readonly]


def parse(entity: str, form: MultiDict[str, str], *, creating: bool) -> dict[str, Any]:
    """The service keyword arguments for a submitted record form.

    On create, empty values are left out so the services' defaults apply; on update, fields
    that must not become empty are left out when empty (keeping their stored value).
    """
    out: dict[str, Any] = {}
    for f in form_fields(entity):
        if f.kind in CHANNEL_KINDS:
            values = form.getlist(f"{f.name}-value")
            types = form.getlist(f"{f.name}-type")
            items = [{"value": v.strip(), "value_type": (types[i] if i < len(types) else "WORK")}
                     for i, v in enumerate(values) if v.strip()]
            if items or not creating:
                out[f.name] = items
        elif f.kind == "refs":
            ids = [v for v in form.getlist(f.name) if v.strip()]
            if ids or not creating:
                out[f.name] = ids
        elif f.kind == "bool":
            out[f.name] = form.get(f.name) in ("on", "1", "true", "y")
        else:
            value = form.get(f.name, "")
            if value.strip() == "" and (creating or f.name in NOT_EMPTY_ON_UPDATE):
                continue
            out[f.name] = value
    return out


def from_record(record: Any) -> dict[str, Any]:
    """A record's current values, form-shaped."""
    entity = record.entity_type
    out: dict[str, Any] = {}
    for f in form_fields(entity):
        if f.name == "stage":
            out[f.name] = record.stage.code if record.stage is not None else ""
        elif f.kind == "refs":
            out[f.name] = [str(c.id) for c in record.contacts]
        elif f.kind in CHANNEL_KINDS:
            out[f.name] = list(getattr(record, f.name) or [])
        elif f.kind == "bool":
            out[f.name] = bool(getattr(record, f.name))
        else:
            value = getattr(record, f.name)
            out[f.name] = "" if value is None else str(value)
    return out


def defaults(entity: str, user_id: int | None, query: MultiDict[str, str]) -> dict[str, Any]:
    """Values of an empty create form; links given in the query (``?company_id=3``) prefill."""
    out: dict[str, Any] = {}
    for f in form_fields(entity):
        if f.kind in CHANNEL_KINDS or f.kind == "refs":
            out[f.name] = query.getlist(f.name) if f.kind == "refs" else []
        elif f.kind == "bool":
            out[f.name] = True
        else:
            out[f.name] = query.get(f.name, "")
    out["responsible_id"] = str(user_id or "")
    if "currency" in out and not out["currency"]:
        out["currency"] = "RUB"
    if entity == "lead" and not out.get("status"):
        out["status"] = "NEW"
    return out


def resubmitted(entity: str, form: MultiDict[str, str]) -> dict[str, Any]:
    """A submitted form's values, form-shaped, to show it again with its errors."""
    out: dict[str, Any] = {}
    for f in form_fields(entity):
        if f.kind in CHANNEL_KINDS:
            values = form.getlist(f"{f.name}-value")
            types = form.getlist(f"{f.name}-type")
            out[f.name] = [{"value": v, "value_type": types[i] if i < len(types) else "WORK"}
                           for i, v in enumerate(values) if v.strip()]
        elif f.kind == "refs":
            out[f.name] = form.getlist(f.name)
        elif f.kind == "bool":
            out[f.name] = form.get(f.name) in ("on", "1", "true", "y")
        else:
            out[f.name] = form.get(f.name, "")
    return out
