"""``crm.product.*``, ``crm.productsection.*`` and
``crm.deal|lead.productrows.get/set``: Bitrix24 names over the catalog and product-row
services.

Mapping notes (ours where Bitrix24's own is an id into a reference list we do not keep):
``MEASURE`` is our unit code (``pcs``, ``kg``, ``hour`` …) and ``MEASURE_NAME`` its Russian
label; ``VAT_RATE`` / ``TAX_RATE`` is the rate in percent, ``null`` for "without VAT".
In product rows ``PRICE`` is the final price per unit (after the discount), ``PRICE_NETTO``
the price before the discount; ``DISCOUNT_TYPE_ID`` 1 is an amount per unit, 2 a percentage.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from crm_models.catalog import unit_label
from crm_models.errors import ValidationFailed
from crm_models.services import catalog as cat
from crm_models.services import product_rows as pr

from .crm_methods import fields_param, record_id, start_param
from .envelope import PAGE, BitrixError, ListResult
from .registry import CallContext, method

#: Bitrix24 product field → (ours, kind).
PRODUCT_FIELDS: dict[str, tuple[str, str]] = {
    "NAME": ("name", "string"), "CODE": ("sku", "string"),
    "DESCRIPTION": ("description", "string"), "PRICE": ("price", "double"),
    "CURRENCY_ID": ("currency", "crm_currency"), "VAT_RATE": ("vat_rate", "double"),
    "VAT_INCLUDED": ("vat_included", "char"), "MEASURE": ("unit", "string"),
    "SECTION_ID": ("section_id", "integer"), "ACTIVE": ("active", "char"),
    "SORT": ("sort", "integer"),
}
OURS = {ours: b24 for b24, (ours, _kind) in PRODUCT_FIELDS.items()}


def _yn(value: bool) -> str:
    return "Y" if value else "N"


def _vat_out(rate: str) -> str | None:
    return None if rate == "none" else rate


def _vat_in(value: Any) -> Any:
    if value in (None, "", "none"):
        return "none"
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return str(int(value)) if value == int(value) else str(value)
    if isinstance(value, str):
        v = value.strip().rstrip("%").strip()
        return str(int(Decimal(v))) if v.replace(".", "", 1).isdigit() and \
            Decimal(v) == int(Decimal(v)) else v
    return value


def product_out(p: Any) -> dict[str, Any]:
    return {"ID": str(p.id), "NAME": p.name, "CODE": p.sku, "DESCRIPTION": p.description,
            "PRICE": str(p.price), "CURRENCY_ID": p.currency, "VAT_RATE": _vat_out(p.vat_rate),
            "VAT_INCLUDED": _yn(p.vat_included), "MEASURE": p.unit,
            "MEASURE_NAME": unit_label(p.unit, "ru"),
            "SECTION_ID": str(p.section_id) if p.section_id else None,
            "ACTIVE": _yn(p.active), "SORT": str(p.sort),
            "DATE_CREATE": p.created_at.isoformat(), "TIMESTAMP_X": p.updated_at.isoformat(),
            "CREATED_BY": str(p.created_by_id) if p.created_by_id else None}


def product_in(fields: dict[str, Any]) -> dict[str, Any]:
    """Our keyword arguments from Bitrix24 fields; unknown fields are ignored (as Bitrix24
    ignores them), bad values are named by their Bitrix24 names."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        spec = PRODUCT_FIELDS.get(str(key).upper())
        if spec is None:
            continue
        ours = spec[0]
        if ours in ("vat_included", "active") and isinstance(value, str):
            value = value.strip().upper() == "Y" if value.strip().upper() in ("Y", "N") \
                else value
        if ours == "vat_rate":
            value = _vat_in(value)
        out[ours] = value
    return out


def _named(exc: ValidationFailed) -> ValidationFailed:
    return ValidationFailed({OURS.get(k, k): v for k, v in exc.fields.items()})


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ValidationFailed as exc:
        raise _named(exc) from None


@method("crm.product.add", "crm", legacy=True)
def product_add(ctx: CallContext, params: dict[str, Any]) -> int:
    data = product_in(fields_param(params))
    return int(_call(cat.create_product, ctx.session, ctx.actor, **data).id)


@method("crm.product.get", "crm", legacy=True)
def product_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    return product_out(cat.get_product(ctx.session, ctx.actor, record_id(params)))


@method("crm.product.update", "crm", legacy=True)
def product_update(ctx: CallContext, params: dict[str, Any]) -> bool:
    pid = record_id(params)
    _call(cat.update_product, ctx.session, ctx.actor, pid, **product_in(fields_param(params)))
    return True


@method("crm.product.delete", "crm", legacy=True)
def product_delete(ctx: CallContext, params: dict[str, Any]) -> bool:
    cat.delete_product(ctx.session, ctx.actor, record_id(params))
    return True


