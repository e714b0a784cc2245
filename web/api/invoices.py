"""Invoices over REST: list, create from a deal, get, change the stage, the PDF."""
from __future__ import annotations

from typing import Any

from flask import Response, url_for

from crm_models.errors import ValidationFailed
from crm_models.services import invoices as inv_svc
from crm_models.services.images import invoice_images
from crm_models.services.product_rows import row_dict
from web.invoice_pdf import LAYOUTS, invoice_pdf

from .common import (
    api_route,
    commit,
    db_actor,
    json_body,
    only_keys,
    page_json,
    paging,
    query_args,
    ref,
    single,
)

CREATE_KEYS = ("deal_id", "company_id", "contact_id", "rows", "currency", "issued_on",
               "due_on", "buyer_inn", "buyer_kpp", "comments")


def _full(db: Any, inv: Any) -> dict[str, Any]:
    return {**inv_svc.invoice_dict(inv),
            "rows": [row_dict(r) for r in inv_svc.invoice_rows(db, inv.id)]}


@api_route("/invoices", tag="invoices", endpoint="invoice_list", query=(
    "deal_id", "stage", "page", "per_page"), summary="Invoices the caller may read",
    response=ref("InvoicePage"))
def invoice_list() -> Any:
    args = query_args()
    only_keys(args, ("deal_id", "stage", "page", "per_page"), "an invoice list query")
    page, per_page = paging(args)
    db, actor = db_actor()
    result = inv_svc.list_invoices(db, actor, deal_id=single(args, "deal_id"),
                                   stage=single(args, "stage"), page=page, per_page=per_page)
    return page_json([inv_svc.invoice_dict(i) for i in result.items], result.total,
                     result.page, result.per_page)


@api_route("/invoices", methods=("POST",), tag="invoices", endpoint="invoice_create",
           status=201, body=ref("InvoiceCreate"), response=ref("Invoice"),
           summary="Make an invoice from a deal (its product rows, buyer and currency), or for "
                   "a company and/or contact with the rows given; the next number")
def invoice_create() -> Any:
    body = json_body()
    only_keys(body, CREATE_KEYS, "an invoice")
    db, actor = db_actor()
    inv = inv_svc.create_invoice(db, actor, **body)
    out = _full(db, inv)
    commit()
    return out, 201, {"Location": url_for("api.invoice_get", invoice_id=inv.id)}


@api_route("/invoices/<id:invoice_id>", tag="invoices", endpoint="invoice_get",
           summary="One invoice with its rows", response=ref("Invoice"))
def invoice_get(invoice_id: int) -> Any:
    db, actor = db_actor()
    return _full(db, inv_svc.get_invoice(db, actor, invoice_id))


@api_route("/invoices/<id:invoice_id>", methods=("PATCH",), tag="invoices",
           endpoint="invoice_update", body=ref("InvoiceUpdate"), response=ref("Invoice"),
           summary="Change a draft invoice: rows, due date, buyer, comments",
           extra={"errors": (409,)})
def invoice_update(invoice_id: int) -> Any:
    body = json_body()
    only_keys(body, inv_svc.EDITABLE, "an invoice change")
    db, actor = db_actor()
    inv = inv_svc.update_invoice(db, actor, invoice_id, **body)
    out = _full(db, inv)
    commit()
    return out


@api_route("/invoices/<id:invoice_id>/stage", methods=("POST",), tag="invoices",
           endpoint="invoice_stage", body=ref("InvoiceStageChange"), response=ref("Invoice"),
           summary="Move an invoice: draft → sent → paid / overdue / cancelled",
           extra={"errors": (409,)})
def invoice_stage(invoice_id: int) -> Any:
    body = json_body()
    only_keys(body, ("stage",), "a stage change")
    db, actor = db_actor()
    inv = inv_svc.change_invoice_stage(db, actor, invoice_id, body.get("stage"))
    out = _full(db, inv)
    commit()
    return out


@api_route("/invoices/<id:invoice_id>/pdf", tag="invoices", endpoint="invoice_pdf",
           query=("lang",), response={"type": "string", "format": "binary"},
           summary="The invoice as a PDF (lang=ru: the Russian layout, the default; lang=en)")
def invoice_pdf_view(invoice_id: int) -> Any:
    args = query_args()
    only_keys(args, ("lang",), "a PDF query")
    lang = single(args, "lang") or "ru"
    if lang not in LAYOUTS:
        raise ValidationFailed({"lang": "must be ru or en"})
    db, actor = db_actor()
    inv = inv_svc.get_invoice(db, actor, invoice_id)
    pdf = invoice_pdf(inv, inv_svc.invoice_rows(db, inv.id), lang,
                      invoice_images(db, inv.seller or {}))
    name = f"invoice-{inv.year}-{inv.seq}.pdf"
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
