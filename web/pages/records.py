"""Create/edit forms and deletion for leads, deals, contacts and companies.

Forms post back to themselves. A ``ValidationFailed`` shows the form again with each field's
error next to it and the input kept (422); a refused right shows it with a form-level message
(403). Either way the transaction is rolled back, so nothing is half written.
"""
from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from crm_models.activity import AuditEvent
from crm_models.entities import ENTITY_MODELS
from crm_models.errors import PermissionDenied, ValidationFailed
from crm_models.services import get_record

from ..auth import require_actor
from ..database import get_db
from . import bp, forms, lookups, pickers
from .entities import PLURALS, EntityPage, page_for
from .format import card_url, record_title
from .messages import translate, translate_fields


def actor_label(label: str) -> str:
    from ..workspace.labels import actor_label as words

    return words(label)


def form_context(cfg: EntityPage, actor: Any, values: dict[str, Any]) -> dict[str, Any]:
    """What the record form needs besides the values: options for its selects."""
    shown = {f.name for f in forms.form_fields(cfg.entity)}
    chosen = {name: values.get(name) for name in pickers.FIELDS if name in shown}
    return {"fields": forms.form_fields(cfg.entity), "users": lookups.active_users(),
            "pickers": {name: pickers.picker_context(
                actor, name, [str(v) for v in (ids if isinstance(ids, list) else [ids or ""])])
                for name, ids in chosen.items()},
            "pipelines": lookups.pipelines(), "values": values,
            "spare_rows": forms.SPARE_CHANNEL_ROWS}


def _render_form(cfg: EntityPage, actor: Any, values: dict[str, Any], *, record: Any = None,
                 errors: dict[str, str] | None = None, form_error: str = "",
                 status: int = 200) -> Any:
    return render_template("records/form.html", cfg=cfg, record=record, errors=errors or {},
                           form_error=form_error,
                           **form_context(cfg, actor, values)), status


def _save(cfg: EntityPage, actor: Any, record: Any | None) -> Any:
    """Create or update from the posted form; the response either way."""
    db = get_db()
    creating = record is None
    data = forms.parse(cfg.entity, request.form, creating=creating)
    if record is not None and cfg.entity == "lead" and data.get("status") == record.status:
        data.pop("status")  # a converted lead keeps its status without "setting" it again
    chosen = lookups.stages_by_code().get(data.get("stage", "")) if cfg.entity == "deal" else None
    if chosen is not None:
        data["pipeline_id"] = str(chosen.pipeline_id)  # the chosen stage names its pipeline
    try:
        if creating:
            saved = cfg.create(db, actor, **data)
        else:
            saved = cfg.update(db, actor, record.id, **data)
        db.flush()
        saved_id = saved.id
        db.commit()
    except ValidationFailed as exc:
        db.rollback()
        return _render_form(cfg, actor, forms.resubmitted(cfg.entity, request.form),
                            record=_reload(cfg, actor, record), status=422,
                            errors=translate_fields(exc.fields),
                            form_error=_("Please correct the marked fields."))
    except PermissionDenied as exc:
        db.rollback()
        return _render_form(cfg, actor, forms.resubmitted(cfg.entity, request.form),
                            record=_reload(cfg, actor, record), status=403,
                            form_error=_("Not allowed: %(reason)s", reason=translate(exc.message)))
    flash(_("Saved."), "success")
    # The commit dispatched the record's event: a routing rule may have handed the record to
    # a colleague. If this user may no longer open it, the card would be a 404: say who got it.
    saved = db.get(ENTITY_MODELS[cfg.entity], saved_id)
    if saved is None or not actor.allows_record(cfg.entity, "read", saved.responsible_id,
                                                saved.opened):
        return redirect(url_for("pages.record_handed", plural=cfg.plural, record_id=saved_id))
    wanted = data.get("responsible_id") or (record.responsible_id if record else actor.user_id)
    if str(saved.responsible_id) != str(wanted):
        flash(_("A rule made %(name)s responsible.", name=_user_name(saved.responsible_id)),
              "info")
    return redirect(card_url(cfg.entity, saved_id))


def _user_name(user_id: int | None) -> str:
    user = lookups.users().get(user_id) if user_id is not None else None
    return user.full_name if user is not None else "—"


@bp.get(f"/<{PLURALS}:plural>/<int:record_id>/handed")
def record_handed(plural: str, record_id: int) -> Any:
    """Where a user lands when a record they saved went to a colleague they cannot follow:
    what it is, who has it now and which rule passed it on. Only for someone who worked on
    the record (an audit event of theirs); anyone else gets the plain 404."""
    cfg = page_for(plural)
    actor = require_actor()
    db = get_db()
    record = db.get(ENTITY_MODELS[cfg.entity], record_id)
    if record is None:
        abort(404)
    if actor.allows_record(cfg.entity, "read", record.responsible_id, record.opened):
        return redirect(card_url(cfg.entity, record_id))
    events = list(db.scalars(select(AuditEvent).where(
        AuditEvent.entity_type == cfg.entity, AuditEvent.entity_id == record_id)
        .order_by(AuditEvent.id.desc()).limit(200)))
    if actor.user_id is None or not any(e.actor_user_id == actor.user_id for e in events):
        abort(404)
    moved = next((e for e in events if isinstance((e.changes or {}).get("responsible_id"), list)
                  and e.actor_user_id != record.responsible_id), None)
    by = actor_label(moved.actor_label) if moved is not None and moved.actor_user_id is None \
        else (_user_name(moved.actor_user_id) if moved is not None else "")
    return render_template("records/handed.html", cfg=cfg, record=record, by=by,
                           responsible=lookups.users().get(record.responsible_id))


def _reload(cfg: EntityPage, actor: Any, record: Any | None) -> Any | None:
    return None if record is None else get_record(get_db(), actor, cfg.entity, record.id)


@bp.route(f"/<{PLURALS}:plural>/new", methods=["GET", "POST"])
def record_new(plural: str) -> Any:
    cfg = page_for(plural)
    actor = require_actor()
    if actor.level(cfg.entity, "add") == 0:
        abort(403)
    if request.method == "POST":
        return _save(cfg, actor, None)
    return _render_form(cfg, actor, forms.defaults(cfg.entity, actor.user_id, request.args))


@bp.route(f"/<{PLURALS}:plural>/<int:record_id>/edit", methods=["GET", "POST"])
def record_edit(plural: str, record_id: int) -> Any:
    cfg = page_for(plural)
    actor = require_actor()
    record = get_record(get_db(), actor, cfg.entity, record_id)
    if not actor.allows_record(cfg.entity, "update", record.responsible_id, record.opened):
        abort(403)
    if request.method == "POST":
        return _save(cfg, actor, record)
    return _render_form(cfg, actor, forms.from_record(record), record=record)


@bp.route(f"/<{PLURALS}:plural>/<int:record_id>/delete", methods=["GET", "POST"])
def record_delete(plural: str, record_id: int) -> Any:
    """GET asks for confirmation; POST deletes."""
    cfg = page_for(plural)
    actor = require_actor()
    db = get_db()
    record = get_record(db, actor, cfg.entity, record_id)
    if not actor.allows_record(cfg.entity, "delete", record.responsible_id, record.opened):
        abort(403)
    if request.method == "POST":
        title = record_title(record)
        cfg.delete(db, actor, record_id)
        db.commit()
        flash(_("Deleted “%(title)s”.", title=title), "success")
        return redirect(url_for("pages.record_list", plural=cfg.plural))
    return render_template("records/delete.html", cfg=cfg, record=record)
