"""Reference and timeline methods: ``crm.status.list``, ``crm.category.list``,
``crm.timeline.comment.add``, ``crm.activity.add/list``."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import select

from crm_models.activity import Activity
from crm_models.entities import SOURCES, LeadStatus, Pipeline
from crm_models.errors import ValidationFailed
from crm_models.services import add_activity, add_comment, list_activities
from integrations.bitrix_fields import (
    ENTITY_BY_TYPE_ID,
    ENTITY_TYPE_IDS,
    SEMANTIC_CODES,
    _tz,
    format_datetime,
)
from strictnum import id_or_none, int_or_none

from .crm_methods import fields_param, start_param
from .envelope import PAGE, BitrixError, ListResult
from .registry import CallContext, method

SOURCE_NAMES = {
    "CALL": ("Call", "Звонок"), "EMAIL": ("E-mail", "Электронная почта"),
    "WEB": ("Website", "Веб-сайт"), "ADVERTISING": ("Advertising", "Реклама"),
    "PARTNER": ("Existing client", "Существующий клиент"),
    "RECOMMENDATION": ("By recommendation", "По рекомендации"),
    "TRADE_SHOW": ("Show/Exhibition", "Выставка"), "WEBFORM": ("CRM form", "CRM-форма"),
    "OTHER": ("Other", "Другое"),
}
STATUS_NAMES = {
    "NEW": ("Unassigned", "Не обработан"), "IN_PROCESS": ("In progress", "В работе"),
    "PROCESSED": ("Processed", "Обработан"), "JUNK": ("Junk lead", "Некачественный лид"),
    "CONVERTED": ("Good lead", "Качественный лид"),
}
EXTRA_SEMANTICS = {"process": "process", "won": "success", "lost": "failure"}
# Synthetic row ids for statuses that are not stored rows (stages use their own ids).
SOURCE_ID_BASE, STATUS_ID_BASE = 1_000_000, 2_000_000

ACTIVITY_TYPE_OUT = {"meeting": "1", "call": "2", "email": "4", "todo": "6"}
ACTIVITY_TYPE_IN = {"1": "meeting", "2": "call", "3": "todo", "4": "email", "6": "todo"}


def _pick(locale: str, names: tuple[str, str]) -> str:
    return names[1] if locale == "ru" else names[0]


def _statuses(ctx: CallContext) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for p in ctx.session.scalars(select(Pipeline).order_by(Pipeline.sort, Pipeline.id)):
        entity_id = "DEAL_STAGE" if p.id == 0 else f"DEAL_STAGE_{p.id}"
        for s in p.stages:
            rows.append({
                "ID": str(s.id), "ENTITY_ID": entity_id, "STATUS_ID": s.code, "NAME": s.name,
                "NAME_INIT": s.name, "SORT": str(s.sort), "SYSTEM": "N",
                "CATEGORY_ID": str(p.id), "COLOR": s.color,
                "SEMANTICS": {"won": "S", "lost": "F"}.get(s.semantics),
                "EXTRA": {"SEMANTICS": EXTRA_SEMANTICS.get(s.semantics, "process"),
                          "COLOR": s.color},
            })
    for i, code in enumerate(SOURCES):
        name = _pick(ctx.locale, SOURCE_NAMES.get(code, (code, code)))
        rows.append({"ID": str(SOURCE_ID_BASE + i), "ENTITY_ID": "SOURCE", "STATUS_ID": code,
                     "NAME": name, "NAME_INIT": name, "SORT": str((i + 1) * 10),
                     "SYSTEM": "Y", "CATEGORY_ID": None, "COLOR": None, "SEMANTICS": None,
                     "EXTRA": []})
    for i, status in enumerate(LeadStatus):
        name = _pick(ctx.locale, STATUS_NAMES.get(status.value, (status.value,) * 2))
        semantic = {"CONVERTED": "S", "JUNK": "F"}.get(status.value)
        rows.append({"ID": str(STATUS_ID_BASE + i), "ENTITY_ID": "STATUS",
                     "STATUS_ID": status.value, "NAME": name, "NAME_INIT": name,
                     "SORT": str((i + 1) * 10), "SYSTEM": "Y", "CATEGORY_ID": None,
                     "COLOR": None, "SEMANTICS": semantic,
                     "EXTRA": {"SEMANTICS": {"S": "success", "F": "failure"}.get(
                         semantic or "", "process")}})
    return rows


@method("crm.status.list", "crm", legacy=True)
def status_list(ctx: CallContext, params: dict[str, Any]) -> ListResult:
    """Deal stages (``DEAL_STAGE``, ``DEAL_STAGE_<category>``), ``SOURCE`` and lead
    ``STATUS``; ``filter`` matches fields exactly (``=`` prefix allowed)."""
    flt = params.get("filter") or {}
    if not isinstance(flt, dict):
        raise BitrixError(400, "", "Parameter 'filter' must be an object.")
    rows = _statuses(ctx)
    for key, value in flt.items():
        name = str(key).lstrip("=").upper()
        if name not in ("ID", "ENTITY_ID", "STATUS_ID", "CATEGORY_ID", "SEMANTICS"):
            raise BitrixError(400, "", f"Cannot filter statuses by '{str(key)[:40]}'.")
        wanted = {str(v) for v in value} if isinstance(value, list) else {str(value)}
        rows = [r for r in rows if str(r[name]) in wanted]
    return ListResult(rows, len(rows), None)


@method("crm.category.list", "crm")
def category_list(ctx: CallContext, params: dict[str, Any]) -> ListResult:
    """Deal pipelines for ``entityTypeId=2``; contacts and companies have one default
    category, as in Bitrix24."""
    raw = int_or_none(params.get("entitytypeid"), minimum=0, maximum=999)
    if raw == ENTITY_TYPE_IDS["deal"]:
        cats = [{"id": p.id, "name": p.name, "sort": p.sort, "entityTypeId": 2,
                 "isDefault": "Y" if p.id == 0 else "N"}
                for p in ctx.session.scalars(select(Pipeline).order_by(Pipeline.sort,
                                                                        Pipeline.id))]
    elif raw in (ENTITY_TYPE_IDS["contact"], ENTITY_TYPE_IDS["company"]):
        cats = [{"id": 0, "name": "Default", "sort": 0, "entityTypeId": raw,
                 "isDefault": "Y"}]
    else:
        raise BitrixError(400, "NOT_FOUND",
                          "entityTypeId must be 2 (deals), 3 (contacts) or 4 (companies)")
    return ListResult({"categories": cats}, len(cats), None)


def _owner(fields: dict[str, Any], type_key: str, id_key: str) -> tuple[str, int]:
    raw_type = fields.get(type_key)
    entity = None
    if isinstance(raw_type, str) and raw_type.strip().lower() in ENTITY_TYPE_IDS:
        entity = raw_type.strip().lower()
    elif int_or_none(raw_type, minimum=1, maximum=999) is not None:
        entity = ENTITY_BY_TYPE_ID.get(int(str(raw_type).strip()))
    if entity is None:
        raise ValidationFailed({type_key: "must be lead, deal, contact or company (1-4)"})
    raw_id = id_or_none(fields.get(id_key))
    if raw_id is None:
        raise ValidationFailed({id_key: "must be the id of the record"})
    return entity, raw_id


@method("crm.timeline.comment.add", "crm", legacy=True)
def timeline_comment_add(ctx: CallContext, params: dict[str, Any]) -> int:
    fields = {str(k).upper(): v for k, v in fields_param(params).items()}
    entity, entity_id = _owner(fields, "ENTITY_TYPE", "ENTITY_ID")
    try:
        comment = add_comment(ctx.session, ctx.actor, entity_type=entity, entity_id=entity_id,
                              text=fields.get("COMMENT"))  # type: ignore[arg-type]
    except ValidationFailed as exc:
        raise ValidationFailed({"COMMENT" if k == "text" else k: v
                                for k, v in exc.fields.items()}) from None
    return int(comment.id)


def user_datetime(value: Any, tz: str, name: str) -> str | None:
    """A Bitrix24 date-time (ISO, ``YYYY-MM-DD HH:MM:SS`` or ``DD.MM.YYYY HH:MM:SS``) as ISO
    with an offset; values without one are in the user's time zone."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise ValidationFailed({name: "must be a date-time"})
    text = value.strip()
    m = re.fullmatch(r"([0-9]{2})\.([0-9]{2})\.([0-9]{4})(.*)", text)
    if m:
        text = f"{m.group(3)}-{m.group(2)}-{m.group(1)}{m.group(4)}"
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed({name: "must be a date-time"}) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_tz(tz))
    return when.isoformat()


