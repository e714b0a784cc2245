"""Bitrix24's field names for leads, deals, contacts and companies, mapped onto ours.

Output follows Bitrix24's legacy ``crm.*`` conventions: ids and numbers as strings, amounts as
``"15000.00"``, booleans as ``"Y"``/``"N"``, date-times as ISO 8601 with the user's offset,
multi-fields (``PHONE``, ``EMAIL``) as ``[{ID, VALUE, VALUE_TYPE, TYPE_ID}]``. Input is turned
into the keyword arguments of the CRM service functions, which validate it; their field names
are translated back to Bitrix24's in error messages (``bitrix_name``).

Multi-field ``ID``s are positions (1, 2 …) within the record: an update item with an ``ID``
replaces that value (or deletes it when ``VALUE`` is empty), one without an ``ID`` is added,
as Bitrix24 does.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crm_models.errors import ValidationFailed
from crm_models.fields import field_map
from strictnum import int_or_none

ENTITY_TYPE_IDS = {"lead": 1, "deal": 2, "contact": 3, "company": 4}
ENTITY_BY_TYPE_ID = {v: k for k, v in ENTITY_TYPE_IDS.items()}
SEMANTIC_CODES = {"process": "P", "won": "S", "lost": "F"}


@dataclass(frozen=True)
class BField:
    """One Bitrix24 field: its name, our field (None when computed), and how to render it.

    ``kind`` picks the conversion: id, int, str, money, yn, date, datetime, multi, stage,
    contact (first of a deal's contacts), contacts (all of them), semantic, has.
    """

    code: str
    ours: str | None
    type: str
    kind: str
    title: str = ""
    readonly: bool = False
    multiple: bool = False
    status_type: str | None = None
    attr: str | None = None  # model attribute for computed fields


def _common_tail() -> tuple[BField, ...]:
    return (
        BField("ASSIGNED_BY_ID", "responsible_id", "user", "int"),
        BField("OPENED", "opened", "char", "yn"),
        BField("COMMENTS", "comments", "string", "str"),
        BField("CREATED_BY_ID", None, "user", "int", "Created by", readonly=True,
               attr="created_by_id"),
        BField("DATE_CREATE", None, "datetime", "datetime", "Created on", readonly=True,
               attr="created_at"),
        BField("DATE_MODIFY", None, "datetime", "datetime", "Modified on", readonly=True,
               attr="updated_at"),
    )


def _channels() -> tuple[BField, ...]:
    return (
        BField("PHONE", "phones", "crm_multifield", "multi", multiple=True),
        BField("EMAIL", "emails", "crm_multifield", "multi", multiple=True),
        BField("HAS_PHONE", None, "char", "has", "Has phone", readonly=True, attr="phones"),
        BField("HAS_EMAIL", None, "char", "has", "Has e-mail", readonly=True, attr="emails"),
    )


ID = BField("ID", None, "integer", "int", "ID", readonly=True, attr="id")

FIELDS: dict[str, tuple[BField, ...]] = {
    "lead": (
        ID,
        BField("TITLE", "title", "string", "str"),
        BField("NAME", "first_name", "string", "str"),
        BField("LAST_NAME", "last_name", "string", "str"),
        BField("COMPANY_TITLE", "company_title", "string", "str"),
        BField("STATUS_ID", "status", "crm_status", "str", status_type="STATUS"),
        BField("STATUS_SEMANTIC_ID", None, "string", "semantic", "Status group", readonly=True,
               attr="status"),
        BField("SOURCE_ID", "source", "crm_status", "str", status_type="SOURCE"),
        BField("OPPORTUNITY", "amount", "double", "money"),
        BField("CURRENCY_ID", "currency", "crm_currency", "str"),
        BField("COMPANY_ID", "company_id", "crm_company", "int", readonly=True),
        BField("CONTACT_ID", "contact_id", "crm_contact", "int", readonly=True),
        *_channels(), *_common_tail(),
    ),
    "deal": (
        ID,
        BField("TITLE", "title", "string", "str"),
        BField("CATEGORY_ID", "pipeline_id", "crm_category", "int"),
        BField("STAGE_ID", "stage", "crm_status", "stage", status_type="DEAL_STAGE"),
        BField("STAGE_SEMANTIC_ID", None, "string", "semantic", "Stage group", readonly=True,
               attr="stage"),
        BField("CLOSED", None, "char", "closed", "Closed", readonly=True, attr="stage"),
        BField("OPPORTUNITY", "amount", "double", "money"),
        BField("CURRENCY_ID", "currency", "crm_currency", "str"),
        BField("PROBABILITY", "probability", "integer", "int"),
        BField("SOURCE_ID", "source", "crm_status", "str", status_type="SOURCE"),
        BField("COMPANY_ID", "company_id", "crm_company", "int"),
        BField("CONTACT_ID", "contact_ids", "crm_contact", "contact", "Contact"),
        BField("CONTACT_IDS", "contact_ids", "crm_contact", "contacts", multiple=True),
        BField("CLOSEDATE", "close_date", "date", "date"),
        BField("LEAD_ID", "lead_id", "crm_lead", "int", readonly=True),
        *_common_tail(),
    ),
    "contact": (
        ID,
        BField("NAME", "first_name", "string", "str"),
        BField("LAST_NAME", "last_name", "string", "str"),
        BField("POST", "position", "string", "str"),
        BField("COMPANY_ID", "company_id", "crm_company", "int"),
        BField("LEAD_ID", None, "crm_lead", "int", "Lead", readonly=True, attr="lead_id"),
        *_channels(), *_common_tail(),
    ),
    "company": (
        ID,
        BField("TITLE", "title", "string", "str"),
        BField("INDUSTRY", "industry", "string", "str"),
        BField("ADDRESS", "address", "string", "str"),
        BField("LEAD_ID", None, "crm_lead", "int", "Lead", readonly=True, attr="lead_id"),
        *_channels(), *_common_tail(),
    ),
}


def bfield_map(entity: str) -> dict[str, BField]:
    return {f.code: f for f in FIELDS[entity]}


OP_PREFIXES = {"eq": "", "ne": "!", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "in": "@",
               "nin": "!@", "contains": "%"}


def bitrix_name(entity: str, ours: str) -> str:
    """The Bitrix24 name of our field or filter key ``ours`` (``amount__gt`` → ``>OPPORTUNITY``),
    for error messages; ``ours`` itself when there is none."""
    name, _, op = ours.partition("__")
    for f in FIELDS[entity]:
        if (f.ours or f.attr) == name and f.kind != "contact":
            return OP_PREFIXES.get(op, "") + f.code if op else f.code
    return ours


def translate_errors(entity: str, exc: ValidationFailed) -> ValidationFailed:
    """The same error with Bitrix24's field names."""
    fields = {bitrix_name(entity, k): v for k, v in exc.fields.items()}
    return ValidationFailed(fields)


# --- output ----------------------------------------------------------------------------------

def _tz(name: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def format_datetime(value: dt.datetime | None, tz: str) -> str | None:
    if value is None:
        return None
    return value.astimezone(_tz(tz)).isoformat(timespec="seconds")


def format_date(value: dt.date | None, tz: str) -> str | None:
    """A date the way Bitrix24 renders ``CLOSEDATE``: midnight with the user's offset."""
    if value is None:
        return None
    return dt.datetime.combine(value, dt.time(), _tz(tz)).isoformat(timespec="seconds")


def _str_id(value: Any) -> str | None:
    return None if value is None else str(value)


def multi_out(items: list[dict[str, str]] | None, type_id: str) -> list[dict[str, str]]:
    return [{"ID": str(i + 1), "VALUE_TYPE": item.get("value_type", "WORK"),
             "VALUE": item.get("value", ""), "TYPE_ID": type_id}
            for i, item in enumerate(items or [])]


def _value(f: BField, record: Any, tz: str) -> Any:
    k = f.kind
    raw = getattr(record, f.attr or f.ours or "", None) if k not in ("stage", "contact",
                                                                      "contacts") else None
    if k == "int":
        return _str_id(raw)
    if k == "str":
        return raw if raw is not None else ""
    if k == "money":
        return str(raw if raw is not None else Decimal("0.00"))
    if k == "yn":
        return "Y" if raw else "N"
    if k == "has":
        return "Y" if raw else "N"
    if k == "date":
        return format_date(raw, tz)
    if k == "datetime":
        return format_datetime(raw, tz)
    if k == "multi":
        return multi_out(raw, f.code)
    if k == "stage":
        return record.stage.code if record.stage is not None else None
    if k == "semantic":
        if f.attr == "stage":
            return SEMANTIC_CODES.get(record.stage.semantics) if record.stage else None
        return {"CONVERTED": "S", "JUNK": "F"}.get(raw or "", "P")
    if k == "closed":
        return "Y" if record.stage is not None and record.stage.semantics != "process" else "N"
    if k == "contact":
        return str(record.contacts[0].id) if record.contacts else None
    if k == "contacts":
        return [str(c.id) for c in record.contacts]
    raise ValueError(f"unknown kind {k}")


def to_bitrix(entity: str, record: Any, *, tz: str, select: Iterable[str] | None = None
              ) -> dict[str, Any]:
    """The record with Bitrix24's field names; ``select`` (Bitrix names) limits the fields,
    ``ID`` always included. Without ``select`` every field is given."""
    wanted = None if select is None else {"ID", *select}
    return {f.code: _value(f, record, tz) for f in FIELDS[entity]
            if wanted is None or f.code in wanted}


# --- input -----------------------------------------------------------------------------------

def _merge_multi(code: str, existing: list[dict[str, str]], items: Any) -> list[dict[str, Any]]:
    """Apply Bitrix24's multi-field update rules to ``existing`` (see the module docstring)."""
    if isinstance(items, dict):
        items = list(items.values())
    if not isinstance(items, list):
        raise ValidationFailed({code: "must be a list of {VALUE, VALUE_TYPE}"})
    current: list[dict[str, Any] | None] = [dict(x) for x in existing]
    added: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            item = {"VALUE": item}
        if not isinstance(item, dict):
            raise ValidationFailed({code: "must be a list of {VALUE, VALUE_TYPE}"})
        item = {str(k).upper(): v for k, v in item.items()}
        value = item.get("VALUE")
        value_type = item.get("VALUE_TYPE") or "WORK"
        raw_id = item.get("ID")
        if raw_id not in (None, ""):
            pos = (int_or_none(raw_id, minimum=1, maximum=len(current)) or 0) - 1
            if not 0 <= pos < len(current) or current[pos] is None:
                raise ValidationFailed({code: f"no value with ID {str(raw_id)[:20]}"})
            if value in (None, ""):
                current[pos] = None  # Bitrix24 deletes a value sent with an empty VALUE
            else:
                current[pos] = {"value": value, "value_type": value_type}
        elif value not in (None, ""):
            added.append({"value": value, "value_type": value_type})
    return [x for x in current if x is not None] + added


def from_bitrix(entity: str, fields: Any, *, record: Any | None = None,
                session: Any | None = None) -> dict[str, Any]:
    """Keyword arguments for the entity's create/update service from Bitrix24 ``fields``.

    Unknown and read-only fields are ignored, as Bitrix24 does (integrations send many fields
    we do not have); type errors surface from the service's validation. ``record`` is the
    current record on updates (needed for multi-fields). A deal's ``STAGE_ID`` without
    ``CATEGORY_ID`` selects the stage's own pipeline.
    """
    if not isinstance(fields, dict):
        raise ValidationFailed({"fields": "must be an object of field values"})
    by_code = bfield_map(entity)
    out: dict[str, Any] = {}
    contact_ids: Any = None
    for raw_key, value in fields.items():
        code = str(raw_key).upper()
        f = by_code.get(code)
        if f is None or f.readonly or f.ours is None:
            continue
        if f.kind == "multi":
            existing = getattr(record, f.ours) if record is not None else []
            out[f.ours] = _merge_multi(code, existing or [], value)
        elif f.kind == "contact":
            if contact_ids is None:
                contact_ids = [] if value in (None, "", 0, "0") else [value]
        elif f.kind == "contacts":
            if isinstance(value, dict):
                value = list(value.values())
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                value = [value] if value not in ("", 0, "0") else []
            contact_ids = value
        elif f.kind == "yn" and isinstance(value, str) and value.strip().upper() in ("Y", "N"):
            out[f.ours] = value.strip().upper() == "Y"
        elif f.kind == "int" and value in (0, "0") and field_map(entity)[f.ours].kind in (
                "ref", "user"):
            out[f.ours] = None  # Bitrix24 sends 0 for "no company"
        else:
            out[f.ours] = value
    if contact_ids is not None:
        out["contact_ids"] = contact_ids
    if entity == "deal" and out.get("stage") and "pipeline_id" not in out \
            and session is not None and isinstance(out["stage"], str):
        from sqlalchemy import select

        from crm_models.entities import Stage

        pipeline_id = session.scalar(select(Stage.pipeline_id).where(Stage.code == out["stage"]))
        if pipeline_id is not None:
            out["pipeline_id"] = pipeline_id
    return out


# --- crm.*.fields ----------------------------------------------------------------------------

def descriptors(entity: str, locale: str = "en") -> dict[str, dict[str, Any]]:
    """``crm.<entity>.fields``: one descriptor per field, Bitrix24's shape."""
    ours = field_map(entity)
    out: dict[str, dict[str, Any]] = {}
    for f in FIELDS[entity]:
        title = f.title
        required = False
        readonly = f.readonly
        if f.ours is not None and f.ours in ours:
            of = ours[f.ours]
            title = of.label_ru if locale == "ru" else of.label_en
            required = of.required
            readonly = readonly or of.readonly
            if f.kind == "contact":
                title = "Контакт" if locale == "ru" else "Contact"
        d: dict[str, Any] = {
            "type": f.type, "isRequired": required, "isReadOnly": readonly,
            "isImmutable": False, "isMultiple": f.multiple, "isDynamic": False, "title": title,
        }
        if f.status_type:
            d["statusType"] = f.status_type
        out[f.code] = d
    return out
