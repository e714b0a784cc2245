"""Product rows of deals and leads, and the amount that follows them.

``set_product_rows`` replaces a record's rows as one change: it needs the right to update
the record, validates every row (errors name ``rows[i].field``), and — unless the amount was
set by hand — writes the rows' total into the record's ``amount`` through ``records.update``,
so that ``deal.updated`` carries the changed amount and processes (the large-deal rule) react
to it exactly as to an amount typed in. The rows change itself is one audit event and one
``<entity>.product_rows_changed`` outbox event, in the caller's transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..catalog import DISCOUNT_TYPES, QUANTITY_STEP, UNITS, VAT_RATES, Product, ProductRow
from ..errors import NotFound, ValidationFailed
from ..fields import Field, _coerce
from ..permissions import Actor
from . import records

OWNERS = ("deal", "lead")
MAX_ROWS = 500
MAX_QUANTITY = Decimal("1000000000")
CENT = Decimal("0.01")
ROW_KEYS = ("product_id", "name", "quantity", "price", "discount_type", "discount",
            "vat_rate", "vat_included", "unit")
_MONEY = Field("price", "money", "", "", blank=False)
_NAME = Field("name", "string", "", "", max_length=255)


@dataclass(frozen=True)
class RowSums:
    price_after_discount: Decimal  # per unit
    net: Decimal  # the row without VAT
    vat: Decimal
    total: Decimal  # what the client pays for the row


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def row_sums(row: Any) -> RowSums:
    """The sums of one row (a ``ProductRow`` or anything with its attributes)."""
    if row.discount_type == "percent":
        unit_price = _cents(row.price * (100 - row.discount) / 100)
    else:
        unit_price = row.price - row.discount
    line = _cents(unit_price * row.quantity)
    rate = Decimal(row.vat_rate) if row.vat_rate not in ("none", "0") else Decimal(0)
    if not rate:
        return RowSums(unit_price, line, Decimal("0.00"), line)
    if row.vat_included:
        vat = _cents(line * rate / (100 + rate))
        return RowSums(unit_price, line - vat, vat, line)
    vat = _cents(line * rate / 100)
    return RowSums(unit_price, line, vat, line + vat)


def totals(rows: list[Any]) -> tuple[Decimal, Decimal]:
    """(total to pay, VAT in it) over the rows."""
    sums = [row_sums(r) for r in rows]
    return (sum((s.total for s in sums), Decimal("0.00")),
            sum((s.vat for s in sums), Decimal("0.00")))


def row_dict(row: ProductRow) -> dict[str, Any]:
    s = row_sums(row)
    return {"id": row.id, "product_id": row.product_id, "name": row.name,
            "quantity": format(row.quantity.normalize(), "f"), "unit": row.unit,
            "price": str(row.price),
            "discount_type": row.discount_type, "discount": str(row.discount),
            "vat_rate": row.vat_rate, "vat_included": row.vat_included,
            "price_after_discount": str(s.price_after_discount), "net": str(s.net),
            "vat": str(s.vat), "total": str(s.total)}


def row_values(row: ProductRow) -> dict[str, Any]:
    """A stored row's values, to copy it (to an invoice)."""
    return {k: getattr(row, k) for k in ROW_KEYS}


