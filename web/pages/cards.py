"""Record cards: every field, linked records, comments, activities and the history.

Comments and activities are added from forms on the card; a bad one shows the card again
with the error next to the field and the typed text kept.
"""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request
from flask_babel import gettext as _

from crm_models.entities import ENTITY_MODELS
from crm_models.errors import ValidationFailed
from crm_models.permissions import Actor
from crm_models.services import add_activity, add_comment, complete_activity, get_record
from crm_models.services.records import list_records
from strictnum import id_or_none

from ..auth import require_actor
from ..database import get_db
from . import bp, lookups, timeline
from .entities import BY_ENTITY, PLURALS, EntityPage, page_for
from .format import ACTIVITY_TYPE_LABELS, card_url
from .messages import translate_fields


def related(actor: Actor, entity: str, record: Any) -> dict[str, Any]:
    """The records linked to this one that the actor may read, by section name."""
    db = get_db()

    def readable(kind: str, obj: Any | None) -> Any | None:
        if obj is None or not actor.allows_record(kind, "read", obj.responsible_id, obj.opened):
            return None
        return obj

    def by_id(kind: str, record_id: int | None) -> Any | None:
        return readable(kind, db.get(ENTITY_MODELS[kind], record_id) if record_id else None)

    def listed(kind: str, key: str, value: Any) -> list[Any]:
        if actor.level(kind, "read") == 0:
            return []
        return list_records(db, actor, kind, filters={key: value}, per_page=50,
                            with_total=False).items

    if entity == "lead":
        return {"company": readable("company", record.company),
                "contact": readable("contact", record.contact),
                "deal": by_id("deal", record.deal_id)}
    if entity == "deal":
        return {"company": readable("company", record.company),
                "contacts": [c for c in record.contacts if readable("contact", c)],
                "lead": by_id("lead", record.lead_id)}
    if entity == "contact":
        return {"company": readable("company", record.company),
                "deals": listed("deal", "contact_ids__in", [record.id]),
                "leads": listed("lead", "contact_id", record.id)}
    return {"contacts": listed("contact", "company_id", record.id),
            "deals": listed("deal", "company_id", record.id),
            "leads": listed("lead", "company_id", record.id)}


def render_card(cfg: EntityPage, actor: Actor, record: Any, *, status: int = 200,
                comment_errors: dict[str, str] | None = None,
                activity_errors: dict[str, str] | None = None,
                form: dict[str, str] | None = None) -> Any:
    return render_template(
        "records/card.html", cfg=cfg, record=record, related=related(actor, cfg.entity, record),
        can_update=actor.allows_record(cfg.entity, "update", record.responsible_id,
                                       record.opened),
        can_delete=actor.allows_record(cfg.entity, "delete", record.responsible_id,
                                       record.opened),
        users=lookups.users(), active_users=lookups.active_users(), pipelines=lookups.pipelines(),
        activity_types=ACTIVITY_TYPE_LABELS, comment_errors=comment_errors or {},
        activity_errors=activity_errors or {}, form=form or {},
        **timeline.context(actor, cfg.entity, record)), status


@bp.get(f"/<{PLURALS}:plural>/<int:record_id>")
def record_card(plural: str, record_id: int) -> Any:
    cfg = page_for(plural)
    actor = require_actor()
    return render_card(cfg, actor, get_record(get_db(), actor, cfg.entity, record_id))


@bp.post(f"/<{PLURALS}:plural>/<int:record_id>/comments")
def record_comment(plural: str, record_id: int) -> Any:
    cfg = page_for(plural)
    actor = require_actor()
    db = get_db()
    try:
        add_comment(db, actor, entity_type=cfg.entity, entity_id=record_id,
                    text=request.form.get("text", ""))
        db.commit()
    except ValidationFailed as exc:
        db.rollback()
        record = get_record(db, actor, cfg.entity, record_id)
        return render_card(cfg, actor, record, status=422, form=request.form.to_dict(),
                           comment_errors=translate_fields(exc.fields))
    return redirect(card_url(cfg.entity, record_id) + "#comments")


@bp.post(f"/<{PLURALS}:plural>/<int:record_id>/activities")
def record_activity(plural: str, record_id: int) -> Any:
    cfg = page_for(plural)
    actor = require_actor()
    db = get_db()
    form = request.form
    responsible = form.get("responsible_id", "")
    try:
        add_activity(db, actor, entity_type=cfg.entity, entity_id=record_id,
                     type=form.get("type", ""), subject=form.get("subject", ""),
                     description=form.get("description", ""),
                     due_at=timeline.due_at_from_form(form.get("due_at", ""), actor.timezone),
                     responsible_id=id_or_none(responsible))
        db.commit()
    except ValidationFailed as exc:
        db.rollback()
        record = get_record(db, actor, cfg.entity, record_id)
        return render_card(cfg, actor, record, status=422, form=form.to_dict(),
                           activity_errors=translate_fields(exc.fields))
    flash(_("Activity planned."), "success")
    return redirect(card_url(cfg.entity, record_id) + "#activities")


@bp.post("/activities/<int:activity_id>/complete")
def activity_complete(activity_id: int) -> Any:
    actor = require_actor()
    db = get_db()
    act = complete_activity(db, actor, activity_id)
    entity, entity_id = act.entity_type, act.entity_id
    db.commit()
    if entity not in BY_ENTITY:
        return redirect("/")
    flash(_("Activity completed."), "success")
    return redirect(card_url(entity, entity_id) + "#activities")