@method("crm.product.list", "crm", legacy=True)
def product_list(ctx: CallContext, params: dict[str, Any]) -> ListResult:
    """``filter`` on ``SECTION_ID``, ``ACTIVE``, ``CURRENCY_ID``, ``>ID`` (keyset paging) and
    ``%NAME`` (a search in the name and article); ``order`` on one of ID, NAME, PRICE, SORT."""
    flt = params.get("filter") or {}
    if not isinstance(flt, dict):
        raise BitrixError(400, "", "Parameter 'filter' must be array.")
    flt = {str(k).upper(): v for k, v in flt.items()}
    start = start_param(params)
    offset = max(start, 0)
    active = flt.get("ACTIVE")
    if isinstance(active, str) and active.upper() in ("Y", "N"):
        active = active.upper() == "Y"
    page = _call(cat.list_products, ctx.session, ctx.actor,
                 search=flt.get("%NAME") or flt.get("NAME") or None,
                 section_id=flt.get("SECTION_ID"), active=active,
                 currency=flt.get("CURRENCY_ID"), id_after=flt.get(">ID"), sort=_order(params),
                 page=offset // PAGE + 1,
                 per_page=PAGE)
    items = [product_out(p) for p in page.items][offset % PAGE:]
    total = page.total if start != -1 else None
    nxt = offset + len(items) if total is not None and offset + len(items) < total else None
    return ListResult(items, total, nxt)


def _order(params: dict[str, Any]) -> str:
    """``order`` on ID, NAME, PRICE or SORT (one key); by ID otherwise."""
    order = params.get("order")
    if isinstance(order, dict) and order:
        key, direction = next(iter(order.items()))
        name = {"ID": "id", "NAME": "name", "PRICE": "price", "SORT": "sort"}.get(
            str(key).upper())
        if name:
            return ("-" if str(direction).upper() == "DESC" else "") + name
    return "id"


