"""Online-store orders: one order → a contact (found by phone or e-mail, else created) and a
deal with product rows; taken once per (store, order number) however often it is sent.

Rows: an item whose SKU is in the catalog becomes a row of that product (its name, unit and
VAT; the order's price when given); an unknown SKU becomes a free row with the item's name,
and the answer carries a warning. The deal's amount follows the rows, so the large-deal rule
applies (``deal.updated`` with the amount); ``order.received`` is written for processes that
start on it. Everything through the CRM services, in the caller's transaction.

Orders also come as a file: JSON (an order or a list of them) or CSV, one line per item
(``store;number;customer;phone;email;sku;name;quantity;price``), see :func:`parse_file`.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_models.catalog import Product
from crm_models.errors import ValidationFailed
from crm_models.permissions import Actor
from crm_models.services import product_rows, records
from crm_models.services.duplicates import candidates

from .models import StoreOrder
from .reader import detect_delimiter, detect_encoding

ORDER_KEYS = ("store", "number", "customer", "items", "currency", "comment")
CUSTOMER_KEYS = ("name", "first_name", "last_name", "phone", "email")
ITEM_KEYS = ("sku", "name", "quantity", "price", "vat_rate")
MAX_ITEMS = 500
CSV_COLUMNS = ("store", "number", "customer", "phone", "email", "sku", "name", "quantity",
               "price")


@dataclass
class OrderResult:
    order: StoreOrder
    created: bool
    warnings: list[str] = field(default_factory=list)


def _text(body: dict[str, Any], key: str, errors: dict[str, str], *, path: str = "",
          required: bool = False, max_length: int = 255) -> str:
    value = body.get(key)
    name = f"{path}{key}"
    if value is None or value == "":
        if required:
            errors[name] = "is required"
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        errors[name] = "must be a string"
        return ""
    value = value.strip()
    if len(value) > max_length or "\x00" in value:
        errors[name] = f"must be text of at most {max_length} characters"
        return ""
    if required and not value:
        errors[name] = "is required"
    return value


def _check(body: Any) -> dict[str, Any]:
    """The order's shape, or ValidationFailed naming every bad field (``items[2].sku``)."""
    if not isinstance(body, dict):
        raise ValidationFailed({"body": "must be an order object"})
    errors: dict[str, str] = {}
    for key in body:
        if key not in ORDER_KEYS:
            errors[str(key)[:60]] = "is not a field of an order"
    out: dict[str, Any] = {
        "store": _text(body, "store", errors, required=True, max_length=100),
        "number": _text(body, "number", errors, required=True, max_length=100),
        "currency": (_text(body, "currency", errors, max_length=3) or "RUB").upper(),
        "comment": _text(body, "comment", errors, max_length=20000),
    }
    customer = body.get("customer")
    if not isinstance(customer, dict):
        errors["customer"] = "must be an object with name, phone, email"
        customer = {}
    for key in customer:
        if key not in CUSTOMER_KEYS:
            errors[f"customer.{str(key)[:40]}"] = "is not a field of a customer"
    out["customer"] = {k: _text(customer, k, errors, path="customer.") for k in CUSTOMER_KEYS}
    if customer and not (out["customer"]["phone"] or out["customer"]["email"]):
        errors["customer.phone"] = "a customer needs a phone or an e-mail"
    items = body.get("items")
    if not isinstance(items, list) or not items or len(items) > MAX_ITEMS:
        errors["items"] = f"must be a list of 1 to {MAX_ITEMS} items"
        items = []
    out["items"] = []
    for i, item in enumerate(items):
        at = f"items[{i}]."
        if not isinstance(item, dict):
            errors[f"items[{i}]"] = "must be an object with sku, name, quantity, price"
            continue
        for key in item:
            if key not in ITEM_KEYS:
                errors[at + str(key)[:40]] = "is not a field of an item"
        sku = _text(item, "sku", errors, path=at, max_length=100)
        name = _text(item, "name", errors, path=at)
        if not sku and not name:
            errors[at + "sku"] = "an item needs a SKU or a name"
        out["items"].append({"sku": sku, "name": name, "quantity": item.get("quantity", 1),
                             "price": item.get("price"), "vat_rate": item.get("vat_rate")})
    if errors:
        raise ValidationFailed(errors)
    return out


def take_order(session: Session, actor: Actor, body: Any) -> OrderResult:
    """Take one order (see the module docstring): the existing one when (store, number) was
    taken before, else the new contact/deal. The caller commits."""
    order = _check(body)
    existing = session.scalar(select(StoreOrder).where(StoreOrder.store == order["store"],
                                                       StoreOrder.number == order["number"]))
    if existing is not None:
        return OrderResult(existing, False, list(existing.warnings))
    actor.require("deal", "add")
    try:
        return _take(session, actor, order)
    except IntegrityError:  # the same order, taken by a parallel request first
        existing = session.scalar(select(StoreOrder).where(
            StoreOrder.store == order["store"], StoreOrder.number == order["number"]))
        if existing is None:
            raise
        return OrderResult(existing, False, list(existing.warnings))


