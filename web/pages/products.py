"""The product catalog's pages: the list (search, section filter), a product's card, its
create/edit form with per-field errors, deletion, and the section tree."""
from __future__ import annotations

import re
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from crm_models.catalog import UNITS, VAT_RATES, unit_label
from crm_models.errors import CrmError, PermissionDenied, ValidationFailed
from crm_models.services import catalog as cat
from crm_models.services import images
from crm_models.services import product_rows as pr

from ..auth import require_actor
from ..database import get_db
from . import bp
from .format import locale
from .messages import translate, translate_fields

PER_PAGE = 50
VAT_LABELS = {"20": _l("20 %"), "10": _l("10 %"), "0": _l("0 %"), "none": _l("without VAT")}
FIELD_LABELS = {
    "name": _l("Name"), "sku": _l("Article (SKU)"), "description": _l("Description"),
    "price": _l("Price"), "currency": _l("Currency"), "vat_rate": _l("VAT rate"),
    "vat_included": _l("VAT included in the price"), "unit": _l("Unit of measure"),
    "section_id": _l("Section"), "active": _l("Active"), "sort": _l("Sort order"),
    "parent_id": _l("Parent section"),
}
BOOL_FIELDS = ("vat_included", "active")


def _helpers() -> dict[str, Any]:
    return {"VAT_LABELS": VAT_LABELS, "VAT_RATES": VAT_RATES, "UNITS": UNITS,
            "PRODUCT_LABELS": FIELD_LABELS, "unit_label": lambda c: unit_label(c, locale())}


def _sections(actor: Any) -> tuple[list[Any], dict[int, int]]:
    sections = cat.list_sections(get_db(), actor)
    return sections, cat.section_depths(sections)


@bp.get("/products")
def product_list() -> Any:
    actor = require_actor()
    if actor.level("product", "read") == 0:
        abort(403)
    q = request.args.get("q", "").strip()
    section = request.args.get("section_id", "").strip()
    try:
        page_no = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page_no = 1
    errors: dict[str, str] = {}
    try:
        page = cat.list_products(get_db(), actor, search=q or None, section_id=section or None,
                                 page=page_no, per_page=PER_PAGE)
    except ValidationFailed as exc:
        errors = translate_fields(exc.fields)
        page = cat.list_products(get_db(), actor, per_page=PER_PAGE)
    sections, depths = _sections(actor)
    return render_template("products/list.html", page=page, q=q, section=section,
                           sections=sections, depths=depths, errors=errors, **_helpers())


@bp.get("/products/<int:product_id>")
def product_card(product_id: int) -> Any:
    actor = require_actor()
    product = cat.get_product(get_db(), actor, product_id)
    return render_template("products/card.html", product=product, **_helpers())


def _form_values(product: Any | None) -> dict[str, Any]:
    if product is None:
        return {"currency": "RUB", "vat_rate": "20", "vat_included": True, "unit": "pcs",
                "active": True, "price": "", "sort": "100"}
    out: dict[str, Any] = {}
    for f in cat.PRODUCT_FIELDS:
        value = getattr(product, f.name)
        out[f.name] = value if f.name in BOOL_FIELDS else ("" if value is None else str(value))
    return out


