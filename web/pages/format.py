"""How CRM values look on the pages: labels, money, dates, stages and enum names per locale.

Everything here is a pure function of its arguments plus the request's locale and time zone
(Flask-Babel), so templates and views format values the same way.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask import url_for
from flask_babel import (
    format_currency,
    format_date,
    format_datetime,
    format_decimal,
    get_locale,
    lazy_pgettext,
)
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from crm_models.entities import ENTITY_MODELS, Stage
from crm_models.fields import Field, field_map
from crm_models.org import ACTIONS, ENTITIES, PermLevel
from crm_models.services.org import BUILTIN_ROLES
from crm_models.setup import stage_label

from ..auth import current_actor
from ..database import get_db
from . import lookups

STATUS_LABELS = {
    "NEW": _l("New"), "IN_PROCESS": _l("In progress"), "PROCESSED": _l("Processed"),
    "JUNK": _l("Junk"), "CONVERTED": _l("Converted"),
}
SOURCE_LABELS = {
    "CALL": _l("Call"), "EMAIL": _l("E-mail"), "WEB": _l("Website"),
    "ADVERTISING": _l("Advertising"), "PARTNER": _l("Partner"),
    "RECOMMENDATION": _l("Recommendation"), "TRADE_SHOW": _l("Trade show"),
    "WEBFORM": _l("Web form"), "OTHER": _l("Other"),
}
CHANNEL_TYPE_LABELS = {
    "WORK": _l("work"), "MOBILE": _l("mobile"), "HOME": _l("home"), "FAX": _l("fax"),
    "OTHER": _l("other"),
}
ACTIVITY_TYPE_LABELS = {
    "call": _l("Call"), "meeting": _l("Meeting"), "email": _l("E-mail"), "todo": _l("To-do"),
}
AUDIT_ACTION_LABELS = {
    "created": _l("created the record"), "updated": _l("changed"),
    "stage_changed": _l("moved to another stage"), "commented": _l("commented"),
    "activity_added": _l("planned an activity"), "activity_done": _l("completed an activity"),
    "converted": _l("converted the lead"), "deleted": _l("deleted the record"),
    "product_rows_changed": _l("changed the products"), "invoice_created": _l("made an invoice"),
    "responsible_confirmed": _l("confirmed the responsible"),
    "unlinked": _l("unlinked a deleted record"), "paid": _l("marked as paid"),
}
LEVEL_LABELS = {
    PermLevel.NONE: _l("None"), PermLevel.OWN: _l("Own"),
    PermLevel.DEPARTMENT: _l("Own + department"),
    PermLevel.SUBDEPARTMENTS: _l("Own + department + sub-departments"),
    PermLevel.OPEN: _l("All open"), PermLevel.ALL: _l("All"),
}
ENTITY_LABELS = {
    "lead": _l("Leads"), "deal": _l("Deals"), "contact": _l("Contacts"),
    "company": _l("Companies"), "product": _l("Products"), "invoice": _l("Invoices"),
}
# A context keeps the matrix's column names apart from the same English words on buttons.
ACTION_LABELS = {
    "read": lazy_pgettext("permission", "Read"), "add": lazy_pgettext("permission", "Add"),
    "update": lazy_pgettext("permission", "Update"),
    "delete": lazy_pgettext("permission", "Delete"),
    "export": lazy_pgettext("permission", "Export"),
    "import": lazy_pgettext("permission", "Import"),
}
ROLE_LABELS = {"admin": _l("Administrator"), "sales_head": _l("Sales head"),
               "manager": _l("Manager"), "observer": _l("Observer")}
FLAG_LABELS = {"manage_settings": _l("Manage CRM settings"),
               "design_processes": _l("Design processes")}
EXTRA_LABELS = {"id": _l("ID"), "created_at": _l("Created"), "updated_at": _l("Modified"),
                "created_by_id": _l("Created by"), "activity": _l("Activity"),
                "activity_done": _l("Activity done"), "comment": _l("Comment"),
                "sort": _l("Sort order"), "q": _l("Search")}
CURRENCIES = ("RUB", "USD", "EUR", "CNY", "KZT", "BYN")
DUPLICATE_KEY_LABELS = {"phone": _l("same phone"), "email": _l("same e-mail"),
                        "inn": _l("same INN"), "title": _l("same name")}

assert set(LEVEL_LABELS) == set(PermLevel)
assert set(ENTITY_LABELS) == set(ENTITIES) and set(ACTION_LABELS) == set(ACTIONS)


def role_name(role: Any) -> str:
    """A role's name; built-in roles still carrying their default name are translated."""
    if role.code in ROLE_LABELS and role.name == BUILTIN_ROLES.get(role.code):
        return str(ROLE_LABELS[role.code])
    return str(role.name)


def locale() -> str:
    return str(get_locale() or "ru")


def field_label(entity: str, name: str) -> str:
    """The field's label from ``crm_models.fields.SCHEMAS`` in the request's language."""
    f = field_map(entity).get(name)
    if f is None:
        return str(EXTRA_LABELS.get(name, name))
    return f.label_ru if locale() == "ru" else f.label_en


def money(amount: Decimal | str | None, currency: str | None = "RUB") -> str:
    """``2 500 000,00 ₽`` in Russian, ``RUB 2,500,000.00`` in English; empty for no amount."""
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(str(amount))
    except ArithmeticError:
        return str(amount)
    return format_currency(value, currency or "RUB")


def stage_name(stage: Stage | None) -> str:
    if stage is None:
        return ""
    return stage_label(stage.code, locale()) or stage.name


def enum_label(name: str, value: str | None) -> str:
    if not value:
        return ""
    table = STATUS_LABELS if name == "status" else SOURCE_LABELS
    return str(table.get(value, value))


