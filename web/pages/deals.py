"""The deal kanban, the stage-change endpoint behind it, and lead conversion.

The stage endpoint answers three kinds of callers: the kanban's drag-and-drop script (JSON),
htmx (an HTML fragment) and a plain form without JavaScript (a redirect back).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from crm_models.entities import Deal, Pipeline
from crm_models.errors import CrmError, ValidationFailed
from crm_models.services import change_deal_stage, conversion_preview, convert_lead, get_record
from crm_models.services.board import KANBAN_CARDS, kanban_columns
from strictnum import MAX_ROW_ID, id_or_none, int_or_none

from ..auth import require_actor
from ..database import get_db
from . import bp, lookups
from .entities import PAGES
from .format import card_url, money, stage_name
from .messages import translate, translate_fields


def _pipeline(raw: str | None) -> Pipeline | None:
    pipes = lookups.pipelines()
    wanted = int_or_none(raw, minimum=0, maximum=MAX_ROW_ID)
    if wanted is not None:
        for p in pipes:
            if p.id == wanted:
                return p
    return pipes[0] if pipes else None


def _board_filters() -> dict[str, Any]:
    responsible = request.args.get("responsible_id", "")
    return {"responsible_id": responsible} if id_or_none(responsible) is not None else {}


@bp.get("/deals/kanban")
def kanban() -> Any:
    actor = require_actor()
    db = get_db()
    pipeline = _pipeline(request.args.get("pipeline"))
    q = request.args.get("q", "").strip()[:200] or None
    filters = _board_filters()
    columns = []
    if pipeline is not None:
        for col in kanban_columns(db, actor, pipeline, filters=filters, search=q,
                                  cards=KANBAN_CARDS):
            columns.append({"stage": col.stage, "name": stage_name(col.stage),
                            "count": col.count,
                            "sums": [money(v, c) for c, v in sorted(col.sums.items())],
                            "cards": col.cards})
    return render_template("deals/kanban.html", pipeline=pipeline, columns=columns,
                           pipelines=lookups.pipelines(), q=q or "", filters=filters,
                           users=lookups.users(), active_users=lookups.active_users())


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and not request.headers.get("HX-Request")


def _back(deal_id: int) -> str:
    target = request.form.get("next") or ""
    parts = urlsplit(target)
    if target.startswith("/") and not target.startswith("//") and not parts.netloc:
        return target
    return card_url("deal", deal_id)


@bp.post("/deals/<int:deal_id>/stage")
def deal_stage(deal_id: int) -> Any:
    """Move a deal to the posted ``stage`` through ``change_deal_stage``."""
    actor = require_actor()
    db = get_db()
    try:
        deal = change_deal_stage(db, actor, deal_id, request.form.get("stage", "").strip())
        db.commit()
    except CrmError as exc:
        db.rollback()
        message = translate(exc.message)
        fields = translate_fields(exc.fields)
        if fields:
            message = "; ".join(fields.values())
        if _wants_json():
            return jsonify({"error": {"code": exc.code, "message": message,
                                      "fields": fields}}), exc.status
        if isinstance(exc, ValidationFailed):
            raise ValidationFailed(fields, message) from None
        raise
    if _wants_json():
        return jsonify({"ok": True, "deal_id": deal.id, "stage": deal.stage.code,
                        "stage_name": stage_name(deal.stage)})
    if request.headers.get("HX-Request"):
        return render_template("deals/_stage_form.html", deal=deal,
                               pipelines=lookups.pipelines(), next=_back(deal_id), saved=True)
    flash(_("“%(title)s” moved to “%(stage)s”.", title=deal.title,
            stage=stage_name(deal.stage)), "success")
    return redirect(_back(deal_id))


@bp.route("/leads/<int:lead_id>/convert", methods=["GET", "POST"])
def lead_convert(lead_id: int) -> Any:
    """GET shows what conversion will create; POST converts and opens the new deal."""
    actor = require_actor()
    db = get_db()
    lead = get_record(db, actor, "lead", lead_id)
    ctx: dict[str, Any] = {"cfg": PAGES["leads"], "lead": lead, "pipelines": lookups.pipelines(),
                           "errors": {}, "form": {"title": lead.title}}
    try:
        ctx["preview"] = conversion_preview(db, actor, lead_id)
    except ValidationFailed as exc:
        ctx.update(preview=None, blocked=translate_fields(exc.fields))
        return render_template("leads/convert.html", **ctx), 422
    if request.method == "GET":
        return render_template("leads/convert.html", **ctx)
    overrides = {k: v.strip() for k, v in request.form.items()
                 if k in ("title", "pipeline_id", "stage") and v.strip()}
    chosen = lookups.stages_by_code().get(overrides.get("stage", ""))
    if chosen is not None:
        overrides["pipeline_id"] = str(chosen.pipeline_id)  # the stage names its pipeline
    existing = {f"{e}_id": id_or_none(request.form.get(f"use_{e}", ""))
                for e in ("company", "contact")}
    try:
        result = convert_lead(db, actor, lead_id, deal=overrides, **existing)
        db.flush()
        deal_id = result.deal.id
        db.commit()
    except ValidationFailed as exc:
        db.rollback()
        ctx.update(lead=get_record(db, actor, "lead", lead_id), errors=translate_fields(exc.fields),
                   form=request.form.to_dict())
        return render_template("leads/convert.html", **ctx), 422
    # The commit dispatched deal.created: a routing process may have given the deal to
    # someone else, whose deal this user may not open; then the lead's card is the way on.
    deal = db.get(Deal, deal_id)
    if deal is None or not actor.allows_record("deal", "read", deal.responsible_id, deal.opened):
        flash(_("The lead is converted; its deal was routed to a colleague."), "success")
        return redirect(url_for("pages.record_card", plural="leads", record_id=lead_id))
    flash(_("The lead is converted; here is its deal."), "success")
    return redirect(url_for("pages.record_card", plural="deals", record_id=deal_id))
