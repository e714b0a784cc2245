"""Pages: a user's incoming webhooks (``/profile/webhooks``) and the administrator's outgoing
webhooks with their delivery log (``/admin/webhooks``)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from crm_models.errors import CrmError
from integrations import delivery as delivery_service
from integrations import outgoing, webhooks
from integrations.models import Delivery, EventHandler

from ..auth import login_required, require_actor
from ..database import get_db

bp = Blueprint("bitrix_pages", __name__)
LOG_SIZE = 100


def webhook_url(user_id: int, secret: str) -> str:
    return f"{request.host_url.rstrip('/')}/rest/{user_id}/{secret}/"


@bp.route("/profile/webhooks", methods=["GET", "POST"])
@login_required
def profile_webhooks() -> Any:
    actor = require_actor()
    db = get_db()
    assert actor.user_id is not None
    new_url = None
    status = 200
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            _hook, secret = webhooks.create_webhook(
                db, actor, user_id=actor.user_id, name=request.form.get("name", "")[:200],
                scopes=request.form.getlist("scopes"))
            db.commit()
            new_url = webhook_url(actor.user_id, secret)
        except CrmError as exc:
            db.rollback()
            errors, status = exc.fields, 422
            flash(exc.message, "error")
    hooks = webhooks.list_webhooks(db, actor, actor.user_id)
    return render_template("bitrix/profile_webhooks.html", hooks=hooks, new_url=new_url,
                           scopes=webhooks.SCOPES, errors=errors,
                           form=request.form if errors else {}), status


@bp.post("/profile/webhooks/<int:hook_id>/revoke")
@login_required
def revoke(hook_id: int) -> Any:
    actor = require_actor()
    db = get_db()
    webhooks.revoke_webhook(db, actor, hook_id)
    db.commit()
    flash(_("The webhook was revoked; its URL no longer works."), "success")
    return redirect(url_for(".profile_webhooks"))


def _admin() -> Any:
    actor = require_actor()
    if not actor.is_admin:
        abort(403)
    return actor


@bp.route("/admin/webhooks", methods=["GET", "POST"])
@login_required
def admin_webhooks() -> Any:
    actor = _admin()
    db = get_db()
    status = 200
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            outgoing.register_handler(db, actor, event=request.form.get("event", ""),
                                      url=request.form.get("url", ""),
                                      guard=current_app.extensions["url_guard"])
            db.commit()
            flash(_("The handler was added."), "success")
            return redirect(url_for(".admin_webhooks"))
        except CrmError as exc:
            db.rollback()
            errors, status = exc.fields, 422
            flash(exc.message, "error")
    handler_filter = request.args.get("handler", type=int)
    stmt = select(Delivery).order_by(Delivery.id.desc()).limit(LOG_SIZE)
    if handler_filter:
        stmt = stmt.where(Delivery.handler_id == handler_filter)
    return render_template(
        "bitrix/admin_webhooks.html", handlers=outgoing.list_handlers(db, actor),
        deliveries=list(db.scalars(stmt)), events=outgoing.EVENTS, errors=errors,
        form=request.form if errors else {}, handler_filter=handler_filter), status


@bp.post("/admin/webhooks/<int:handler_id>/toggle")
@login_required
def toggle_handler(handler_id: int) -> Any:
    actor = _admin()
    db = get_db()
    handler = db.get(EventHandler, handler_id)
    if handler is None:
        abort(404)
    outgoing.set_handler_active(db, actor, handler_id, not handler.active)
    db.commit()
    return redirect(url_for(".admin_webhooks"))


@bp.post("/admin/webhooks/<int:handler_id>/delete")
@login_required
def delete_handler(handler_id: int) -> Any:
    actor = _admin()
    db = get_db()
    outgoing.delete_handler(db, actor, handler_id)
    db.commit()
    flash(_("The handler was removed."), "success")
    return redirect(url_for(".admin_webhooks"))


@bp.post("/admin/webhooks/deliveries/<int:delivery_id>/retry")
@login_required
def retry_delivery(delivery_id: int) -> Any:
    actor = _admin()
    db = get_db()
    delivery_service.retry_delivery(db, actor, delivery_id)
    db.commit()
    flash(_("The delivery will be sent again."), "success")
    return redirect(url_for(".admin_webhooks"))