def when(value: dt.datetime | None, fmt: str = "short") -> str:
    """A UTC time shown in the user's time zone."""
    return format_datetime(value, fmt) if value is not None else ""


def day(value: dt.date | str | None) -> str:
    if not value:
        return ""
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value[:10])
        except ValueError:
            return value
    return format_date(value, "medium")


def channels(items: list[dict[str, str]] | None, kind: str) -> Markup:
    """Phones or e-mails as links with their type."""
    scheme = "tel:" if kind == "phones" else "mailto:"
    parts = []
    for item in items or []:
        value = item.get("value", "")
        href = scheme + ("".join(c for c in value if "0" <= c <= "9" or c == "+")
                         if kind == "phones" else value)
        label = CHANNEL_TYPE_LABELS.get(item.get("value_type", ""), item.get("value_type", ""))
        parts.append(Markup('<a href="{}">{}</a> <small class="muted">{}</small>').format(
            href, value, label))
    return Markup("<br>").join(parts)


PLURAL = {"lead": "leads", "deal": "deals", "contact": "contacts", "company": "companies"}


def card_url(entity: str, record_id: int) -> str:
    return url_for("pages.record_card", plural=PLURAL[entity], record_id=record_id)


def record_title(record: Any) -> str:
    return getattr(record, "title", "") or f"#{record.id}"


def link(entity: str, record: Any | None) -> Markup:
    if record is None:
        return Markup("")
    return Markup('<a href="{}">{}</a>').format(card_url(entity, record.id),
                                                record_title(record))


def plain_value(entity: str, f: Field | None, value: Any, users: dict[int, Any]) -> str:
    """A stored JSON value (as in audit diffs) as text: names instead of ids where known."""
    if value is None or value == "" or value == []:
        return "—"
    if f is None:
        return str(value)
    if f.kind == "user":
        user = users.get(value) if isinstance(value, int) else None
        return user.full_name if user is not None else f"#{value}"
    if f.kind == "enum":
        return enum_label(f.name, value)
    if f.kind == "stage":
        return stage_label(str(value), locale()) or str(value)
    if f.kind == "bool":
        return str(_l("Yes") if value else _l("No"))
    if f.kind in ("phones", "emails") and isinstance(value, list):
        return ", ".join(str(v.get("value", v)) if isinstance(v, dict) else str(v)
                         for v in value)
    if f.kind == "refs" and isinstance(value, list):
        return ", ".join(_ref_title(f.ref, v) for v in value)
    if f.name == "pipeline_id":
        return next((p.name for p in lookups.pipelines() if str(p.id) == str(value)),
                    f"#{value}")
    if f.kind == "ref":
        return _ref_title(f.ref, value)
    if f.kind == "money":
        try:
            return format_decimal(Decimal(str(value)), format="#,##0.00")
        except ArithmeticError:
            return str(value)
    if f.kind == "date":
        return day(value)
    return str(value)


def _ref_title(entity: str, record_id: Any) -> str:
    """A linked record's name if the signed-in user may read it, else its id."""
    obj = get_db().get(ENTITY_MODELS[entity], record_id) if isinstance(record_id, int) else None
    actor = current_actor()
    if obj is None or actor is None or not actor.allows_record(
            entity, "read", obj.responsible_id, obj.opened):
        return f"#{record_id}"
    return record_title(obj)


def escape_lines(text: str | None) -> Markup:
    """Multi-line text with its line breaks kept."""
    return Markup("<br>").join(escape(line) for line in (text or "").splitlines())


def _readable_link(entity: str, obj: Any | None) -> Markup | str:
    """A link to a linked record if the signed-in user may read it, else its id only."""
    if obj is None:
        return ""
    actor = current_actor()
    if actor is not None and actor.allows_record(entity, "read", obj.responsible_id, obj.opened):
        return link(entity, obj)
    return f"#{obj.id}"


def display(record: Any, name: str) -> Markup | str:
    """One field of a record, formatted for a list cell or a card."""
    entity = record.entity_type
    if name in ("created_at", "updated_at"):
        return when(getattr(record, name))
    if entity == "contact" and name == "last_name":
        return link("contact", record)
    f = field_map(entity).get(name)
    if f is None:
        return str(getattr(record, name, ""))
    value = getattr(record, name, None) if f.kind != "stage" else record.stage
    if f.name == "title":
        return link(entity, record)
    if f.kind == "user":
        user = lookups.users().get(value) if value else None
        return user.full_name if user is not None else ""
    if f.kind == "money":
        return money(value, getattr(record, "currency", "RUB"))
    if f.kind == "stage":
        return Markup('<span class="stage-pill" style="--stage: {}">{}</span>').format(
            value.color if value is not None else "#999", stage_name(value))
    if f.kind == "enum":
        return enum_label(f.name, value)
    if f.kind == "bool":
        return str(_l("Yes") if value else _l("No"))
    if f.kind == "date":
        return day(value)
    if f.kind in ("phones", "emails"):
        return channels(value, f.kind)
    if f.kind == "text":
        return escape_lines(value)
    if f.name == "pipeline_id":
        return next((p.name for p in lookups.pipelines() if p.id == value), str(value))
    if f.kind == "ref":
        rel = {"company_id": "company", "contact_id": "contact"}.get(f.name)
        obj = getattr(record, rel, None) if rel and hasattr(record, rel) else None
        if obj is None and value:
            obj = get_db().get(ENTITY_MODELS[f.ref], value)
        return _readable_link(f.ref, obj)
    if f.kind == "refs":
        return Markup(", ").join(_readable_link("contact", c) for c in record.contacts)
    return "" if value is None else str(value)
