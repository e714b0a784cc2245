"""CRM records over REST: leads, deals, contacts and companies (list/get/create/update/delete),
deal stage moves, lead conversion, pipelines and the field schemas.

One generic view per action serves all four entities; the route table below registers it
once per entity (``defaults={"entity": ...}``), so adding an entity is one line in
``SERVICES``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from crm_models import services as svc
from crm_models.entities import Pipeline, Stage
from crm_models.errors import NotFound, ValidationFailed
from crm_models.fields import SCHEMAS
from crm_models.serialize import to_dict
from crm_models.setup import stage_label

from .common import (
    Operation,
    add_route,
    api_route,
    commit,
    db_actor,
    entity_keys,
    json_body,
    list_of,
    list_params,
    only_keys,
    page_json,
    ref,
)


@dataclass(frozen=True)
class EntityServices:
    plural: str
    create: Callable[..., Any]
    update: Callable[..., Any]
    delete: Callable[..., None]
    get: Callable[..., Any]
    list: Callable[..., svc.Page]


SERVICES: dict[str, EntityServices] = {
    "lead": EntityServices("leads", svc.create_lead, svc.update_lead, svc.delete_lead,
                           svc.get_lead, svc.list_leads),
    "deal": EntityServices("deals", svc.create_deal, svc.update_deal, svc.delete_deal,
                           svc.get_deal, svc.list_deals),
    "contact": EntityServices("contacts", svc.create_contact, svc.update_contact,
                              svc.delete_contact, svc.get_contact, svc.list_contacts),
    "company": EntityServices("companies", svc.create_company, svc.update_company,
                              svc.delete_company, svc.get_company, svc.list_companies),
}
PLURAL_TO_ENTITY = {s.plural: e for e, s in SERVICES.items()}


def schema_name(entity: str) -> str:
    return entity.capitalize()


# --- generic views ---------------------------------------------------------------------------

def list_records(entity: str) -> Any:
    db, actor = db_actor()
    page = SERVICES[entity].list(db, actor, **list_params())
    return page_json([to_dict(r) for r in page.items], page.total, page.page, page.per_page,
                     page.next)


def get_record(entity: str, record_id: int) -> Any:
    db, actor = db_actor()
    return to_dict(SERVICES[entity].get(db, actor, record_id))


def create_record(entity: str) -> Any:
    body = json_body()
    entity_keys(entity, body, partial=False)
    db, actor = db_actor()
    record = SERVICES[entity].create(db, actor, **body)
    commit()  # the rules route the record at commit: the reply shows it as routed
    out = to_dict(record)
    location = url_for(f"api.{entity}_get", record_id=record.id)
    return out, 201, {"Location": location}


def update_record(entity: str, record_id: int) -> Any:
    """PATCH (and PUT, as its alias) change only the fields given."""
    body = json_body()
    entity_keys(entity, body, partial=True)
    db, actor = db_actor()
    record = SERVICES[entity].update(db, actor, record_id, **body)
    commit()  # as committed, after the rules ran
    return to_dict(record)


def delete_record(entity: str, record_id: int) -> Any:
    db, actor = db_actor()
    SERVICES[entity].delete(db, actor, record_id)
    commit()
    return "", 204


def _register_entity_routes() -> None:
    for entity, s in SERVICES.items():
        name, base, item = schema_name(entity), f"/{s.plural}", f"/{s.plural}/<id:record_id>"
        d = {"entity": entity}
        add_route(base, f"{entity}_list", list_records, ["GET"], Operation(
            f"List {s.plural} the caller may read (filters, search, sort, pages)", s.plural,
            response=ref(f"{name}Page"), query=("list",), entity=entity), d)
        add_route(base, f"{entity}_create", create_record, ["POST"], Operation(
            f"Create a {entity}", s.plural, body=ref(f"{name}Create"), response=ref(name),
            status=201, entity=entity), d)
        add_route(item, f"{entity}_get", get_record, ["GET"], Operation(
            f"Get one {entity}", s.plural, response=ref(name), entity=entity), d)
        add_route(item, f"{entity}_update", update_record, ["PATCH", "PUT"], Operation(
            f"Change some fields of a {entity} (PUT is an alias of PATCH)", s.plural,
            body=ref(f"{name}Update"), response=ref(name), entity=entity), d)
        add_route(item, f"{entity}_delete", delete_record, ["DELETE"], Operation(
            f"Delete a {entity}", s.plural, status=204, entity=entity), d)


_register_entity_routes()


# --- deal stage and lead conversion ----------------------------------------------------------

@api_route("/deals/<id:record_id>/stage", methods=("POST",), tag="deals",
           summary="Move a deal to another stage of its pipeline",
           body=ref("StageChange"), response=ref("Deal"))
def deal_stage(record_id: int) -> Any:
    body = json_body()
    only_keys(body, ("stage",), "a stage change")
    db, actor = db_actor()
    deal = svc.change_deal_stage(db, actor, record_id, body.get("stage"))
    commit()
    return to_dict(deal)


@api_route("/leads/<id:record_id>/convert", methods=("POST",), tag="leads", status=201,
           summary="Convert a lead into a contact, a company and a deal",
           body=ref("ConversionRequest"), body_required=False, response=ref("Conversion"))
def lead_convert(record_id: int) -> Any:
    body = json_body(required=False)
    only_keys(body, ("deal", "company_id", "contact_id"), "a conversion")
    overrides = body.get("deal")
    if overrides is not None and not isinstance(overrides, dict):
        raise ValidationFailed({"deal": "must be an object of deal fields"})
    existing = {}
    for key in ("company_id", "contact_id"):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValidationFailed({key: "must be a whole number"})
        existing[key] = value
    db, actor = db_actor()
    result = svc.convert_lead(db, actor, record_id, deal=overrides or None, **existing)
    out = {
        "lead_id": result.lead.id, "deal_id": result.deal.id,
        "contact_id": result.contact.id if result.contact else None,
        "company_id": result.company.id if result.company else None,
        "lead": to_dict(result.lead), "deal": to_dict(result.deal),
        "contact": to_dict(result.contact) if result.contact else None,
        "company": to_dict(result.company) if result.company else None,
    }
    commit()
    return out, 201


@api_route("/leads/<id:record_id>/conversion-preview", tag="leads",
           summary="What converting this lead would create, without writing anything",
           response=ref("ConversionPreview"))
def lead_conversion_preview(record_id: int) -> Any:
    db, actor = db_actor()
    return svc.conversion_preview(db, actor, record_id)


# --- reference data --------------------------------------------------------------------------

def stage_dict(stage: Stage) -> dict[str, Any]:
    return {"id": stage.id, "code": stage.code, "name": stage.name,
            "name_en": stage_label(stage.code, "en") or stage.name, "sort": stage.sort,
            "semantics": stage.semantics, "color": stage.color}


@api_route("/pipelines", tag="reference", summary="Deal pipelines with their stages",
           response=list_of("Pipeline"))
def pipelines() -> Any:
    db, _actor = db_actor()
    rows = db.scalars(select(Pipeline).options(selectinload(Pipeline.stages))
                      .order_by(Pipeline.sort, Pipeline.id))
    return {"items": [{"id": p.id, "name": p.name, "sort": p.sort,
                       "stages": [stage_dict(s) for s in p.stages]} for p in rows]}


def field_schema(entity: str, stage_codes: list[str]) -> list[dict[str, Any]]:
    """The entity's fields as the process editor's condition builder reads them."""
    out = []
    for f in SCHEMAS[entity]:
        choices = list(f.choices) if f.kind != "stage" else stage_codes
        out.append({
            "name": f.name, "type": f.kind, "json_type": f.json_type, "required": f.required,
            "readonly": f.readonly, "choices": choices, "ref": f.ref or None,
            "max_length": f.max_length if f.kind in ("string", "text") else None,
            "minimum": f.minimum, "maximum": f.maximum,
            "labels": {"ru": f.label_ru, "en": f.label_en},
        })
    return out


@api_route("/fields/<entity_name>", tag="reference", response=ref("FieldList"),
           summary="The field schema of a CRM entity (lead, deal, contact or company)")
def fields(entity_name: str) -> Any:
    entity = PLURAL_TO_ENTITY.get(entity_name, entity_name)
    if entity not in SCHEMAS:
        raise NotFound(f"No entity '{entity_name[:40]}'; use one of: " + ", ".join(SCHEMAS))
    db, _actor = db_actor()
    codes = list(db.scalars(select(Stage.code).order_by(Stage.pipeline_id, Stage.sort)))
    return {"entity": entity, "fields": field_schema(entity, codes)}