@method("crm.activity.add", "crm", legacy=True)
def activity_add(ctx: CallContext, params: dict[str, Any]) -> int:
    """``fields``: OWNER_TYPE_ID, OWNER_ID, TYPE_ID (1 meeting, 2 call, 3/6 to-do, 4 e-mail),
    SUBJECT, DESCRIPTION, DEADLINE (or END_TIME), RESPONSIBLE_ID."""
    fields = {str(k).upper(): v for k, v in fields_param(params).items()}
    entity, entity_id = _owner(fields, "OWNER_TYPE_ID", "OWNER_ID")
    type_id = str(fields.get("TYPE_ID") or "6").strip()
    if type_id not in ACTIVITY_TYPE_IN:
        raise ValidationFailed({"TYPE_ID": "must be 1 (meeting), 2 (call), 3 or 6 (to-do) "
                                           "or 4 (e-mail)"})
    due = user_datetime(fields.get("DEADLINE") or fields.get("END_TIME"), ctx.tz, "DEADLINE")
    responsible = fields.get("RESPONSIBLE_ID")
    if responsible is not None:
        responsible = id_or_none(responsible)
        if responsible is None:
            raise ValidationFailed({"RESPONSIBLE_ID": "must be a user id"})
    names = {"subject": "SUBJECT", "description": "DESCRIPTION", "due_at": "DEADLINE",
             "responsible_id": "RESPONSIBLE_ID", "type": "TYPE_ID"}
    try:
        act = add_activity(ctx.session, ctx.actor, entity_type=entity, entity_id=entity_id,
                           type=ACTIVITY_TYPE_IN[type_id], subject=fields.get("SUBJECT") or "",
                           description=fields.get("DESCRIPTION") or "", due_at=due,
                           responsible_id=responsible)
    except ValidationFailed as exc:
        raise ValidationFailed({names.get(k, k): v for k, v in exc.fields.items()}) from None
    return int(act.id)