def _take(session: Session, actor: Actor, order: dict[str, Any]) -> OrderResult:
    with session.begin_nested():
        contact_id = _contact(session, actor, order["customer"])
        rows, warnings = _rows(session, order)
        deal = records.create(session, actor, "deal", {
            "title": f"Заказ {order['number']} ({order['store']})"[:255],
            "currency": order["currency"], "source": "WEB", "comments": order["comment"],
            "contact_ids": [contact_id] if contact_id else []})
        try:
            product_rows.set_product_rows(session, actor, "deal", deal.id, rows,
                                          amount_from_rows=True)
        except ValidationFailed as exc:  # name the order's items, not the deal's rows
            raise ValidationFailed({k.replace("rows[", "items[", 1): v
                                    for k, v in exc.fields.items()}) from None
        stored = StoreOrder(store=order["store"], number=order["number"], deal_id=deal.id,
                            contact_id=contact_id, warnings=warnings)
        session.add(stored)
        session.flush()
        records.record_event(
            session, actor, entity="deal", entity_id=deal.id, action="order_received",
            event_type="order.received", changes={},
            payload={"store": order["store"], "number": order["number"], "deal_id": deal.id,
                     "contact_id": contact_id, "amount": str(deal.amount or Decimal("0.00")),
                     "currency": deal.currency, "warnings": warnings},
            responsible_id=deal.responsible_id)
    return OrderResult(stored, True, warnings)


def _contact(session: Session, actor: Actor, customer: dict[str, str]) -> int | None:
    phones = [customer["phone"]] if customer["phone"] else []
    emails = [customer["email"]] if customer["email"] else []
    if not phones and not emails:
        return None
    found = candidates(session, actor, "contact", phones=phones, emails=emails, limit=1)
    if found:
        return int(found[0].record.id)
    first, last = customer["first_name"], customer["last_name"]
    if not first and not last:
        first, _, last = customer["name"].partition(" ")
    if not first and not last:
        first = customer["email"] or customer["phone"]
    try:
        contact = records.create(session, actor, "contact", {
            "first_name": first[:100], "last_name": last[:100], "phones": phones,
            "emails": emails})
    except ValidationFailed as exc:
        raise ValidationFailed({f"customer.{k.rstrip('s')}" if k in ("phones", "emails")
                                else f"customer.{k}": v for k, v in exc.fields.items()}) \
            from None
    return int(contact.id)


def _rows(session: Session, order: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    skus = {i["sku"] for i in order["items"] if i["sku"]}
    products = {p.sku: p for p in session.scalars(
        select(Product).where(Product.sku.in_(skus), Product.active.is_(True)))} if skus else {}
    rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    for i, item in enumerate(order["items"]):
        row: dict[str, Any] = {"quantity": item["quantity"]}
        if item["price"] not in (None, ""):
            row["price"] = item["price"]
        if item["vat_rate"] not in (None, ""):
            row["vat_rate"] = item["vat_rate"]
        product = products.get(item["sku"])
        if product is not None and product.currency == order["currency"]:
            row["product_id"] = product.id
        else:
            row["name"] = item["name"] or item["sku"]
            row.setdefault("price", None)
            if item["sku"]:
                warnings.append(f"items[{i}]: unknown SKU '{item['sku'][:100]}', "
                                "added as a free row")
        rows.append(row)
    return rows, warnings


def parse_file(content: bytes) -> list[dict[str, Any]]:
    """Orders from a JSON file (an order, or a list of orders) or a CSV file with the
    columns of ``CSV_COLUMNS`` (header row; one line per item, lines of one order together).
    ValidationFailed names the line for a CSV problem."""
    encoding = detect_encoding(content[:65536])
    try:
        text = content.decode(encoding)
    except UnicodeDecodeError:
        raise ValidationFailed({"file": f"the file is not valid {encoding} text"}) from None
    if text.lstrip().startswith(("{", "[")):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValidationFailed({"file": f"broken JSON: {exc}"}) from None
        return data if isinstance(data, list) else [data]
    lines = text.lstrip("\ufeff").splitlines()
    if not lines:
        raise ValidationFailed({"file": "the file is empty"})
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=detect_delimiter(lines[0]))
    header = [h.strip().casefold() for h in next(reader)]
    missing = [c for c in ("store", "number") if c not in header]
    if missing:
        raise ValidationFailed({"file": f"row 1: the column '{missing[0]}' is missing"})
    orders: dict[tuple[str, str], dict[str, Any]] = {}
    for number, cells in enumerate(reader, start=2):
        row = dict(zip(header, (c.strip() for c in cells), strict=False))
        if not any(row.values()):
            continue
        key = (row.get("store", ""), row.get("number", ""))
        order = orders.setdefault(key, {
            "store": key[0], "number": key[1], "items": [],
            "customer": {"name": row.get("customer", ""), "phone": row.get("phone", ""),
                         "email": row.get("email", "")}})
        order["items"].append({"sku": row.get("sku", ""), "name": row.get("name", ""),
                               "quantity": (row.get("quantity") or "1").replace(",", "."),
                               "price": (row.get("price") or "").replace(" ", "")
                               .replace(",", ".") or None})
        if len(order["items"]) > MAX_ITEMS:
            raise ValidationFailed({"file": f"row {number}: more than {MAX_ITEMS} items"})
    return list(orders.values())
