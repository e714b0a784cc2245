"""Invoice pages beyond the deal: an invoice for a company or a contact (rows typed or
picked from the catalog), and editing a draft invoice (rows, due date, buyer)."""
from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from crm_models.errors import Conflict, PermissionDenied, ValidationFailed
from crm_models.invoices import InvoiceStage
from crm_models.services import invoices as inv_svc
from crm_models.services import product_rows as pr
from crm_models.services.records import load

from ..auth import require_actor
from ..database import get_db
from . import bp
from .messages import translate, translate_fields
from .products import row_form, rows_editor, submitted_rows

LABELS = {"issued_on": _l("Invoice date"), "due_on": _l("Pay by"), "currency": _l("Currency"),
          "buyer_name": _l("Buyer"), "buyer_inn": _l("Buyer's INN"),
          "buyer_kpp": _l("Buyer's KPP"), "buyer_address": _l("Buyer's address"),
          "comments": _l("Comments")}
NEW_FIELDS = ("issued_on", "due_on", "currency", "buyer_inn", "buyer_kpp", "comments")
EDIT_FIELDS = ("due_on", "buyer_name", "buyer_inn", "buyer_kpp", "buyer_address", "comments")
OWNERS = {"companies": "company", "contacts": "contact"}


@bp.app_context_processor
def _globals() -> dict[str, Any]:
    def invoices_for(entity: str, record: Any) -> list[Any]:
        actor = require_actor()
        if actor.level("invoice", "read") == 0 or entity not in ("company", "contact"):
            return []
        items, _total = inv_svc.list_invoices_window(
            get_db(), actor, limit=100, with_total=False, **{f"{entity}_id": record.id})
        return items

    return {"invoices_for": invoices_for}


def _render(actor: Any, *, title: str, back: str, fields: tuple[str, ...],
            values: dict[str, Any], rows: list[dict[str, str]], currency: str,
            errors: dict[str, str] | None = None, form_error: str = "",
            status: int = 200) -> Any:
    return render_template("invoices/edit.html", title=title, back=back, fields=fields,
                           labels=LABELS, values=values, errors=errors or {},
                           form_error=form_error, **rows_editor(actor, currency, rows)), status


@bp.route("/<any(companies, contacts):plural>/<int:record_id>/invoice",
          methods=["GET", "POST"])
def invoice_for_record(plural: str, record_id: int) -> Any:
    """A new invoice for a company or a contact, without a deal."""
    entity = OWNERS[plural]
    actor = require_actor()
    db = get_db()
    record = load(db, actor, entity, record_id)
    if actor.level("invoice", "add") == 0:
        abort(403)
    back = url_for("pages.record_card", plural=plural, record_id=record.id)
    title = _("New invoice")
    values = {k: request.form.get(k, "") for k in NEW_FIELDS}
    values["currency"] = values["currency"] or "RUB"
    if request.method == "GET":
        return _render(actor, title=title, back=back, fields=NEW_FIELDS, values=values, rows=[],
                       currency="RUB")
    filled, data = submitted_rows()
    try:
        inv = inv_svc.create_invoice(db, actor, rows=data, **{f"{entity}_id": record.id},
                                     **values)
        inv_id, number = inv.id, inv.number
        db.commit()
    except ValidationFailed as exc:
        db.rollback()
        return _render(actor, title=title, back=back, fields=NEW_FIELDS, values=values,
                       rows=filled, currency=values["currency"], status=422,
                       errors=translate_fields(exc.fields),
                       form_error=_("Please correct the marked fields."))
    except PermissionDenied as exc:
        db.rollback()
        abort(403, translate(exc.message))
    flash(_("Invoice № %(number)s is made.", number=number), "success")
    return redirect(url_for("pages.invoice_card", invoice_id=inv_id))


@bp.route("/invoices/<int:invoice_id>/edit", methods=["GET", "POST"])
def invoice_edit(invoice_id: int) -> Any:
    """Change a draft: its rows, due date, buyer and comments."""
    actor = require_actor()
    db = get_db()
    inv = inv_svc.get_invoice(db, actor, invoice_id)
    if not actor.allows_record("invoice", "update", inv.responsible_id, inv.opened):
        abort(403)
    back = url_for("pages.invoice_card", invoice_id=inv.id)
    if inv.stage != InvoiceStage.DRAFT.value:
        flash(_("Only a draft invoice can be changed"), "error")
        return redirect(back)
    title = _("Edit invoice № %(number)s", number=inv.number)
    currency = inv.currency
    if request.method == "GET":
        values = {k: getattr(inv, k) or "" for k in EDIT_FIELDS}
        rows = [row_form(pr.row_dict(r)) for r in inv_svc.invoice_rows(db, inv.id)]
        return _render(actor, title=title, back=back, fields=EDIT_FIELDS, values=values,
                       rows=rows, currency=currency)
    values = {k: request.form.get(k, "") for k in EDIT_FIELDS}
    filled, data = submitted_rows()
    try:
        inv_svc.update_invoice(db, actor, inv.id, rows=data, **values)
        db.commit()
    except ValidationFailed as exc:
        db.rollback()
        return _render(actor, title=title, back=back, fields=EDIT_FIELDS, values=values,
                       rows=filled, currency=currency, status=422,
                       errors=translate_fields(exc.fields),
                       form_error=_("Please correct the marked fields."))
    except Conflict as exc:
        db.rollback()
        flash(translate(exc.message), "error")
        return redirect(back)
    flash(_("Saved."), "success")
    return redirect(back)
