"""Invoice pages: the list, a card with its rows, stage buttons and the PDF, the form that
makes one from a deal, and (for admins) our requisites."""
from __future__ import annotations

from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from crm_models.errors import CrmError, PermissionDenied, ValidationFailed
from crm_models.invoices import IMAGE_KINDS, REQUISITES, STAGE_MOVES, Invoice
from crm_models.services import images
from crm_models.services import invoices as inv_svc
from crm_models.services import product_rows as pr
from crm_models.services.images import invoice_images
from crm_models.services.records import load

from ..auth import require_actor
from ..database import get_db
from ..invoice_pdf import invoice_pdf
from . import bp
from .admin import bp as admin_bp
from .format import locale
from .messages import translate, translate_fields
from .products import picture_response

STAGE_LABELS = {"draft": _l("Draft"), "sent": _l("Sent"), "paid": _l("Paid"),
                "overdue": _l("Overdue"), "cancelled": _l("Cancelled")}
INVOICE_LABELS = {"deal_id": _l("Deal"), "issued_on": _l("Invoice date"),
                  "due_on": _l("Pay by"), "buyer_inn": _l("Buyer's INN"),
                  "buyer_kpp": _l("Buyer's KPP"), "comments": _l("Comments")}


@bp.app_context_processor
def _invoice_globals() -> dict[str, Any]:
    def invoices_of(deal: Any) -> list[Invoice]:
        actor = require_actor()
        if actor.level("invoice", "read") == 0:
            return []
        return inv_svc.list_invoices(get_db(), actor, deal_id=deal.id, per_page=100).items

    return {"invoices_of": invoices_of, "INVOICE_STAGE_LABELS": STAGE_LABELS}


@bp.get("/invoices")
def invoice_list() -> Any:
    actor = require_actor()
    if actor.level("invoice", "read") == 0:
        abort(403)
    stage = request.args.get("stage", "")
    page = inv_svc.list_invoices(get_db(), actor, stage=stage if stage in STAGE_MOVES else None,
                                 per_page=100)
    return render_template("invoices/list.html", page=page, stage=stage)


@bp.get("/invoices/<int:invoice_id>")
def invoice_card(invoice_id: int) -> Any:
    actor = require_actor()
    db = get_db()
    inv = inv_svc.get_invoice(db, actor, invoice_id)
    rows = [pr.row_dict(r) for r in inv_svc.invoice_rows(db, inv.id)]
    can_update = actor.allows_record("invoice", "update", inv.responsible_id, inv.opened)
    return render_template("invoices/card.html", inv=inv, rows=rows,
                           moves=STAGE_MOVES[inv.stage] if can_update else ())


@bp.post("/invoices/<int:invoice_id>/stage")
def invoice_stage(invoice_id: int) -> Any:
    actor = require_actor()
    db = get_db()
    try:
        inv_svc.change_invoice_stage(db, actor, invoice_id, request.form.get("stage", ""))
        db.commit()
        flash(_("Saved."), "success")
    except (ValidationFailed, CrmError) as exc:
        db.rollback()
        if exc.status == 404:
            raise
        flash(translate(exc.message), "error")
    return redirect(url_for("pages.invoice_card", invoice_id=invoice_id))


@bp.get("/invoices/<int:invoice_id>/pdf")
def invoice_download(invoice_id: int) -> Any:
    actor = require_actor()
    db = get_db()
    inv = inv_svc.get_invoice(db, actor, invoice_id)
    lang = request.args.get("lang") or locale()
    pdf = invoice_pdf(inv, inv_svc.invoice_rows(db, inv.id), "en" if lang == "en" else "ru",
                      invoice_images(db, inv.seller or {}))
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="invoice-{inv.year}-{inv.seq}.pdf"'})


@bp.route("/deals/<int:deal_id>/invoice", methods=["GET", "POST"])
def invoice_new(deal_id: int) -> Any:
    """Make an invoice from a deal: its rows and buyer; the user adds dates and requisites."""
    actor = require_actor()
    db = get_db()
    deal = load(db, actor, "deal", deal_id)
    if actor.level("invoice", "add") == 0:
        abort(403)
    rows = [pr.row_dict(r) for r in pr.rows_of(db, "deal", deal.id)]
    values = {k: request.form.get(k, "") for k in INVOICE_LABELS if k != "deal_id"}
    errors: dict[str, str] = {}
    form_error = ""
    status = 200
    if request.method == "POST":
        try:
            inv = inv_svc.create_invoice(db, actor, deal_id=deal.id, **values)
            inv_id = inv.id
            db.commit()
            flash(_("Invoice № %(number)s is made.", number=inv.number), "success")
            return redirect(url_for("pages.invoice_card", invoice_id=inv_id))
        except ValidationFailed as exc:
            db.rollback()
            errors, status = translate_fields(exc.fields), 422
            form_error = _("Please correct the marked fields.")
        except PermissionDenied as exc:
            db.rollback()
            form_error, status = _("Not allowed: %(reason)s", reason=translate(exc.message)), 403
        deal = load(db, actor, "deal", deal_id)
    return render_template("invoices/new.html", deal=deal, rows=rows, values=values,
                           errors=errors, form_error=form_error,
                           labels=INVOICE_LABELS), status


@admin_bp.route("/requisites", methods=["GET", "POST"])
def requisites() -> Any:
    """Our company's requisites, the seller on every new invoice, and its logo, signature
    and stamp (pictures drawn on the PDF)."""
    actor = require_actor()
    db = get_db()
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = {k: request.form.get(k, "") for k in REQUISITES}
        try:
            inv_svc.save_requisites(db, actor, **values)
            _requisite_images(db, actor)
            db.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("admin.requisites"))
        except ValidationFailed as exc:
            db.rollback()
            errors, status = translate_fields(exc.fields), 422
    else:
        values = inv_svc.our_company(db).requisites()
    labels = {k: (en if locale() == "en" else ru) for k, (en, ru) in REQUISITES.items()}
    image_labels = {k: (en if locale() == "en" else ru) for k, (en, ru) in IMAGE_KINDS.items()}
    return render_template("admin/requisites.html", values=values, errors=errors,
                           labels=labels, image_labels=image_labels,
                           company=inv_svc.our_company(db)), status


def _requisite_images(db: Any, actor: Any) -> None:
    """Each picture of the form: a new file replaces it, "remove" takes it away."""
    problems: dict[str, str] = {}
    for kind in IMAGE_KINDS:
        upload = request.files.get(kind)
        try:
            if upload is not None and upload.filename:
                images.set_requisite_image(db, actor, kind, upload.read(images.MAX_BYTES + 1))
            elif request.form.get(f"remove_{kind}"):
                images.set_requisite_image(db, actor, kind, None)
        except ValidationFailed as exc:
            problems.update(exc.fields)
    if problems:
        raise ValidationFailed(problems)


@admin_bp.get("/requisites/<any(logo, signature, stamp):kind>")
def requisite_image(kind: str) -> Any:
    """Our current logo, signature or stamp (to whoever may see the settings)."""
    actor = require_actor()
    actor.require_flag("manage_settings")
    db = get_db()
    image_id = getattr(inv_svc.our_company(db), f"{kind}_id")
    if image_id is None:
        abort(404)
    return picture_response(images.get_image(db, image_id))