def _quantity(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise ValueError('must be a number such as "1" or "2.5"')
    try:
        q = Decimal(str(value).replace(" ", "").replace(",", "."))
    except InvalidOperation:
        raise ValueError('must be a number such as "1" or "2.5"') from None
    if not q.is_finite() or q <= 0:
        raise ValueError("must be greater than zero")
    if q > MAX_QUANTITY:
        raise ValueError("is too large")
    if q != q.quantize(QUANTITY_STEP):
        raise ValueError("must have at most three decimal places")
    return q.quantize(QUANTITY_STEP)


def _clean_row(session: Session, raw: Any, i: int, currency: str,
               products: dict[int, Product], errors: dict[str, str]) -> dict[str, Any] | None:
    """One row's clean values (defaults from its product), adding ``rows[i].field`` errors."""
    at = f"rows[{i}]"
    if not isinstance(raw, dict):
        errors[at] = "must be an object with name, quantity, price …"
        return None
    bad = len(errors)
    for key in raw:
        if key not in ROW_KEYS and key not in ("id", "net", "vat", "total",
                                               "price_after_discount"):
            errors[f"{at}.{str(key)[:40]}"] = "is not a field of a product row"
    product = None
    if raw.get("product_id") not in (None, ""):
        try:
            pid = _coerce(Field("product_id", "ref", "", ""), raw["product_id"])
        except ValueError as exc:
            errors[f"{at}.product_id"] = str(exc)
        else:
            product = products.get(pid)
            if product is None:
                errors[f"{at}.product_id"] = f"no product with id {pid}"
            elif product.currency != currency:
                errors[f"{at}.product_id"] = (
                    f"the product is priced in {product.currency}, the record in {currency}")
    out: dict[str, Any] = {"product_id": product.id if product else None}

    def take(key: str, convert: Any, default: Any) -> None:
        value = raw.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if default is None:
                errors[f"{at}.{key}"] = "is required"
                return
            out[key] = default
            return
        try:
            out[key] = convert(value)
        except ValueError as exc:
            errors[f"{at}.{key}"] = str(exc)

    # A row naming a product that is not there has its own error; "name is required" on top
    # of it would only confuse.
    given = raw.get("product_id") not in (None, "")
    take("name", lambda v: _coerce(_NAME, v), product.name if product else "" if given else None)
    take("quantity", _quantity, Decimal("1"))
    take("price", lambda v: _coerce(_MONEY, v),
         product.price if product else Decimal(0) if given else None)
    take("discount_type", lambda v: _coerce(Field("discount_type", "enum", "", "",
                                                  choices=DISCOUNT_TYPES), v), "percent")
    take("discount", lambda v: _coerce(_MONEY, v), Decimal("0.00"))
    take("vat_rate", lambda v: _coerce(Field("vat_rate", "enum", "", "", choices=VAT_RATES), v),
         product.vat_rate if product else "none")
    take("vat_included", lambda v: _coerce(Field("vat_included", "bool", "", ""), v),
         product.vat_included if product else True)
    take("unit", lambda v: _coerce(Field("unit", "enum", "", "", choices=tuple(UNITS)), v),
         product.unit if product else "pcs")
    if len(errors) > bad:
        return None
    if out["discount_type"] == "percent" and out["discount"] > 100:
        errors[f"{at}.discount"] = "a percentage must be at most 100"
    elif out["discount_type"] == "amount" and out["discount"] > out["price"]:
        errors[f"{at}.discount"] = "must not exceed the price"
    return out if len(errors) == bad else None


def _owner(session: Session, actor: Actor, entity: str, record_id: Any, action: str,
           lock: bool = False) -> Any:
    if entity not in OWNERS:
        raise NotFound(f"Only deals and leads have product rows, not '{str(entity)[:40]}'")
    return records.load(session, actor, entity, record_id, action, lock=lock)


def rows_of(session: Session, entity: str, record_id: int) -> list[ProductRow]:
    return list(session.scalars(select(ProductRow).where(
        ProductRow.entity_type == entity, ProductRow.entity_id == record_id)
        .order_by(ProductRow.sort, ProductRow.id)))


def get_product_rows(session: Session, actor: Actor, entity: str,
                     record_id: int) -> tuple[Any, list[ProductRow]]:
    """The record (read right needed) and its rows in order."""
    record = _owner(session, actor, entity, record_id, "read")
    return record, rows_of(session, entity, record.id)


def clean_rows(session: Session, rows: Any, currency: str) -> list[dict[str, Any]]:
    """Every row's clean values for a record priced in ``currency`` (defaults from the
    catalog); errors name ``rows[i].field``."""
    if not isinstance(rows, list):
        raise ValidationFailed({"rows": "must be a list of product rows"})
    if len(rows) > MAX_ROWS:
        raise ValidationFailed({"rows": f"must hold at most {MAX_ROWS} rows"})
    wanted = set()
    for r in rows:
        if isinstance(r, dict) and isinstance(r.get("product_id"), int) and not isinstance(
                r.get("product_id"), bool) and 0 < r["product_id"] <= records.MAX_ID:
            wanted.add(r["product_id"])
        elif isinstance(r, dict) and isinstance(r.get("product_id"), str) and r[
                "product_id"].strip().isdigit() and len(r["product_id"].strip()) < 10:
            wanted.add(int(r["product_id"]))
    products = {p.id: p for p in session.scalars(
        select(Product).where(Product.id.in_(sorted(wanted))))} if wanted else {}
    errors: dict[str, str] = {}
    clean = [_clean_row(session, raw, i, currency, products, errors)
             for i, raw in enumerate(rows)]
    if errors:
        raise ValidationFailed(errors)
    return [c for c in clean if c is not None]


def set_product_rows(session: Session, actor: Actor, entity: str, record_id: int,
                     rows: Any, *, amount_from_rows: bool | None = None) -> list[ProductRow]:
    """Replace the record's product rows; see the module docstring.

    ``amount_from_rows``: True makes the amount follow the rows, False keeps the amount as
    set by hand; None keeps the record's choice (a record without rows starts following).
    """
    record = _owner(session, actor, entity, record_id, "update", lock=True)
    if amount_from_rows is not None and not isinstance(amount_from_rows, bool):
        raise ValidationFailed({"amount_from_rows": "must be true or false"})
    clean = clean_rows(session, rows, record.currency)
    old = rows_of(session, entity, record.id)
    follow = amount_from_rows
    if follow is None:
        follow = bool(record.amount_from_rows) or not old
    before = [row_dict(r) for r in old]
    session.execute(delete(ProductRow).where(ProductRow.entity_type == entity,
                                             ProductRow.entity_id == record.id))
    new = [ProductRow(entity_type=entity, entity_id=record.id, sort=(i + 1) * 10, **values)
           for i, values in enumerate(clean)]
    session.add_all(new)
    session.flush()
    after = [row_dict(r) for r in new]
    total, vat = totals(new)
    summary = {"rows": after, "total": str(total), "vat": str(vat)}
    if before != [{**a, "id": b["id"]} for a, b in zip(after, before, strict=False)] or len(
            before) != len(after):
        records.record_event(
            session, actor, entity=entity, entity_id=record.id, action="product_rows_changed",
            event_type=f"{entity}.product_rows_changed",
            changes={"product_rows": [[brief(r) for r in before], [brief(r) for r in after]]},
            payload=summary, responsible_id=record.responsible_id)
    if follow and new:
        records.update(session, actor, entity, record.id, {"amount": total})
        record.amount_from_rows = True
    else:
        record.amount_from_rows = False
    session.flush()
    return new


def brief(row: dict[str, Any]) -> str:
    return f"{row['name']} × {row['quantity']} = {row['total']}"
