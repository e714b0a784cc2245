"""Bitrix24 list parameters — ``filter`` with operator prefixes, ``order``, ``select`` — turned
into the arguments of ``crm_models.services.records.list_records``.

Supported filter prefixes: ``=`` (default), ``!``/``!=``, ``>``, ``>=``, ``<``, ``<=``,
``@``/``!@`` (IN / NOT IN, also an array value without a prefix), ``%`` (substring). A filter on
``PHONE``/``EMAIL`` becomes the record search (substring of the number or address), which is
what telephony integrations use it for. Anything else is refused with a message naming the key.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from crm_models.errors import ValidationFailed
from crm_models.fields import field_map
from strictnum import MAX_INT_DIGITS, is_digits

from .bitrix_fields import FIELDS, _tz, bfield_map

# Longest prefixes first, so ">=" is not read as ">".
PREFIXES = (("!@", "nin"), ("!=", "ne"), (">=", "gte"), ("<=", "lte"), ("=", "eq"),
            ("!", "ne"), (">", "gt"), ("<", "lt"), ("@", "in"), ("%", "contains"))
UNSUPPORTED = ("=%", "%=", "!%", "!=%", "!%=")
#: Bitrix24 codes of fields kept outside the entity schema, with our names for them.
EXTRA_COLUMNS = {"ID": "id", "DATE_CREATE": "created_at", "DATE_MODIFY": "updated_at"}
NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass
class ListQuery:
    filters: dict[str, Any] = field(default_factory=dict)
    search: str | None = None
    sort: str | None = None
    select: set[str] | None = None


def split_key(key: str) -> tuple[str, str]:
    """``">=OPPORTUNITY"`` → ``("gte", "OPPORTUNITY")``."""
    for bad in UNSUPPORTED:
        if key.startswith(bad):
            raise ValidationFailed({key[:60]: f"the filter operation '{bad}' is not supported"})
    for prefix, op in PREFIXES:
        if key.startswith(prefix):
            return op, key[len(prefix):].upper()
    return "eq", key.upper()


def _our_column(entity: str, code: str, key: str) -> str:
    if code in EXTRA_COLUMNS:
        return EXTRA_COLUMNS[code]
    f = bfield_map(entity).get(code)
    if f is None or f.ours is None:
        raise ValidationFailed({key[:60]: f"cannot filter {entity} by {code[:40]}"})
    name = f.ours
    if name not in field_map(entity):
        raise ValidationFailed({key[:60]: f"cannot filter {entity} by {code}"})
    return name


def _datetime_value(value: Any, tz: str, key: str) -> str:
    """Bitrix24 date filters come as ``2024-01-31``, ISO date-times or ``31.01.2024``;
    values without an offset are in the user's time zone."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValidationFailed({key[:60]: "must be a date or an ISO 8601 date-time"})
    text = value.strip()
    m = re.fullmatch(r"([0-9]{2})\.([0-9]{2})\.([0-9]{4})(.*)", text)
    if m:
        text = f"{m.group(3)}-{m.group(2)}-{m.group(1)}{m.group(4)}".replace(" ", "T", 1)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed({key[:60]: "must be a date or an ISO 8601 date-time"}) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_tz(tz))
    return when.isoformat()


def _plain(value: Any) -> Any:
    """Bitrix24 booleans and PHP's "arrays" as our values."""
    if isinstance(value, dict) and value and all(
            is_digits(str(k)) and len(str(k)) <= MAX_INT_DIGITS for k in value):
        return [value[k] for k in sorted(value, key=lambda k: int(k))]
    return value


