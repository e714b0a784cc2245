"""Invoices as Bitrix24's "smart invoices": ``crm.item.add/get/list/update/fields`` with
``entityTypeId=31`` (the only type we keep), over the invoice service functions.

As in Bitrix24, an item added with ``parentId2`` (a deal's id) belongs to that deal and takes
its product rows, buyer and currency. Without a deal, ``companyId`` and/or ``contactId`` name
the buyer and ``productRows`` (Bitrix24's row fields, camelCase as ``crm.item.productrow.*``
sends them — ``productId``, ``productName``, ``price``, ``quantity``, ``discountTypeId``,
``discountRate``/``discountSum``, ``taxRate``, ``taxIncluded``, ``measureCode`` — or the
upper-case names of ``crm.deal.productrows.set``) the rows. ``update`` changes a draft's
``closedate`` (due date), buyer, ``comments`` and ``productRows``, and ``stageId`` moves it.

Stage ids are ours, in Bitrix24's form (pipeline 1 of type 31): ``DT31_1:N`` draft,
``DT31_1:S`` sent, ``DT31_1:P`` paid, ``DT31_1:O`` overdue, ``DT31_1:D`` cancelled.
"""
from __future__ import annotations

import re
from typing import Any

from crm_models.errors import ValidationFailed
from crm_models.services import invoices as inv_svc
from strictnum import NumberError, parse_int

from .catalog_methods import row_in
from .crm_methods import fields_param, int_param, start_param
from .envelope import PAGE, BitrixError, ListResult
from .registry import CallContext, method

INVOICE_TYPE = 31
STAGES = {"draft": "DT31_1:N", "sent": "DT31_1:S", "paid": "DT31_1:P",
          "overdue": "DT31_1:O", "cancelled": "DT31_1:D"}
STAGE_BY_ID = {v: k for k, v in STAGES.items()}
#: Bitrix24 item field (lower-cased) → our keyword for create/update.
ITEM_FIELDS = {"parentid2": "deal_id", "companyid": "company_id", "contactid": "contact_id",
               "begindate": "issued_on", "closedate": "due_on", "currencyid": "currency",
               "comments": "comments", "productrows": "rows"}
NAMES = {"deal_id": "parentId2", "company_id": "companyId", "contact_id": "contactId",
         "issued_on": "begindate", "due_on": "closedate", "currency": "currencyId",
         "comments": "comments", "rows": "productRows", "stage": "stageId",
         "buyer_inn": "ufCrmInn", "buyer_kpp": "ufCrmKpp"}
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _type(params: dict[str, Any]) -> None:
    raw = params.get("entitytypeid")
    try:
        value = parse_int(raw, minimum=1, maximum=10**6)
    except NumberError:
        raise BitrixError(400, "INVALID_ARG_VALUE",
                          "Parameter 'entityTypeId' is required") from None
    if value != INVOICE_TYPE:
        raise BitrixError(400, "NOT_FOUND", f"Smart process {value} not found; only invoices "
                                            f"(entityTypeId={INVOICE_TYPE}) are kept here")


def _day(value: Any) -> str | None:
    return value.isoformat() + "T00:00:00+03:00" if value is not None else None


def item_out(inv: Any) -> dict[str, Any]:
    return {
        "id": inv.id, "entityTypeId": INVOICE_TYPE, "title": f"Счёт № {inv.number}",
        "accountNumber": inv.number, "stageId": STAGES[inv.stage], "categoryId": 1,
        "begindate": _day(inv.issued_on), "closedate": _day(inv.due_on),
        "opportunity": float(inv.total), "taxValue": float(inv.vat),
        "currencyId": inv.currency, "parentId2": inv.deal_id, "companyId": inv.company_id,
        "contactId": inv.contact_id, "assignedById": inv.responsible_id,
        "createdBy": inv.created_by_id, "comments": inv.comments, "opened": "Y" if inv.opened
        else "N", "createdTime": inv.created_at.isoformat(),
        "updatedTime": inv.updated_at.isoformat(), "ufCrmInn": inv.buyer_inn,
        "ufCrmKpp": inv.buyer_kpp}


def _row(raw: Any) -> Any:
    """A camelCase row (``productId`` …) as the upper-case one ``row_in`` reads."""
    if not isinstance(raw, dict):
        return raw
    return row_in({(_CAMEL.sub("_", str(k)) if any(c.islower() for c in str(k)) else str(k)
                    ).upper(): v for k, v in raw.items()})


def _rows(value: Any) -> Any:
    if isinstance(value, dict):  # form-encoded productRows[0][...] arrive by index
        value = [value[k] for k in sorted(value, key=lambda k: int(k) if str(k).isdigit()
                                          else 0)]
    return [_row(r) for r in value] if isinstance(value, list) else value