def _parse(form: Any, creating: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in cat.PRODUCT_FIELDS:
        if f.name in BOOL_FIELDS:
            out[f.name] = form.get(f.name) in ("on", "1", "true", "y")
            continue
        value = form.get(f.name, "")
        if value.strip() == "" and f.name in ("price", "currency", "vat_rate", "unit", "sort"):
            if creating:
                continue
            if f.name in ("currency", "vat_rate", "unit", "sort"):
                continue  # kept as stored; an empty price is reported as required
        out[f.name] = value
    return out


def _render_form(actor: Any, product: Any | None, values: dict[str, Any], *,
                 errors: dict[str, str] | None = None, form_error: str = "",
                 status: int = 200) -> Any:
    sections, depths = _sections(actor)
    return render_template("products/form.html", product=product, values=values,
                           errors=errors or {}, form_error=form_error, sections=sections,
                           depths=depths, **_helpers()), status


def _save(actor: Any, product: Any | None) -> Any:
    db = get_db()
    data = _parse(request.form, product is None)
    try:
        if product is None:
            saved = cat.create_product(db, actor, **data)
        else:
            saved = cat.update_product(db, actor, product.id, **data)
        saved_id = saved.id
        _picture_upload(db, actor, saved_id)
        db.commit()
    except ValidationFailed as exc:
        db.rollback()
        values = {**_form_values(product), **{k: request.form.get(k, "") for k in data
                                              if k not in BOOL_FIELDS},
                  **{k: data[k] for k in BOOL_FIELDS if k in data}}
        return _render_form(actor, product, values, errors=translate_fields(exc.fields),
                            form_error=_("Please correct the marked fields."), status=422)
    except PermissionDenied as exc:
        db.rollback()
        return _render_form(actor, product, _form_values(product), status=403,
                            form_error=_("Not allowed: %(reason)s", reason=translate(exc.message)))
    flash(_("Saved."), "success")
    return redirect(url_for("pages.product_card", product_id=saved_id))


def _picture_upload(db: Any, actor: Any, product_id: int) -> None:
    """The form's picture: a new file replaces the picture, "remove" takes it away."""
    upload = request.files.get("picture")
    if upload is not None and upload.filename:
        images.set_product_picture(db, actor, product_id, upload.read(images.MAX_BYTES + 1))
    elif request.form.get("remove_picture"):
        images.set_product_picture(db, actor, product_id, None)


@bp.get("/products/<int:product_id>/picture")
def product_picture(product_id: int) -> Any:
    actor = require_actor()
    db = get_db()
    product = cat.get_product(db, actor, product_id)
    if product.picture_id is None:
        abort(404)
    return picture_response(images.get_image(db, product.picture_id))


def picture_response(image: Any) -> Any:
    response = Response(image.data, mimetype=image.content_type)
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.route("/products/new", methods=["GET", "POST"])
def product_new() -> Any:
    actor = require_actor()
    if actor.level("product", "add") == 0:
        abort(403)
    if request.method == "POST":
        return _save(actor, None)
    values = _form_values(None)
    if request.args.get("section_id", "").isdigit():
        values["section_id"] = request.args["section_id"]
    return _render_form(actor, None, values)


@bp.route("/products/<int:product_id>/edit", methods=["GET", "POST"])
def product_edit(product_id: int) -> Any:
    actor = require_actor()
    product = cat.get_product(get_db(), actor, product_id)
    if actor.level("product", "update") == 0:
        abort(403)
    if request.method == "POST":
        return _save(actor, product)
    return _render_form(actor, product, _form_values(product))


@bp.post("/products/<int:product_id>/delete")
def product_delete(product_id: int) -> Any:
    actor = require_actor()
    db = get_db()
    product = cat.get_product(db, actor, product_id)
    name = product.name
    cat.delete_product(db, actor, product_id)
    db.commit()
    flash(_("Deleted “%(title)s”.", title=name), "success")
    return redirect(url_for("pages.product_list"))


@bp.route("/product-sections", methods=["GET", "POST"])
def product_sections() -> Any:
    """The section tree with a form to add one (and to delete an empty one)."""
    actor = require_actor()
    if actor.level("product", "read") == 0:
        abort(403)
    db = get_db()
    errors: dict[str, str] = {}
    form_error = ""
    status = 200
    if request.method == "POST":
        delete_id = request.form.get("delete", "")
        try:
            if delete_id.isdigit():
                cat.delete_section(db, actor, int(delete_id))
            else:
                data = {"name": request.form.get("name", "")}
                if request.form.get("parent_id", "").strip():
                    data["parent_id"] = request.form["parent_id"]
                cat.save_section(db, actor, **data)
            db.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("pages.product_sections"))
        except ValidationFailed as exc:
            db.rollback()
            errors, status = translate_fields(exc.fields), 422
            form_error = _("Please correct the marked fields.")
        except CrmError as exc:
            db.rollback()
            form_error, status = translate(exc.message), exc.status
    sections, depths = _sections(actor)
    return render_template("products/sections.html", sections=sections, depths=depths,
                           errors=errors, form_error=form_error, **_helpers()), status


# --- product rows of deals and leads ---------------------------------------------------------

SPARE_ROWS = 3
ROW_INPUTS = ("product_id", "name", "quantity", "price", "discount", "discount_type",
              "vat_rate", "vat_included")
ROW_FIELD_LABELS = {
    "product_id": _l("Product"), "name": _l("Name"), "quantity": _l("Quantity"),
    "price": _l("Price"), "discount": _l("Discount"), "discount_type": _l("Discount type"),
    "vat_rate": _l("VAT rate"), "vat_included": _l("VAT included in the price"),
    "unit": _l("Unit of measure"),
}