@method("crm.product.fields", "crm", legacy=True)
def product_fields(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    labels = {f.name: (f.label_ru if ctx.locale == "ru" else f.label_en)
              for f in cat.PRODUCT_FIELDS}
    out = {"ID": {"type": "integer", "isRequired": False, "isReadOnly": True,
                  "isImmutable": False, "isMultiple": False, "isDynamic": False,
                  "title": "ID"}}
    for b24, (ours, kind) in PRODUCT_FIELDS.items():
        out[b24] = {"type": kind, "isRequired": ours == "name", "isReadOnly": False,
                    "isImmutable": False, "isMultiple": False, "isDynamic": False,
                    "title": labels[ours]}
    return out


def _section_out(s: Any) -> dict[str, Any]:
    return {"ID": str(s.id), "NAME": s.name,
            "SECTION_ID": str(s.parent_id) if s.parent_id else None, "SORT": str(s.sort)}


@method("crm.productsection.list", "crm", legacy=True)
def section_list(ctx: CallContext, params: dict[str, Any]) -> ListResult:
    rows = [_section_out(s) for s in cat.list_sections(ctx.session, ctx.actor)]
    start = max(start_param(params), 0)
    items = rows[start:start + PAGE]
    nxt = start + len(items) if start + len(items) < len(rows) else None
    return ListResult(items, len(rows), nxt)


@method("crm.productsection.get", "crm", legacy=True)
def section_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    return _section_out(cat.get_section(ctx.session, ctx.actor, record_id(params)))


def _section_in(params: dict[str, Any], *, update: bool) -> dict[str, Any]:
    fields = {str(k).upper(): v for k, v in fields_param(params).items()}
    data: dict[str, Any] = {}
    if "NAME" in fields or not update:
        data["name"] = fields.get("NAME")
    if "SORT" in fields:
        data["sort"] = fields["SORT"]
    if fields.get("SECTION_ID") not in (None, "", 0, "0"):
        data["parent_id"] = fields["SECTION_ID"]
    elif update and "SECTION_ID" in fields:
        data["parent_id"] = None  # to the top level
    return data


def _save_section(ctx: CallContext, section_id: int | None, data: dict[str, Any]) -> Any:
    try:
        return cat.save_section(ctx.session, ctx.actor, section_id, **data)
    except ValidationFailed as exc:
        raise ValidationFailed({"NAME" if k == "name" else "SECTION_ID" if k == "parent_id"
                                else k.upper(): v for k, v in exc.fields.items()}) from None


@method("crm.productsection.add", "crm", legacy=True)
def section_add(ctx: CallContext, params: dict[str, Any]) -> int:
    return int(_save_section(ctx, None, _section_in(params, update=False)).id)


@method("crm.productsection.update", "crm", legacy=True)
def section_update(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Rename, re-sort or move a section (``SECTION_ID`` 0 or empty: to the top level)."""
    _save_section(ctx, record_id(params), _section_in(params, update=True))
    return True


@method("crm.productsection.delete", "crm", legacy=True)
def section_delete(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Delete an empty section (a section with products or subsections is refused)."""
    cat.delete_section(ctx.session, ctx.actor, record_id(params))
    return True


# --- product rows ----------------------------------------------------------------------------

OWNER_CODES = {"deal": "D", "lead": "L"}
ROW_NAMES = {"product_id": "PRODUCT_ID", "name": "PRODUCT_NAME", "quantity": "QUANTITY",
             "price": "PRICE", "discount": "DISCOUNT_RATE", "discount_type": "DISCOUNT_TYPE_ID",
             "vat_rate": "TAX_RATE", "vat_included": "TAX_INCLUDED", "unit": "MEASURE_CODE"}


def row_out(entity: str, row: Any) -> dict[str, Any]:
    s = pr.row_sums(row)
    discount_sum = row.price - s.price_after_discount
    return {"ID": str(row.id), "OWNER_ID": str(row.entity_id), "OWNER_TYPE": OWNER_CODES[entity],
            "PRODUCT_ID": row.product_id or 0, "PRODUCT_NAME": row.name,
            "PRICE": str(s.price_after_discount), "PRICE_NETTO": str(row.price),
            "QUANTITY": format(row.quantity.normalize(), "f"),
            "DISCOUNT_TYPE_ID": 2 if row.discount_type == "percent" else 1,
            "DISCOUNT_RATE": str(row.discount) if row.discount_type == "percent" else None,
            "DISCOUNT_SUM": str(discount_sum), "TAX_RATE": _vat_out(row.vat_rate),
            "TAX_INCLUDED": _yn(row.vat_included), "MEASURE_CODE": row.unit,
            "MEASURE_NAME": unit_label(row.unit, "ru"), "SORT": row.sort,
            "SUM": str(s.total)}


def row_in(raw: Any) -> Any:
    if not isinstance(raw, dict):
        return raw  # the service names it
    r = {str(k).upper(): v for k, v in raw.items()}
    out: dict[str, Any] = {}
    if r.get("PRODUCT_ID") not in (None, "", 0, "0"):
        out["product_id"] = r["PRODUCT_ID"]
    if r.get("PRODUCT_NAME") not in (None, ""):
        out["name"] = r["PRODUCT_NAME"]
    if "QUANTITY" in r:
        out["quantity"] = r["QUANTITY"]
    dtype = str(r.get("DISCOUNT_TYPE_ID", "2")).strip()
    if dtype == "1":
        out["discount_type"] = "amount"
        if r.get("DISCOUNT_SUM") not in (None, ""):
            out["discount"] = r["DISCOUNT_SUM"]
    elif r.get("DISCOUNT_RATE") not in (None, ""):
        out["discount_type"] = "percent"
        out["discount"] = r["DISCOUNT_RATE"]
    if r.get("PRICE_NETTO") not in (None, ""):
        out["price"] = r["PRICE_NETTO"]
    elif r.get("PRICE") not in (None, ""):
        price = r["PRICE"]
        if out.get("discount_type") == "amount" and out.get("discount") is not None:
            try:  # PRICE is after the discount: the price before it is PRICE + DISCOUNT_SUM
                price = str(Decimal(str(price)) + Decimal(str(out["discount"])))
            except ArithmeticError:
                pass  # the service names the bad value
        out["price"] = price
    if "TAX_RATE" in r:
        out["vat_rate"] = _vat_in(r["TAX_RATE"])
    if r.get("TAX_INCLUDED") in ("Y", "N"):
        out["vat_included"] = r["TAX_INCLUDED"] == "Y"
    if r.get("MEASURE_CODE") not in (None, ""):
        out["unit"] = r["MEASURE_CODE"]
    return out


def _row_error_names(exc: ValidationFailed) -> ValidationFailed:
    out = {}
    for key, msg in exc.fields.items():
        head, dot, field = key.partition(".")
        out[f"{head}.{ROW_NAMES.get(field, field)}" if dot else key] = msg
    return ValidationFailed(out)


def _register_rows(entity: str) -> None:
    @method(f"crm.{entity}.productrows.get", "crm", legacy=True)
    def rows_get(ctx: CallContext, params: dict[str, Any]) -> list[dict[str, Any]]:
        _record, rows = pr.get_product_rows(ctx.session, ctx.actor, entity, record_id(params))
        return [row_out(entity, r) for r in rows]

    @method(f"crm.{entity}.productrows.set", "crm", legacy=True)
    def rows_set(ctx: CallContext, params: dict[str, Any]) -> bool:
        rows = params.get("rows")
        if rows in (None, "", {}):
            rows = []
        if isinstance(rows, dict):  # form-encoded rows[0][...] arrive as a dict by index
            rows = [rows[k] for k in sorted(rows, key=lambda k: int(k) if str(k).isdigit()
                                            else 0)]
        if not isinstance(rows, list):
            raise BitrixError(400, "", "Parameter 'rows' must be array.")
        try:
            pr.set_product_rows(ctx.session, ctx.actor, entity, record_id(params),
                                [row_in(r) for r in rows])
        except ValidationFailed as exc:
            raise _row_error_names(exc) from None
        return True


for _entity in OWNER_CODES:
    _register_rows(_entity)
