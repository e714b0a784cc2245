"""My profile: out of office for a period, with a deputy who gets my new tasks meanwhile; my
password; my sessions.

Saved through ``crm_models.services.org.update_user`` (a user may change their own absence,
deputy and — with the current one — password). The assigner (``automation.assignment``) reads
the absence when it routes a task. A password change ends the user's other sessions (this one
is signed in again) and, unless unticked, revokes their API tokens and incoming webhooks.
"""
from __future__ import annotations

from typing import Any

from flask import flash, g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from crm_models.errors import LoginLocked, ValidationFailed
from crm_models.services.org import update_user
from strictnum import id_or_none

from ..auth import (
    lock_message,
    require_actor,
    sign_in,
    sign_out_everywhere,
    throttled_password_check,
)
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
    form = request.form if request.method == "POST" else None
    return _render(form=form, errors=errors, status=status)


def _render(*, form: Any = None, errors: dict[str, str] | None = None,
            pw_errors: dict[str, str] | None = None, revoke: bool = True,
            status: int = 200) -> Any:
    me = g.user
    form = form if form is not None else {
        "out_of_office_from": _local_input(me.out_of_office_from, me.timezone),
        "out_of_office_until": _local_input(me.out_of_office_until, me.timezone),
        "deputy_id": str(me.deputy_id or ""),
    }
    colleagues = [u for u in lookups.active_users() if u.id != me.id]
    return render_template("workspace/profile.html", form=form, errors=errors or {},
                           pw_errors=pw_errors or {}, revoke=revoke, colleagues=colleagues,
                           me=me), status


@bp.post("/profile/password")
def change_password() -> Any:
    actor = require_actor()
    me = g.user
    form = request.form
    current, new = form.get("current_password", ""), form.get("new_password", "")
    revoke = form.get("revoke_credentials") == "1"
    errors: dict[str, str] = {}
    if new != form.get("new_password2", ""):
        errors["new_password2"] = _("the two new passwords differ")
    db = get_db()
    if not errors:
        try:
            with throttled_password_check(me.email):
                user = update_user(db, actor, me.id, password=new, current_password=current,
                                   revoke_credentials=revoke)
                db.commit()
        except LoginLocked as exc:
            db.rollback()
            flash(lock_message(exc.retry_after), "error")
            response = make_response(_render(revoke=revoke, status=429))
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        except ValidationFailed as exc:
            db.rollback()
            errors = translate_fields(exc.fields)
            if "password" in errors:
                errors["new_password"] = errors.pop("password")
        else:
            sign_in(user)  # the other sessions ended with the change; this one goes on
            flash(_("Your password was changed; your other sessions have ended.")
                  + (" " + _("Your API tokens and webhooks were revoked.") if revoke else ""),
                  "success")
            return redirect(url_for("workspace.profile"))
    return _render(pw_errors=errors, revoke=revoke, status=422)


@bp.post("/profile/sessions/end")
def end_all_sessions() -> Any:
    require_actor()
    sign_out_everywhere(reason="everywhere")
    flash(_("You were signed out everywhere."), "success")
    return redirect(url_for("login"))