@bp.app_context_processor
def _catalog_globals() -> dict[str, Any]:
    def rows_of(record: Any) -> list[dict[str, Any]]:
        return [pr.row_dict(r) for r in pr.rows_of(get_db(), record.entity_type, record.id)]

    return {"product_rows_of": rows_of, **_helpers()}


def _error_label(key: str) -> str:
    """``rows[2].quantity`` → "Row 3, Quantity"."""
    m = re.fullmatch(r"rows\[(\d+)\](?:\.(\w+))?", key)
    if not m:
        return key
    row = _("Row %(n)s", n=int(m.group(1)) + 1)
    return f"{row}, {ROW_FIELD_LABELS.get(m.group(2), m.group(2))}" if m.group(2) else row


def _row_form(values: dict[str, Any]) -> dict[str, str]:
    out = {k: "" if values.get(k) is None else str(values.get(k)) for k in ROW_INPUTS}
    if isinstance(values.get("vat_included"), bool):
        out["vat_included"] = "1" if values["vat_included"] else "0"
    return out


def submitted_rows() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The rows editor's rows as typed (to show again) and as values for the service."""
    columns = {k: request.form.getlist(k) for k in ROW_INPUTS}
    count = max((len(v) for v in columns.values()), default=0)
    submitted = [{k: (columns[k][i] if i < len(columns[k]) else "") for k in ROW_INPUTS}
                 for i in range(count)]
    # A row with neither a product nor a name nor a price is an unused spare row.
    filled = [r for r in submitted
              if any(r[k].strip() for k in ("product_id", "name", "price"))]
    return filled, [{k: v for k, v in r.items() if v.strip() != ""} for r in filled]


def rows_editor(actor: Any, currency: str, rows: list[dict[str, str]]) -> dict[str, Any]:
    """What ``products/_rows_table.html`` needs: the rows plus spare ones, the products."""
    products = cat.list_products(get_db(), actor, active=True, currency=currency,
                                 per_page=500).items if actor.level("product", "read") else []
    return {"rows": rows + [_row_form({}) for _ in range(SPARE_ROWS)], "products": products,
            "product_ids": [str(p.id) for p in products], "currency": currency,
            "error_label": _error_label}


def row_form(values: dict[str, Any]) -> dict[str, str]:
    return _row_form(values)


def _render_rows(actor: Any, record: Any, rows: list[dict[str, str]], follow: bool, *,
                 errors: dict[str, str] | None = None, form_error: str = "",
                 status: int = 200) -> Any:
    products = cat.list_products(get_db(), actor, active=True, currency=record.currency,
                                 per_page=500).items if actor.level("product", "read") else []
    rows = rows + [_row_form({}) for _ in range(SPARE_ROWS)]
    return render_template("products/rows_form.html", record=record, rows=rows,
                           follow=follow, products=products,
                           product_ids=[str(p.id) for p in products], errors=errors or {},
                           form_error=form_error, error_label=_error_label), status


@bp.route("/<any(deals, leads):plural>/<int:record_id>/products", methods=["GET", "POST"])
def product_rows_edit(plural: str, record_id: int) -> Any:
    """The rows editor of a deal or a lead."""
    entity = plural[:-1]
    actor = require_actor()
    db = get_db()
    record, rows = pr.get_product_rows(db, actor, entity, record_id)
    if not actor.allows_record(entity, "update", record.responsible_id, record.opened):
        abort(403)
    if request.method == "GET":
        return _render_rows(actor, record, [_row_form(pr.row_dict(r)) for r in rows],
                            bool(record.amount_from_rows) or not rows)
    filled, data = submitted_rows()
    follow = request.form.get("amount_from_rows") in ("on", "1", "true")
    try:
        pr.set_product_rows(db, actor, entity, record.id, data, amount_from_rows=follow)
        db.commit()
    except ValidationFailed as exc:
        db.rollback()
        record = pr.records.load(db, actor, entity, record_id)
        return _render_rows(actor, record, filled, follow, status=422,
                            errors=translate_fields(exc.fields),
                            form_error=_("Please correct the marked fields."))
    except PermissionDenied as exc:
        db.rollback()
        abort(403, translate(exc.message))
    flash(_("Saved."), "success")
    return redirect(url_for("pages.record_card", plural=plural, record_id=record.id))