def activity_out(a: Activity, tz: str) -> dict[str, Any]:
    return {
        "ID": str(a.id), "OWNER_ID": str(a.entity_id),
        "OWNER_TYPE_ID": str(ENTITY_TYPE_IDS.get(a.entity_type, 0)),
        "TYPE_ID": ACTIVITY_TYPE_OUT.get(a.type, "6"), "SUBJECT": a.subject,
        "DESCRIPTION": a.description, "COMPLETED": "Y" if a.done else "N",
        "RESPONSIBLE_ID": str(a.responsible_id), "AUTHOR_ID": str(a.created_by_id or ""),
        "DEADLINE": format_datetime(a.due_at, tz), "END_TIME": format_datetime(a.due_at, tz),
        "CREATED": format_datetime(a.created_at, tz),
    }


@method("crm.activity.list", "crm", legacy=True)
def activity_list(ctx: CallContext, params: dict[str, Any]) -> ListResult:
    """Activities of one record: ``filter`` needs OWNER_TYPE_ID and OWNER_ID, and may add
    TYPE_ID, COMPLETED and RESPONSIBLE_ID."""
    flt = params.get("filter") or {}
    if not isinstance(flt, dict):
        raise BitrixError(400, "", "Parameter 'filter' must be an object.")
    flt = {str(k).lstrip("=").upper(): v for k, v in flt.items()}
    if "OWNER_TYPE_ID" not in flt or "OWNER_ID" not in flt:
        raise BitrixError(400, "", "filter[OWNER_TYPE_ID] and filter[OWNER_ID] are required: "
                                   "activities are listed per record.")
    entity, entity_id = _owner(flt, "OWNER_TYPE_ID", "OWNER_ID")
    rows = [activity_out(a, ctx.tz)
            for a in list_activities(ctx.session, ctx.actor, entity, entity_id)]
    for key in ("TYPE_ID", "COMPLETED", "RESPONSIBLE_ID"):
        if key in flt:
            rows = [r for r in rows if str(r[key]) == str(flt[key])]
    start = start_param(params)
    total = None if start == -1 else len(rows)
    offset = max(start, 0)
    page = rows[offset:offset + PAGE]
    nxt = offset + len(page) if total is not None and offset + len(page) < total else None
    return ListResult(page, total, nxt)


assert set(SEMANTIC_CODES) == set(EXTRA_SEMANTICS)
