"""Entities as JSON-ready dicts with the API's snake_case names; also the source of audit diffs."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from .fields import SCHEMAS

#: Per entity, the field names in output order (``to_dict`` runs several times per write).
_NAMES: dict[str, tuple[str, ...]] = {
    entity: tuple(f.name for f in fields) for entity, fields in SCHEMAS.items()}
#: Fields read through a relationship rather than from a column.
_RELATED = frozenset({"stage", "contact_ids"})
_MISSING = object()


def json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def field_value(record: Any, name: str) -> Any:
    if name == "stage":
        return record.stage.code if record.stage is not None else None
    if name == "contact_ids":
        return [c.id for c in record.contacts]
    return json_value(getattr(record, name))


def to_dict(record: Any) -> dict[str, Any]:
    """The record's fields as JSON values (amounts as decimal strings, times as ISO 8601)."""
    entity = record.entity_type
    # A loaded column's value sits in the instance dict; anything else (expired, never loaded,
    # a property such as a contact's full name) goes through the attribute as usual.
    loaded = record.__dict__
    out: dict[str, Any] = {"id": record.id}
    for name in _NAMES[entity]:
        if name in _RELATED:
            out[name] = field_value(record, name)
        else:
            value = loaded.get(name, _MISSING)
            out[name] = json_value(getattr(record, name) if value is _MISSING else value)
    if entity == "deal":
        out["stage_semantics"] = record.stage.semantics if record.stage is not None else None
    if entity == "contact":
        out["full_name"] = record.full_name
    out["created_by_id"] = record.created_by_id
    out["created_at"] = json_value(record.created_at)
    out["updated_at"] = json_value(record.updated_at)
    return out


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: [before.get(k), v] for k, v in after.items()
            if k not in ("updated_at",) and before.get(k) != v}
