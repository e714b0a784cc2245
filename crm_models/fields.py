"""Field schemas of the CRM entities: one description serves validation, the REST API,
OpenAPI, list filters, the pages' forms and the process editor's condition builder."""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from strictnum import NumberError, parse_decimal, parse_int

from .db import MAX_ROW_ID
from .entities import EMAIL_TYPES, PHONE_TYPES, SOURCES, LeadStatus

# Control characters (NUL above all: PostgreSQL text cannot hold it) are never part of an address.
EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
PHONE_RE = re.compile(r"^\+?[0-9()\- .]{3,30}$")
PHONE_MIN_DIGITS = 3
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
MAX_AMOUNT = Decimal("999999999999999.99")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # string text money currency int bool date enum user ref refs phones emails stage
    label_en: str
    label_ru: str
    required: bool = False
    max_length: int = 255
    choices: tuple[str, ...] = ()
    ref: str = ""  # entity type for ref/refs
    readonly: bool = False
    minimum: int | None = None
    maximum: int | None = None
    #: Whether an empty value (None, "") is accepted; False where the column cannot be empty.
    blank: bool = True

    @property
    def json_type(self) -> str:
        return {"int": "integer", "bool": "boolean", "refs": "array", "phones": "array",
                "emails": "array", "ref": "integer", "user": "integer"}.get(self.kind, "string")


def F(name: str, kind: str, en: str, ru: str, **kw: Any) -> Field:
    return Field(name, kind, en, ru, **kw)


COMMON = (
    F("responsible_id", "user", "Responsible", "Ответственный", blank=False),
    F("opened", "bool", "Open to everyone", "Доступна для всех", blank=False),
    F("comments", "text", "Comments", "Комментарий", max_length=20000),
)
CONTACT_CHANNELS = (
    F("phones", "phones", "Phones", "Телефоны"),
    F("emails", "emails", "E-mails", "E-mail"),
)

SCHEMAS: dict[str, tuple[Field, ...]] = {
    "company": (
        F("title", "string", "Company name", "Название компании", required=True),
        F("industry", "string", "Industry", "Сфера деятельности", max_length=100),
        F("address", "string", "Address", "Адрес", max_length=500),
        F("inn", "inn", "INN (tax number)", "ИНН", max_length=12),
        *CONTACT_CHANNELS, *COMMON,
    ),
    "contact": (
        F("first_name", "string", "First name", "Имя", max_length=100),
        F("last_name", "string", "Last name", "Фамилия", max_length=100),
        F("position", "string", "Position", "Должность", max_length=200),
        F("company_id", "ref", "Company", "Компания", ref="company"),
        *CONTACT_CHANNELS, *COMMON,
    ),
    "lead": (
        F("title", "string", "Lead name", "Название лида", required=True),
        F("first_name", "string", "First name", "Имя", max_length=100),
        F("last_name", "string", "Last name", "Фамилия", max_length=100),
        F("company_title", "string", "Company name", "Название компании"),
        F("status", "enum", "Status", "Статус", choices=tuple(s.value for s in LeadStatus),
          blank=False),
        F("source", "enum", "Source", "Источник", choices=SOURCES),
        F("amount", "money", "Amount", "Сумма"),
        F("currency", "currency", "Currency", "Валюта", blank=False),
        *CONTACT_CHANNELS, *COMMON,
        F("company_id", "ref", "Company", "Компания", ref="company", readonly=True),
        F("contact_id", "ref", "Contact", "Контакт", ref="contact", readonly=True),
        F("deal_id", "ref", "Deal", "Сделка", ref="deal", readonly=True),
    ),
    "deal": (
        F("title", "string", "Deal name", "Название сделки", required=True),
        F("pipeline_id", "int", "Pipeline", "Воронка", minimum=0),
        F("stage", "stage", "Stage", "Стадия", max_length=50),
        F("amount", "money", "Amount", "Сумма"),
        F("currency", "currency", "Currency", "Валюта", blank=False),
        F("probability", "int", "Probability, %", "Вероятность, %", minimum=0, maximum=100),
        F("source", "enum", "Source", "Источник", choices=SOURCES),
        F("company_id", "ref", "Company", "Компания", ref="company"),
        F("contact_ids", "refs", "Contacts", "Контакты", ref="contact"),
        F("close_date", "date", "Close date", "Дата завершения"),
        *COMMON,
        F("lead_id", "ref", "Lead", "Лид", ref="lead", readonly=True),
    ),
}

READONLY_COMMON = ("id", "created_at", "updated_at", "created_by_id")


def field_map(entity: str) -> dict[str, Field]:
    return {f.name: f for f in SCHEMAS[entity]}