def convert_filter(entity: str, raw: Any, *, tz: str) -> tuple[dict[str, Any], str | None]:
    """Bitrix24 ``filter`` → (``list_records`` filters, search text)."""
    if raw in (None, "", []):
        return {}, None
    if not isinstance(raw, dict):
        raise ValidationFailed({"filter": "must be an object {FIELD: value}"})
    out: dict[str, Any] = {}
    search: str | None = None
    for key, value in raw.items():
        key = str(key)
        op, code = split_key(key)
        value = _plain(value)
        if code in ("PHONE", "EMAIL"):
            if op not in ("eq", "contains") or not isinstance(value, str) or not value.strip():
                raise ValidationFailed({key[:60]: f"{code} is filtered by one value only"})
            if search is not None:
                raise ValidationFailed({key[:60]: "only one PHONE or EMAIL filter at a time"})
            text = value.strip()
            digits = "".join(ch for ch in text if "0" <= ch <= "9")
            search = digits if code == "PHONE" and digits else text
            continue
        name = _our_column(entity, code, key)
        if isinstance(value, list):
            if op == "eq":
                op = "in"
            elif op == "ne":
                op = "nin"
            elif op not in ("in", "nin"):
                raise ValidationFailed({key[:60]: "an array value needs '@' or '!@'"})
        elif op in ("in", "nin"):
            value = [value]
        if name in ("created_at", "updated_at"):
            value = ([_datetime_value(v, tz, key) for v in value] if isinstance(value, list)
                     else _datetime_value(value, tz, key))
        elif value in (0, "0") and field_map(entity).get(name) is not None and \
                field_map(entity)[name].kind in ("ref",) and op in ("eq", "ne"):
            value = None  # Bitrix24's "no company" is 0
        if name == "contact_ids" and op == "eq":
            op, value = "in", [value]
        our_key = name if op == "eq" else f"{name}__{op}"
        if our_key in out:
            raise ValidationFailed({key[:60]: "repeats another condition on the same field"})
        out[our_key] = value
    return out, search


def convert_order(entity: str, raw: Any) -> str | None:
    """Bitrix24 ``order`` → our sort key. The first field orders; ties go by id in the same
    direction (``list_records`` sorts by one field)."""
    if raw in (None, "", []):
        return None
    if not isinstance(raw, dict):
        raise ValidationFailed({"order": "must be an object {FIELD: 'ASC'|'DESC'}"})
    for key, direction in raw.items():
        code = str(key).upper()
        if not isinstance(direction, str) or direction.strip().upper() not in ("ASC", "DESC"):
            raise ValidationFailed({f"order[{code[:40]}]": "must be ASC or DESC"})
        name = EXTRA_COLUMNS.get(code)
        if name is None:
            f = bfield_map(entity).get(code)
            if f is None or f.ours is None or f.multiple or f.kind == "contact":
                raise ValidationFailed({f"order[{code[:40]}]": f"cannot sort {entity} by it"})
            name = f.ours
        return ("-" if direction.strip().upper() == "DESC" else "") + name
    return None


def convert_select(entity: str, raw: Any) -> set[str] | None:
    """Bitrix24 ``select`` → the Bitrix24 field codes to return. ``*`` (and no select) is every
    field but the multi-fields; ``UF_*`` and unknown names are ignored, as Bitrix24 does."""
    if isinstance(raw, dict):
        raw = list(raw.values())
    if isinstance(raw, str):
        raw = [raw]
    if raw is None or not isinstance(raw, list):
        if raw is not None:
            raise ValidationFailed({"select": "must be a list of field names"})
        raw = []
    names = {str(x).strip().upper() for x in raw if isinstance(x, (str, int)) and str(x).strip()}
    known = {f.code for f in FIELDS[entity]}
    plain = {f.code for f in FIELDS[entity] if not f.multiple}
    chosen = {n for n in names if n in known}
    if not names - {"UF_*"} or "*" in names:
        chosen |= plain
    return chosen


def build_list_query(entity: str, params: dict[str, Any], *, tz: str) -> ListQuery:
    filters, search = convert_filter(entity, params.get("filter"), tz=tz)
    return ListQuery(filters=filters, search=search,
                     sort=convert_order(entity, params.get("order")),
                     select=convert_select(entity, params.get("select")))
