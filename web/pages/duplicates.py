"""The "Дубликаты" check of a contact's or a company's card, and the admin's merge."""
from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request
from flask_babel import gettext as _

from crm_models.services import get_record
from crm_models.services.duplicates import duplicates_of, merge
from strictnum import id_or_none

from ..auth import require_actor
from ..database import get_db
from . import bp
from .entities import PLURALS, page_for
from .format import card_url


@bp.get(f"/<{PLURALS}:plural>/<int:record_id>/duplicates")
def record_duplicates(plural: str, record_id: int) -> Any:
    cfg = page_for(plural)
    if cfg.entity not in ("contact", "company"):
        abort(404)
    actor = require_actor()
    db = get_db()
    record = get_record(db, actor, cfg.entity, record_id)
    return render_template("records/duplicates.html", cfg=cfg, record=record,
                           found=duplicates_of(db, actor, cfg.entity, record_id),
                           can_merge=actor.is_admin)


@bp.post(f"/<{PLURALS}:plural>/<int:record_id>/merge")
def record_merge(plural: str, record_id: int) -> Any:
    """Merge the record named by ``other_id`` into this one (this one survives)."""
    cfg = page_for(plural)
    if cfg.entity not in ("contact", "company"):
        abort(404)
    actor = require_actor()
    db = get_db()
    other = id_or_none(request.form.get("other_id", ""))
    if other is None:
        abort(400)
    merge(db, actor, cfg.entity, record_id, other)
    db.commit()
    flash(_("Records merged: #%(other)s now lives on in this one.", other=other), "success")
    return redirect(card_url(cfg.entity, record_id))