def _fields_in(params: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """(our keywords, the stage wanted or None) from ``fields``; unknown fields ignored."""
    out: dict[str, Any] = {}
    stage = None
    for key, value in fields_param(params).items():
        k = str(key).lower()
        if k == "stageid":
            stage = STAGE_BY_ID.get(str(value).strip().upper(), value)
            if stage not in STAGES:
                raise ValidationFailed({"stageId": "must be one of: " + ", ".join(
                    STAGES.values())})
        elif k in ("ufcrminn", "ufcrmkpp"):
            out["buyer_" + k[-3:]] = value
        elif k in ITEM_FIELDS:
            ours = ITEM_FIELDS[k]
            if ours in ("issued_on", "due_on") and isinstance(value, str):
                value = value.strip()[:10]  # a Bitrix24 date-time: its day
            if ours in ("deal_id", "company_id", "contact_id") and value in (0, "0"):
                value = None
            out[ours] = _rows(value) if ours == "rows" else value
    return out, stage


def _named(exc: ValidationFailed) -> ValidationFailed:
    out = {}
    for key, msg in exc.fields.items():
        head, dot, rest = key.partition(".")
        if head.startswith("rows["):
            out["productRows" + head[4:] + dot + rest] = msg
        else:
            out[NAMES.get(key, key)] = msg
    return ValidationFailed(out)


def _item(ctx: CallContext, invoice_id: int) -> dict[str, Any]:
    return {"item": item_out(inv_svc.get_invoice(ctx.session, ctx.actor, invoice_id))}


@method("crm.item.add", "crm")
def item_add(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    _type(params)
    try:
        data, stage = _fields_in(params)
        inv = inv_svc.create_invoice(ctx.session, ctx.actor, **data)
        if stage not in (None, "draft"):
            inv_svc.change_invoice_stage(ctx.session, ctx.actor, inv.id, stage)
    except ValidationFailed as exc:
        raise _named(exc) from None
    return _item(ctx, inv.id)


@method("crm.item.get", "crm")
def item_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    _type(params)
    return _item(ctx, int_param(params, "id"))


@method("crm.item.update", "crm")
def item_update(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Draft fields first, then the stage (so a draft can be corrected and sent at once)."""
    _type(params)
    invoice_id = int_param(params, "id")
    try:
        data, stage = _fields_in(params)
        for key in ("deal_id", "issued_on", "currency"):
            if key in data:
                raise ValidationFailed({key: "cannot be changed on an invoice"})
        if data:
            inv_svc.update_invoice(ctx.session, ctx.actor, invoice_id, **data)
        if stage is not None:
            inv_svc.change_invoice_stage(ctx.session, ctx.actor, invoice_id, stage)
    except ValidationFailed as exc:
        raise _named(exc) from None
    return _item(ctx, invoice_id)


@method("crm.item.list", "crm")
def item_list(ctx: CallContext, params: dict[str, Any]) -> ListResult:
    """``filter`` on ``parentId2`` (a deal), ``stageId``, ``companyId``, ``contactId``,
    ``>id`` (keyset paging); newest first unless ``order`` is ``{id: ASC}``."""
    _type(params)
    flt = params.get("filter") or {}
    if not isinstance(flt, dict):
        raise BitrixError(400, "INVALID_ARG_VALUE", "Parameter 'filter' must be array.")
    flt = {str(k).lower(): v for k, v in flt.items()}
    unknown = set(flt) - {"parentid2", "stageid", "companyid", "contactid", ">id", "=stageid",
                          "=parentid2"}
    if unknown:
        raise BitrixError(400, "INVALID_ARG_VALUE",
                          f"Cannot filter invoices by '{sorted(unknown)[0][:40]}'")
    stage = flt.get("stageid", flt.get("=stageid"))
    if stage not in (None, ""):
        stage = STAGE_BY_ID.get(str(stage).strip().upper(), str(stage)[:40])
    order = params.get("order")
    ascending = isinstance(order, dict) and any(
        str(k).lower() == "id" and str(v).upper() == "ASC" for k, v in order.items())
    start = start_param(params)
    offset = max(start, 0)
    try:
        items, total = inv_svc.list_invoices_window(
            ctx.session, ctx.actor, deal_id=flt.get("parentid2", flt.get("=parentid2")),
            stage=stage, company_id=flt.get("companyid"), contact_id=flt.get("contactid"),
            id_after=flt.get(">id"), ascending=ascending or ">id" in flt, offset=offset,
            limit=PAGE, with_total=start != -1)
    except ValidationFailed as exc:
        raise _named(exc) from None
    rows = [item_out(i) for i in items]
    nxt = offset + len(rows) if total is not None and offset + len(rows) < total else None
    return ListResult({"items": rows}, total, nxt)


@method("crm.item.fields", "crm")
def item_fields(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    _type(params)
    names = [
        "id", "title", "accountNumber", "stageId", "begindate", "closedate", "opportunity",
        "taxValue", "currencyId", "parentId2", "companyId", "contactId", "assignedById",
        "createdBy", "comments", "opened", "createdTime", "updatedTime", "ufCrmInn",
        "ufCrmKpp"]
    writable = {"parentId2", "companyId", "contactId", "begindate", "closedate",
                "currencyId", "comments", "stageId", "ufCrmInn", "ufCrmKpp"}
    return {"fields": {n: {"type": "string", "isRequired": False,
                           "isReadOnly": n not in writable, "isImmutable": n in (
                               "parentId2", "begindate", "currencyId"),
                           "isMultiple": False, "title": n} for n in names}}
