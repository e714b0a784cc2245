"""Which column goes into which field: the fields an import may fill, a guess from the column
names, and turning one row's cells into the service call's fields."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_models.entities import Stage
from crm_models.fields import SCHEMAS, Field
from crm_models.org import User
from crm_models.services.catalog import PRODUCT_FIELDS

#: Cells a ``bool`` field reads as yes / no, besides the usual true/false/1/0.
YES = {"да", "д", "истина", "+"}
NO = {"нет", "н", "ложь", "-"}
RU_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")


def targets(entity: str) -> list[Field]:
    """The fields a column may be mapped to (read-only ones and link lists are not)."""
    fields = PRODUCT_FIELDS if entity == "product" else SCHEMAS[entity]
    return [f for f in fields if not f.readonly and f.kind != "refs"]


def required_fields(entity: str) -> list[Field]:
    return [f for f in targets(entity) if f.required]


def guess(entity: str, headers: list[str]) -> dict[str, str]:
    """Column index (str) → field, for headers naming a field (its name or label)."""
    names: dict[str, str] = {}
    for f in targets(entity):
        for label in (f.name, f.label_en, f.label_ru):
            names.setdefault(label.casefold(), f.name)
    names.update({"телефон": "phones", "phone": "phones", "e-mail": "emails",
                  "email": "emails", "почта": "emails", "responsible": "responsible_id"})
    out: dict[str, str] = {}
    used: set[str] = set()
    for i, header in enumerate(headers):
        name = names.get(header.strip().casefold())
        if name and name not in used:
            out[str(i)] = name
            used.add(name)
    return out


def check_mapping(entity: str, mapping: dict[str, str], headers: list[str]) -> dict[str, str]:
    """Errors of a mapping (field → message): unknown fields, a field twice, a required field
    no column fills."""
    allowed = {f.name for f in targets(entity)}
    errors: dict[str, str] = {}
    seen: dict[str, str] = {}
    for col, name in mapping.items():
        if not name:
            continue
        if name not in allowed:
            errors[name[:60]] = "is not a field that can be imported"
        elif name in seen:
            errors[name] = "is mapped from two columns"
        elif not col.isdigit() or int(col) >= len(headers):
            errors[name] = "is mapped from a column the file does not have"
        seen[name] = col
    for f in required_fields(entity):
        if f.name not in seen:
            errors[f.name] = "is required: map a column to it"
    return errors


@dataclass
class Lookups:
    """Values resolved once per job: users by e-mail, stages by name."""

    users: dict[str, int]
    stages: dict[str, str]

    @classmethod
    def load(cls, session: Session) -> Lookups:
        users = {e.casefold(): i for i, e in session.execute(select(User.id, User.email))}
        stages: dict[str, str] = {}
        for code, name in session.execute(select(Stage.code, Stage.name)):
            stages[name.casefold()] = code
            stages[code.casefold()] = code
        return cls(users, stages)


def _value(f: Field, raw: str, lookups: Lookups) -> Any:
    if f.kind == "bool":
        low = raw.strip().casefold()
        return True if low in YES else False if low in NO else raw
    if f.kind == "date":
        m = RU_DATE.match(raw.strip())
        return f"{m.group(3)}-{int(m.group(2)):02d}-{int(m.group(1)):02d}" if m else raw
    if f.kind == "user" and "@" in raw:
        return lookups.users.get(raw.strip().casefold(), raw)
    if f.kind == "stage":
        return lookups.stages.get(raw.strip().casefold(), raw)
    if f.kind == "enum":
        for choice in f.choices:
            if choice.casefold() == raw.strip().casefold():
                return choice
    return raw


def row_data(entity: str, mapping: dict[str, str], cells: list[str],
             lookups: Lookups) -> dict[str, Any]:
    """The fields of one row: empty cells are left out (the field keeps its default)."""
    fields = {f.name: f for f in targets(entity)}
    data: dict[str, Any] = {}
    for col, name in mapping.items():
        if not name:
            continue
        i = int(col)
        raw = cells[i] if i < len(cells) else ""
        if raw == "":
            continue
        data[name] = _value(fields[name], raw, lookups)
    return data


def column_of(mapping: dict[str, str], headers: list[str], field: str) -> str:
    """The header of the column mapped to ``field`` (for the error report)."""
    for col, name in mapping.items():
        if name == field and col.isdigit() and int(col) < len(headers):
            return headers[int(col)] or f"#{int(col) + 1}"
    return field

