"""Online-store orders over REST: ``POST /api/v1/orders`` (idempotent by store + number) and
``POST /api/v1/orders/file`` (a JSON or CSV file of orders)."""
from __future__ import annotations

from typing import Any

from flask import request

from crm_models.errors import ValidationFailed
from integrations.imports.orders import OrderResult, parse_file, take_order

from .common import api_route, commit, db_actor, json_body, ref

MAX_FILE_BYTES = 8 * 1024 * 1024


def _out(result: OrderResult) -> dict[str, Any]:
    o = result.order
    return {"id": o.id, "store": o.store, "number": o.number, "deal_id": o.deal_id,
            "contact_id": o.contact_id, "created": result.created,
            "warnings": list(result.warnings)}


@api_route("/orders", methods=("POST",), tag="orders", endpoint="order_create", status=201,
           body=ref("StoreOrderInput"), response=ref("StoreOrder"), extra={"also": (200,)},
           summary="Take an online-store order: contact (deduplicated), deal with product "
                   "rows, order.received. Sending the same store + number again changes "
                   "nothing and answers 200 with the first result.")
def order_create() -> Any:
    body = json_body()
    db, actor = db_actor()
    result = take_order(db, actor, body)
    commit()
    return _out(result), 201 if result.created else 200


@api_route("/orders/file", methods=("POST",), tag="orders", endpoint="order_file",
           body={"type": "object", "description": "multipart/form-data with a 'file' part: "
                 "JSON (an order or a list) or CSV (store;number;customer;phone;email;sku;"
                 "name;quantity;price, one line per item)"}, body_required=False,
           response={"type": "object", "properties": {
               "orders": {"type": "array", "items": ref("StoreOrder")},
               "errors": {"type": "array", "items": {"type": "object"}}}},
           summary="Take the orders of a JSON or CSV file; each order on its own")
def order_file() -> Any:
    upload = request.files.get("file")
    if upload is None:
        raise ValidationFailed({"file": "is required (multipart/form-data)"})
    content = upload.stream.read(MAX_FILE_BYTES + 1)
    if len(content) > MAX_FILE_BYTES:
        raise ValidationFailed({"file": f"must be at most {MAX_FILE_BYTES} bytes"})
    db, actor = db_actor()
    out: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for i, body in enumerate(parse_file(content)):
        try:
            result = take_order(db, actor, body)
            commit()
            out.append(_out(result))
        except ValidationFailed as exc:
            db.rollback()
            number = body.get("number") if isinstance(body, dict) else None
            errors.append({"index": i, "number": number, "fields": exc.fields})
    return {"orders": out, "errors": errors}
