"""My profile: out of office for a period, with a deputy who gets my new tasks meanwhile.

Saved through ``crm_models.services.org.update_user`` (a user may change their own absence
and deputy). The assigner (``automation.assignment``) reads them when it routes a task.
"""
from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from crm_models.errors import ValidationFailed
from crm_models.services.org import update_user
from strictnum import id_or_none

from ..auth import require_actor
from ..database import get_db
from ..i18n import to_user_tz
from ..pages import lookups
from ..pages.messages import translate_fields
from ..pages.timeline import due_at_from_form
from . import bp


def _local_input(value: Any, tz: str) -> str:
    """A stored UTC time as a ``datetime-local`` value in the user's time zone."""
    return to_user_tz(value, tz).strftime("%Y-%m-%dT%H:%M") if value is not None else ""


@bp.route("/profile", methods=["GET", "POST"])
def profile() -> Any:
    actor = require_actor()
    me = g.user
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        clear = request.form.get("clear") == "1"
        deputy = request.form.get("deputy_id", "")
        data: dict[str, Any] = {"out_of_office_from": None, "out_of_office_until": None}
        if not clear:
            data = {
                "out_of_office_from": due_at_from_form(
                    request.form.get("out_of_office_from", ""), me.timezone) or None,
                "out_of_office_until": due_at_from_form(
                    request.form.get("out_of_office_until", ""), me.timezone) or None,
                "deputy_id": id_or_none(deputy),
            }
            if (data["out_of_office_from"] is None) != (data["out_of_office_until"] is None):
                errors["out_of_office_until"] = _("give both the start and the end")
        db = get_db()
        if not errors:
            try:
                update_user(db, actor, me.id, **data)
                db.commit()
                flash(_("Saved."), "success")
                return redirect(url_for("workspace.profile"))
            except ValidationFailed as exc:
                db.rollback()
                errors = translate_fields(exc.fields)
        status = 422
    form = request.form if request.method == "POST" else {
        "out_of_office_from": _local_input(me.out_of_office_from, me.timezone),
        "out_of_office_until": _local_input(me.out_of_office_until, me.timezone),
        "deputy_id": str(me.deputy_id or ""),
    }
    colleagues = [u for u in lookups.active_users() if u.id != me.id]
    return render_template("workspace/profile.html", form=form, errors=errors,
                           colleagues=colleagues, me=me), status