def _coerce(f: Field, value: Any) -> Any:
    """Return the clean value or raise ValueError with a message for the user."""
    if value is None or (isinstance(value, str) and value.strip() == "" and f.kind not in (
            "string", "text")):
        if f.required or not f.blank:
            raise ValueError("is required")
        return [] if f.kind in ("refs", "phones", "emails") else (
            "" if f.kind in ("enum", "string", "text", "inn") else None)
    k = f.kind
    if k in ("string", "text"):
        if not isinstance(value, str):
            raise ValueError("must be a string")
        value = value.strip()
        if f.required and not value:
            raise ValueError("is required")
        if len(value) > f.max_length:
            raise ValueError(f"must be at most {f.max_length} characters")
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value
    if k == "money":
        if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
            raise ValueError("must be a decimal number such as \"1500.00\"")
        if isinstance(value, str):
            value = value.replace(" ", "").replace(",", ".")
        try:
            d = parse_decimal(value, max_length=60)
        except NumberError:
            raise ValueError("must be a decimal number such as \"1500.00\"") from None
        if not d.is_finite() or d < 0 or d > MAX_AMOUNT:
            raise ValueError("must be a non-negative amount below 10^15")
        if d != d.quantize(Decimal("0.01")):
            raise ValueError("must have at most two decimal places")
        return d.quantize(Decimal("0.01"))
    if k == "currency":
        if not isinstance(value, str) or not CURRENCY_RE.match(value.strip().upper()):
            raise ValueError("must be a three-letter currency code such as RUB")
        return value.strip().upper()
    if k in ("int", "ref", "user"):
        if isinstance(value, bool):
            raise ValueError("must be a whole number")
        try:
            value = parse_int(value, signed=True)
        except NumberError:
            raise ValueError("must be a whole number") from None
        lo = 1 if k in ("ref", "user") else f.minimum
        if lo is not None and value < lo:
            raise ValueError(f"must be at least {lo}")
        if f.maximum is not None and value > f.maximum:
            raise ValueError(f"must be at most {f.maximum}")
        if value > MAX_ROW_ID:  # every int field is an INTEGER column
            raise ValueError("is too large")
        return value
    if k == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("y", "yes", "true", "1", "on"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("n", "no", "false", "0", "off"):
            return False
        raise ValueError("must be true or false")
    if k == "enum":
        if not isinstance(value, str) or value not in f.choices:
            raise ValueError("must be one of: " + ", ".join(f.choices))
        return value
    if k == "stage":
        if not isinstance(value, str) or len(value) > f.max_length or CONTROL_RE.search(value):
            raise ValueError("must be a stage code")
        return value.strip()
    if k == "date":
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if not isinstance(value, str) or len(value) > 40:
            raise ValueError("must be a date YYYY-MM-DD")
        # A whole ISO date, or an ISO date-time whose date part is taken; never a prefix of junk.
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
        try:
            return dt.datetime.fromisoformat(value.strip()).date()
        except ValueError:
            raise ValueError("must be a date YYYY-MM-DD") from None
    if k == "refs":
        if not isinstance(value, list) or len(value) > 500:
            raise ValueError("must be a list of ids")
        out: list[int] = []
        for v in value:
            out.append(_coerce(Field(f.name, "ref", "", ""), v))
        return list(dict.fromkeys(out))
    if k in ("phones", "emails"):
        return _channels(k, value)
    if k == "inn":
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ValueError("must be 10 or 12 digits")
        digits = str(value).strip().replace(" ", "")
        if not digits.isascii() or not digits.isdigit() or len(digits) not in (10, 12):
            raise ValueError("must be 10 or 12 digits")
        return digits
    raise ValueError(f"has an unsupported kind {k}")


def _channels(kind: str, value: Any) -> list[dict[str, str]]:
    """Multi-value phones/e-mails: a list of ``{"value", "value_type"}`` (plain strings accepted)."""
    if isinstance(value, str):
        value = [v for v in re.split(r"[;,\n]", value) if v.strip()]
    if not isinstance(value, list) or len(value) > 50:
        raise ValueError("must be a list of {value, value_type}")
    types = PHONE_TYPES if kind == "phones" else EMAIL_TYPES
    out = []
    for item in value:
        if isinstance(item, str):
            item = {"value": item}
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            raise ValueError("must be a list of {value, value_type}")
        v = item["value"].strip()
        vt = item.get("value_type") or "WORK"
        if not isinstance(vt, str) or vt.upper() not in types:
            raise ValueError("value_type must be one of: " + ", ".join(types))
        if kind == "phones" and (not PHONE_RE.match(v)
                                 or sum("0" <= ch <= "9" for ch in v) < PHONE_MIN_DIGITS):
            raise ValueError(f"'{v[:40]}' is not a phone number")
        if kind == "emails" and (not EMAIL_RE.match(v) or len(v) > 254):
            raise ValueError(f"'{v[:40]}' is not an e-mail address")
        out.append({"value": v, "value_type": vt.upper()})
    return out


def clean(entity: str, data: dict[str, Any], *, partial: bool,
          allow_readonly: bool = False) -> dict[str, Any]:
    """Validate and coerce ``data`` for ``entity``; raise ValidationFailed naming every bad field.

    ``partial`` (updates) checks only the given fields; creation also checks required ones.
    """
    return clean_fields(field_map(entity), data, entity, partial=partial,
                        allow_readonly=allow_readonly, readonly_names=READONLY_COMMON)


def clean_fields(fields: dict[str, Field], data: dict[str, Any], what: str, *, partial: bool,
                 allow_readonly: bool = False,
                 readonly_names: Collection[str] = ()) -> dict[str, Any]:
    """``clean`` over any field table (``what`` names the record in messages)."""
    from .errors import ValidationFailed

    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    for name, value in data.items():
        f = fields.get(name) if isinstance(name, str) else None
        if f is None or (f.readonly and not allow_readonly):
            if name in readonly_names or (f is not None and f.readonly):
                errors[name] = "is read-only"
            else:
                errors[str(name)[:60]] = "is not a field of " + what
            continue
        try:
            out[name] = _coerce(f, value)
        except ValueError as exc:
            errors[name] = str(exc)
    if not partial:
        for f in fields.values():
            if f.required and f.name not in data and f.name not in errors:
                errors[f.name] = "is required"
    if errors:
        raise ValidationFailed(errors)
    return out
