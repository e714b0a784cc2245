"""``crm.lead|deal|contact|company.add/get/list/update/delete/fields`` and our own
``crm.lead.convert``: Bitrix24 names in, the CRM service functions underneath."""
from __future__ import annotations

from typing import Any

from crm_models.errors import ValidationFailed
from crm_models.services import convert_lead, get_record
from crm_models.services import crm as crm_services
from crm_models.services.records import list_records
from integrations.bitrix_fields import (
    FIELDS,
    descriptors,
    from_bitrix,
    to_bitrix,
    translate_errors,
)
from integrations.bitrix_query import build_list_query
from strictnum import MAX_ROW_ID, NumberError, parse_id, parse_int

from .envelope import PAGE, BitrixError, ListResult
from .registry import CallContext, method

ENTITIES = ("lead", "deal", "contact", "company")


def record_id(params: dict[str, Any], key: str = "id") -> int:
    """The row id in ``params[key]`` (1 … ``MAX_ROW_ID``, ASCII digits), or Bitrix24's legacy
    error."""
    try:
        return parse_id(params.get(key))
    except NumberError:
        raise BitrixError(400, "", "ID is not defined or invalid.") from None


def int_param(params: dict[str, Any], key: str, *, code: str = "INVALID_ARG_VALUE",
              minimum: int | None = 1, maximum: int | None = MAX_ROW_ID,
              signed: bool = False) -> int:
    """The whole number in ``params[key]``, or a 400 naming the parameter (``code`` is ""
    for the legacy ``crm.*`` methods)."""
    try:
        return parse_int(params.get(key), minimum=minimum, maximum=maximum, signed=signed)
    except NumberError as exc:
        raise BitrixError(400, code, f"Parameter '{key.upper()}' {exc}.") from None


def fields_param(params: dict[str, Any]) -> dict[str, Any]:
    fields = params.get("fields")
    if fields in (None, "", []):
        fields = {}
    if not isinstance(fields, dict):
        raise BitrixError(400, "", "Parameter 'fields' must be array.")
    return fields


def start_param(params: dict[str, Any]) -> int:
    """Bitrix24's ``start``: an offset (pages are always 50 rows), or -1 for "no count"."""
    raw = params.get("start", 0)
    if raw in (None, ""):
        return 0
    try:
        return parse_int(raw, minimum=-1, maximum=10**9, signed=True)
    except NumberError:
        raise BitrixError(400, "", "Parameter 'start' must be a non-negative whole number "
                                   "or -1.") from None


def fetch_page(ctx: CallContext, entity: str, *, filters: dict[str, Any],
               search: str | None, sort: str | None, start: int) -> tuple[list[Any], int | None]:
    """Rows ``start`` … ``start+49`` through ``list_records`` (which pages by 50, so an
    offset between page boundaries reads two pages); total is None for ``start=-1``."""
    with_total = start != -1
    offset = max(start, 0)
    first = offset // PAGE + 1
    page = list_records(ctx.session, ctx.actor, entity, filters=filters, search=search,
                        sort=sort or "id", page=first, per_page=PAGE, with_total=with_total)
    rows = list(page.items)
    skip = offset % PAGE
    if skip:
        rows = rows[skip:]
        if len(page.items) == PAGE:
            more = list_records(ctx.session, ctx.actor, entity, filters=filters, search=search,
                                sort=sort or "id", page=first + 1, per_page=PAGE,
                                with_total=False)
            rows += list(more.items)[:skip]
    return rows, (page.total if with_total else None)


def _translated(entity: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ValidationFailed as exc:
        raise translate_errors(entity, exc) from None


def _register(entity: str) -> None:
    create = getattr(crm_services, f"create_{entity}")
    update = getattr(crm_services, f"update_{entity}")
    delete = getattr(crm_services, f"delete_{entity}")

    @method(f"crm.{entity}.add", "crm", legacy=True)
    def add(ctx: CallContext, params: dict[str, Any]) -> int:
        data = _translated(entity, from_bitrix, entity, fields_param(params),
                           session=ctx.session)
        record = _translated(entity, create, ctx.session, ctx.actor, **data)
        return int(record.id)

    @method(f"crm.{entity}.get", "crm", legacy=True)
    def get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        record = get_record(ctx.session, ctx.actor, entity, record_id(params))
        return to_bitrix(entity, record, tz=ctx.tz)

    @method(f"crm.{entity}.list", "crm", legacy=True)
    def list_(ctx: CallContext, params: dict[str, Any]) -> ListResult:
        q = _translated(entity, build_list_query, entity, params, tz=ctx.tz)
        start = start_param(params)
        rows, total = _translated(entity, fetch_page, ctx, entity, filters=q.filters,
                                  search=q.search, sort=q.sort, start=start)
        items = [to_bitrix(entity, r, tz=ctx.tz, select=q.select) for r in rows]
        nxt = None
        if total is not None and start + len(items) < total and items:
            nxt = start + len(items)
        return ListResult(items, total, nxt)

    @method(f"crm.{entity}.update", "crm", legacy=True)
    def update_(ctx: CallContext, params: dict[str, Any]) -> bool:
        rid = record_id(params)
        record = get_record(ctx.session, ctx.actor, entity, rid)
        data = _translated(entity, from_bitrix, entity, fields_param(params), record=record,
                           session=ctx.session)
        _translated(entity, update, ctx.session, ctx.actor, rid, **data)
        return True

    @method(f"crm.{entity}.delete", "crm", legacy=True)
    def delete_(ctx: CallContext, params: dict[str, Any]) -> bool:
        delete(ctx.session, ctx.actor, record_id(params))
        return True

    @method(f"crm.{entity}.fields", "crm", legacy=True)
    def fields(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return descriptors(entity, ctx.locale)


for _entity in ENTITIES:
    _register(_entity)


@method("crm.lead.convert", "crm", legacy=True)
def lead_convert(ctx: CallContext, params: dict[str, Any]) -> dict[str, str | None]:
    """Ours (Bitrix24 has no such REST method): convert a lead into a contact, a company and a
    deal; ``fields`` may override deal fields in Bitrix24 names (TITLE, CATEGORY_ID …)."""
    overrides = _translated("deal", from_bitrix, "deal", fields_param(params),
                            session=ctx.session)
    done = _translated("deal", convert_lead, ctx.session, ctx.actor, record_id(params),
                       deal=overrides)

    def sid(obj: Any) -> str | None:
        return str(obj.id) if obj is not None else None

    return {"LEAD_ID": sid(done.lead), "DEAL_ID": sid(done.deal),
            "CONTACT_ID": sid(done.contact), "COMPANY_ID": sid(done.company)}


assert set(FIELDS) == set(ENTITIES)
