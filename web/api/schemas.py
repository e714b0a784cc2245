"""JSON Schemas (OpenAPI 3.1 / JSON Schema 2020-12) of what the API reads and writes.

The CRM entities' schemas are generated from ``crm_models.fields.SCHEMAS``, the same field
list that validates input, so the document cannot drift from the rules; the rest (users,
roles, activities …) are small fixed shapes written out below.
"""
from __future__ import annotations

from typing import Any

from crm_models.activity import ActivityType
from crm_models.entities import EMAIL_TYPES, PHONE_TYPES
from crm_models.fields import SCHEMAS, Field
from crm_models.org import ACTIONS, ENTITIES, FLAGS
from crm_models.services import records

from .common import ref

MONEY_PATTERN = r"^\d+\.\d{2}$"
SORTABLE_EXTRA = ("id", "created_at", "updated_at")
#: The list filters' operators, as the service defines them.
FILTER_OPS = tuple(records.FILTER_OPS)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    t = schema.get("type")
    if isinstance(t, str):
        return {**schema, "type": [t, "null"]}
    return schema


def field_json_schema(f: Field, *, writing: bool) -> dict[str, Any]:
    """One field as JSON Schema; ``writing`` describes what the API accepts, else what it
    returns (amounts come back as decimal strings, but numbers are accepted)."""
    k = f.kind
    s: dict[str, Any]
    if k in ("string", "text"):
        s = {"type": "string", "maxLength": f.max_length}
        if writing and not f.required:
            s = _nullable(s)
    elif k == "money":
        s = ({"type": ["string", "number", "null"], "examples": ["2500000.00", 1500]}
             if writing else {"type": ["string", "null"], "pattern": MONEY_PATTERN,
                              "examples": ["2500000.00"]})
    elif k == "currency":
        s = {"type": "string", "pattern": "^[A-Za-z]{3}$" if writing else "^[A-Z]{3}$",
             "examples": ["RUB"]}
    elif k == "int":
        s = _nullable({"type": "integer", **({"minimum": f.minimum} if f.minimum is not None
                                             else {}),
                       **({"maximum": f.maximum} if f.maximum is not None else {})})
    elif k in ("ref", "user"):
        s = {"type": ["integer", "null"], "minimum": 1}
    elif k == "bool":
        s = {"type": "boolean"}
    elif k == "date":
        s = {"type": ["string", "null"], "format": "date"}
    elif k == "enum":
        s = {"type": "string", "enum": [*f.choices, ""]}
        if writing:
            s = {"type": ["string", "null"], "enum": [*f.choices, "", None]}
    elif k == "stage":
        s = {"type": "string", "maxLength": f.max_length}
    elif k == "inn":
        s = {"type": "string", "maxLength": f.max_length, "examples": ["7707083893"]}
        if writing:
            s = {"type": ["string", "null"], "pattern": r"^(\d{10}|\d{12})?$",
                 "examples": ["7707083893"]}
    elif k == "refs":
        s = {"type": "array", "items": {"type": "integer", "minimum": 1}, "maxItems": 500}
    elif k in ("phones", "emails"):
        s = {"type": "array", "maxItems": 50, "items": ref("Phone" if k == "phones" else "Email")}
    else:  # a kind added to fields.py without a schema here: still a valid document
        s = {}
    s["title"] = f.label_en
    s["x-label-ru"] = f.label_ru
    if f.readonly:
        s["readOnly"] = True
    return s


def entity_schemas(entity: str) -> dict[str, dict[str, Any]]:
    """``Lead``, ``LeadCreate``, ``LeadUpdate`` and ``LeadPage`` (likewise for each entity)."""
    name = entity.capitalize()
    fields = SCHEMAS[entity]
    out_props: dict[str, Any] = {"id": {"type": "integer", "readOnly": True}}
    out_props.update({f.name: field_json_schema(f, writing=False) for f in fields})
    if entity == "deal":
        out_props["stage_semantics"] = {"type": ["string", "null"],
                                        "enum": ["process", "won", "lost", None]}
    if entity == "contact":
        out_props["full_name"] = {"type": "string", "readOnly": True}
    out_props["created_by_id"] = {"type": ["integer", "null"], "readOnly": True}
    out_props["created_at"] = {"type": "string", "format": "date-time", "readOnly": True}
    out_props["updated_at"] = {"type": "string", "format": "date-time", "readOnly": True}
    writable = {f.name: field_json_schema(f, writing=True) for f in fields if not f.readonly}
    create: dict[str, Any] = {"type": "object", "properties": writable,
                              "additionalProperties": False,
                              "required": [f.name for f in fields if f.required]}
    if entity == "contact":
        create["description"] = "A contact needs a first or a last name."
    return {
        name: {"type": "object", "properties": out_props, "required": list(out_props)},
        f"{name}Create": create,
        f"{name}Update": {"type": "object", "properties": writable,
                          "additionalProperties": False},
        f"{name}Page": page_of(ref(name)),
    }


def page_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "total", "page", "per_page"],
            "properties": {"items": {"type": "array", "items": item},
                           "total": {"type": "integer", "minimum": 0},
                           "page": {"type": "integer", "minimum": 1},
                           "per_page": {"type": "integer", "minimum": 1, "maximum": 500},
                           "next": {"type": ["string", "null"],
                                    "description": "pass as 'after' for the next page (null: "
                                                   "this is the last one)"}}}


def filterable(entity: str) -> list[Field | str]:
    """What ``records.list_records`` filters on: id, the two timestamps, and every field but
    free text and contact channels."""
    return [*SORTABLE_EXTRA, *(f for f in SCHEMAS[entity]
                               if f.kind not in ("phones", "emails", "text"))]


def sortable(entity: str) -> list[str]:
    names = [f.name for f in SCHEMAS[entity] if f.kind not in ("refs", "phones", "emails")]
    return [*names, *SORTABLE_EXTRA]


def _obj(props: dict[str, Any], required: tuple[str, ...] = (), **kw: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required), **kw}


STR = {"type": "string"}
INT = {"type": "integer"}
ID = {"type": "integer", "minimum": 1}
OPT_ID = {"type": ["integer", "null"], "minimum": 1}
TIME = {"type": "string", "format": "date-time"}
OPT_TIME = {"type": ["string", "null"], "format": "date-time"}
BOOL = {"type": "boolean"}
LEVEL = {"type": "integer", "minimum": 0, "maximum": 5,
         "description": "0 none, 1 own, 2 department, 3 sub-departments, 4 open, 5 all"}
MATRIX = _obj({e: _obj({a: LEVEL for a in ACTIONS}) for e in ENTITIES})
USER_PROPS = {"id": ID, "email": {"type": "string", "format": "email"}, "full_name": STR,
              "active": BOOL, "locale": {"type": "string", "enum": ["ru", "en"]},
              "timezone": STR, "department_id": OPT_ID, "deputy_id": OPT_ID,
              "out_of_office_from": OPT_TIME, "out_of_office_until": OPT_TIME,
              "created_at": TIME}
USER_INPUT = {k: v for k, v in USER_PROPS.items() if k not in ("id", "created_at")}
USER_INPUT = {**USER_INPUT, "password": {"type": "string", "minLength": 4, "maxLength": 200,
                                         "writeOnly": True},
              "role_ids": {"type": "array", "items": ID, "description":
                           "Admins only: the user's directly granted roles, replacing them."}}
ROLE_BRIEF = _obj({"id": ID, "code": {"type": ["string", "null"]}, "name": STR},
                  ("id", "code", "name"))
USER_DETAIL = _obj({**USER_PROPS, "roles": {"type": "array", "items": ROLE_BRIEF}},
                   (*USER_PROPS, "roles"))


def static_schemas() -> dict[str, dict[str, Any]]:
    channel = {"value": STR}
    return {
        "Error": _obj({"error": _obj({
            "code": {"type": "string", "examples": ["validation_failed"]},
            "message": STR,
            "fields": {"type": "object", "additionalProperties": STR,
                       "description": "field name → what is wrong with it"},
        }, ("code", "message", "fields"))}, ("error",)),
        "Phone": _obj({**channel, "value_type": {"type": "string", "enum": list(PHONE_TYPES)}},
                      ("value",)),
        "Email": _obj({**channel, "value_type": {"type": "string", "enum": list(EMAIL_TYPES)}},
                      ("value",)),
        "StageChange": _obj({"stage": {"type": "string", "examples": ["WON"]}}, ("stage",),
                            additionalProperties=False),
        "ConversionRequest": _obj({"deal": ref("DealUpdate"), "company_id": OPT_ID,
                                   "contact_id": OPT_ID}, additionalProperties=False),
        "Conversion": _obj({
            "lead_id": ID, "deal_id": ID, "contact_id": OPT_ID, "company_id": OPT_ID,
            "lead": ref("Lead"), "deal": ref("Deal"),
            "contact": {"oneOf": [ref("Contact"), {"type": "null"}]},
            "company": {"oneOf": [ref("Company"), {"type": "null"}]},
        }, ("lead_id", "deal_id", "contact_id", "company_id", "lead", "deal", "contact",
            "company")),
        "ConversionPreview": _obj({
            "contact": {"type": ["object", "null"]}, "company": {"type": ["object", "null"]},
            "existing_company_id": OPT_ID, "deal": {"type": "object"},
            "matches": _obj({e: {"type": "array", "items": _obj(
                {"id": ID, "title": STR, "by": {"type": "array", "items": STR}})}
                for e in ("contact", "company")}),
        }, ("contact", "company", "existing_company_id", "deal", "matches")),
        "Stage": _obj({"id": ID, "code": STR, "name": STR, "name_en": STR, "sort": INT,
                       "semantics": {"type": "string", "enum": ["process", "won", "lost"]},
                       "color": STR}, ("id", "code", "name", "semantics")),
        "Pipeline": _obj({"id": {"type": "integer", "minimum": 0}, "name": STR, "sort": INT,
                          "stages": {"type": "array", "items": ref("Stage")}},
                         ("id", "name", "stages")),
        "FieldInfo": _obj({
            "name": STR, "type": STR, "json_type": STR, "required": BOOL, "readonly": BOOL,
            "choices": {"type": "array", "items": STR}, "ref": {"type": ["string", "null"]},
            "max_length": {"type": ["integer", "null"]}, "minimum": {"type": ["integer", "null"]},
            "maximum": {"type": ["integer", "null"]},
            "labels": _obj({"ru": STR, "en": STR}, ("ru", "en")),
        }, ("name", "type", "required", "readonly", "choices", "labels")),
        "FieldList": _obj({"entity": STR, "fields": {"type": "array", "items": ref("FieldInfo")}},
                          ("entity", "fields")),
        "Comment": _obj({"id": ID, "entity_type": STR, "entity_id": ID, "author_id": OPT_ID,
                         "author_label": STR, "text": STR, "created_at": TIME},
                        ("id", "text", "created_at")),
        "CommentCreate": _obj({"text": {"type": "string", "minLength": 1, "maxLength": 20000}},
                              ("text",), additionalProperties=False),
        "Activity": _obj({"id": ID, "type": STR, "subject": STR, "description": STR,
                          "due_at": OPT_TIME, "done": BOOL, "responsible_id": ID,
                          "entity_type": STR, "entity_id": ID, "created_by_id": OPT_ID,
                          "created_at": TIME}, ("id", "type", "subject", "done")),
        "ActivityCreate": _obj({
            "type": {"type": "string", "enum": [t.value for t in ActivityType]},
            "subject": {"type": "string", "minLength": 1, "maxLength": 255},
            "description": {"type": "string", "maxLength": 20000},
            "due_at": {**OPT_TIME, "description": "ISO 8601 with a time zone offset"},
            "responsible_id": OPT_ID,
        }, ("type", "subject"), additionalProperties=False),
        "LoginRequest": _obj({"email": STR, "password": {"type": "string", "writeOnly": True},
                              "name": {"type": "string", "maxLength": 100,
                                       "description": "a label for the token"}},
                             ("email", "password"), additionalProperties=False),
        "LoginResponse": _obj({"token": STR, "token_type": {"type": "string",
                                                              "enum": ["Bearer"]},
                               "user": ref("User")}, ("token", "token_type", "user")),
        "Task": _obj({
            "id": ID, "name": STR, "element_id": STR, "instance_id": ID,
            "definition_key": STR, "entity_type": {"type": ["string", "null"]},
            "entity_id": OPT_ID,
            "status": {"type": "string", "enum": ["open", "claimed", "completed", "cancelled"]},
            "assignee_id": OPT_ID, "candidate_ids": {"type": "array", "items": ID},
            "claimed_by": OPT_ID, "assignment_note": STR,
            "priority": {"type": "integer", "enum": [1, 2, 3],
                         "description": "1 high, 2 normal, 3 low"},
            "due_at": OPT_TIME, "created_at": TIME, "completed_at": OPT_TIME,
            "completed_by": OPT_ID, "instructions": STR,
            "form": {"type": "array", "items": {"type": "object"}},
            "result": {"type": ["object", "null"]},
        }, ("id", "name", "status", "priority", "due_at")),
        "TaskPage": {**page_of(ref("Task")), "description": (
            "In inbox order: priority, then due time (tasks without one last), then id. "
            "Pages by cursor only; 'page' is always 1.")},
        "User": _obj(USER_PROPS, tuple(USER_PROPS)),
        "UserDetail": USER_DETAIL,
        "UserPage": page_of(ref("User")),
        "UserCreate": _obj(USER_INPUT, ("email", "full_name"), additionalProperties=False),
        "UserUpdate": _obj({**USER_INPUT, "current_password": {
            "type": "string", "maxLength": 200, "writeOnly": True,
            "description": "Required with a new password for one's own account"},
            "revoke_credentials": {**BOOL, "description": "With a new password for one's own "
                                   "account: also revoke API tokens and incoming webhooks "
                                   "(default true; an admin's reset always does)"}},
            additionalProperties=False),
        "Me": _obj({**USER_DETAIL["properties"], "is_admin": BOOL,
                    "flags": {"type": "array", "items": {"type": "string",
                                                         "enum": list(FLAGS)}},
                    "permissions": MATRIX}, ("id", "is_admin", "flags", "permissions")),
        "Department": _obj({"id": ID, "name": STR, "parent_id": OPT_ID, "head_id": OPT_ID},
                           ("id", "name", "parent_id", "head_id")),
        "DepartmentDetail": _obj({"id": ID, "name": STR, "parent_id": OPT_ID,
                                  "head_id": OPT_ID, "user_ids": {"type": "array", "items": ID},
                                  "child_ids": {"type": "array", "items": ID}},
                                 ("id", "name", "user_ids", "child_ids")),
        "DepartmentInput": _obj({"name": {"type": "string", "maxLength": 200},
                                 "parent_id": OPT_ID, "head_id": OPT_ID},
                                additionalProperties=False),
        "Role": _obj({"id": ID, "code": {"type": ["string", "null"]}, "name": STR,
                      "flags": _obj({f: BOOL for f in FLAGS}), "permissions": MATRIX},
                     ("id", "name", "flags", "permissions")),
        "RoleInput": _obj({"name": {"type": "string", "maxLength": 200},
                           "permissions": MATRIX, "flags": _obj({f: BOOL for f in FLAGS})},
                          additionalProperties=False),
        "Grant": _obj({"id": ID, "role_id": ID, "user_id": OPT_ID, "department_id": OPT_ID},
                      ("id", "role_id", "user_id", "department_id")),
        "GrantInput": _obj({"user_id": OPT_ID, "department_id": OPT_ID},
                           additionalProperties=False,
                           description="Exactly one of user_id and department_id."),
    }


MONEY = {"type": "string", "pattern": MONEY_PATTERN}
DECIMAL = {"type": "string", "examples": ["1", "2.5"]}


def catalog_schemas() -> dict[str, dict[str, Any]]:
    """``Product`` (+ ``Create``/``Update``/``Page``) and ``ProductSection``, generated from
    the catalog's field lists as the entities' are from theirs."""
    from crm_models.catalog import DISCOUNT_TYPES, UNITS, VAT_RATES
    from crm_models.services.catalog import PRODUCT_FIELDS, SECTION_FIELDS

    UNIT = {"type": "string", "enum": list(UNITS)}
    VAT = {"type": "string", "enum": list(VAT_RATES)}
    DISCOUNT = {"type": "string", "enum": list(DISCOUNT_TYPES)}

    out_props: dict[str, Any] = {"id": {"type": "integer", "readOnly": True}}
    out_props.update({f.name: field_json_schema(f, writing=False) for f in PRODUCT_FIELDS})
    out_props["stock"] = {"type": ["string", "null"], "readOnly": True, "examples": ["3.000"],
                          "description": "quantity in stock as 1C last reported it (offers.xml);"
                                         " null: never reported"}
    out_props["properties"] = {"type": "object", "readOnly": True,
                               "additionalProperties": {"type": "string"},
                               "description": "characteristics from 1C (Свойства): name → "
                                              "value"}
    out_props["created_by_id"] = {"type": ["integer", "null"], "readOnly": True}
    out_props["picture_id"] = {"type": ["integer", "null"], "readOnly": True,
                               "description": "the picture's id (its bytes: GET /products/"
                                              "{id}/picture; it changes when the picture "
                                              "does); null: none"}
    out_props["created_at"] = {"type": "string", "format": "date-time", "readOnly": True}
    out_props["updated_at"] = {"type": "string", "format": "date-time", "readOnly": True}
    writable = {f.name: field_json_schema(f, writing=True) for f in PRODUCT_FIELDS}
    section_in = {f.name: field_json_schema(f, writing=True) for f in SECTION_FIELDS}
    return {
        "Product": _obj(out_props, tuple(out_props)),
        "ProductCreate": _obj(writable, tuple(f.name for f in PRODUCT_FIELDS if f.required),
                              additionalProperties=False),
        "ProductUpdate": _obj(writable, additionalProperties=False),
        "ProductPage": page_of(ref("Product")),
        "ProductSection": _obj({"id": ID, "name": STR, "parent_id": OPT_ID, "sort": INT},
                               ("id", "name", "parent_id", "sort")),
        "ProductSectionInput": _obj(section_in, additionalProperties=False),
        "ProductRow": _obj({
            "id": ID, "product_id": OPT_ID, "name": STR, "quantity": DECIMAL, "unit": UNIT,
            "price": MONEY, "discount_type": DISCOUNT, "discount": MONEY, "vat_rate": VAT,
            "vat_included": BOOL, "price_after_discount": MONEY, "net": MONEY, "vat": MONEY,
            "total": MONEY}, ("id", "name", "quantity", "price", "total")),
        "ProductRowInput": _obj({
            "product_id": {**OPT_ID, "description": "a catalog product (its currency must be "
                           "the record's); name, price, VAT and unit default to its own"},
            "name": {"type": ["string", "null"], "maxLength": 255,
                     "description": "required for a free-text row"},
            "quantity": {"type": ["string", "number"], "description": "greater than zero, "
                         "at most three decimals", "examples": ["1", "2.5"]},
            "unit": UNIT, "price": {"type": ["string", "number", "null"]},
            "discount_type": DISCOUNT,
            "discount": {"type": ["string", "number", "null"],
                         "description": "a percentage (discount_type percent) or an amount "
                                        "per unit"},
            "vat_rate": VAT, "vat_included": BOOL}, additionalProperties=False),
        "ProductRowsInput": _obj({
            "rows": {"type": "array", "maxItems": 500, "items": ref("ProductRowInput")},
            "amount_from_rows": {"type": "boolean", "description": "true: the amount is the "
                                 "rows' total; false: the amount stays as set by hand; "
                                 "left out: as before (a record without rows starts following)"},
        }, ("rows",), additionalProperties=False),
        "Invoice": _obj({
            "id": ID, "number": STR, "year": INT, "seq": INT,
            "stage": {"type": "string", "enum": ["draft", "sent", "paid", "overdue",
                                                 "cancelled"]},
            "issued_on": {"type": "string", "format": "date"},
            "due_on": {"type": ["string", "null"], "format": "date"}, "paid_at": OPT_TIME,
            "currency": STR, "total": MONEY, "vat": MONEY, "deal_id": OPT_ID,
            "company_id": OPT_ID, "contact_id": OPT_ID, "buyer_name": STR, "buyer_inn": STR,
            "buyer_kpp": STR, "buyer_address": STR, "seller": {"type": "object"},
            "comments": STR, "responsible_id": ID, "opened": BOOL, "created_by_id": OPT_ID,
            "created_at": TIME, "updated_at": TIME,
            "rows": {"type": "array", "items": ref("ProductRow")}},
            ("id", "number", "stage", "issued_on", "currency", "total")),
        "InvoicePage": page_of(ref("Invoice")),
        "StoreOrderInput": _obj({
            "store": {"type": "string", "maxLength": 100, "description": "the store's name"},
            "number": {"type": "string", "maxLength": 100,
                       "description": "the order number, unique within the store"},
            "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$"},
            "comment": {"type": "string", "maxLength": 20000},
            "customer": _obj({"name": STR, "first_name": STR, "last_name": STR,
                              "phone": STR, "email": STR}, additionalProperties=False,
                             description="found by phone or e-mail, else created"),
            "items": {"type": "array", "minItems": 1, "maxItems": 500, "items": _obj({
                "sku": {"type": "string", "maxLength": 100,
                        "description": "matched to the catalog; unknown: a free row"},
                "name": STR, "quantity": {"type": ["number", "string"]},
                "price": {"type": ["number", "string", "null"]},
                "vat_rate": {"type": ["string", "null"]}}, additionalProperties=False)},
        }, ("store", "number", "customer", "items"), additionalProperties=False, examples=[{
            "store": "shop.example.ru", "number": "A-1001", "currency": "RUB",
            "customer": {"name": "Иван Петров", "phone": "8 (916) 555-01-02",
                         "email": "ivan@example.ru"},
            "items": [{"sku": "CNC-450", "quantity": 3, "price": "450000.00"},
                      {"sku": "GIFT-1", "name": "Подарочная упаковка", "quantity": 1,
                       "price": "500.00"}],
            "comment": "Доставка до 15:00"}]),
        "StoreOrder": _obj({
            "id": ID, "store": STR, "number": STR, "deal_id": OPT_ID, "contact_id": OPT_ID,
            "created": {"type": "boolean", "description": "false: taken before, unchanged"},
            "warnings": {"type": "array", "items": STR}},
            ("id", "store", "number", "deal_id", "contact_id", "created", "warnings")),
        "InvoiceCreate": _obj({
            "deal_id": ID, "company_id": ID, "contact_id": ID,
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "rows": {"type": "array", "maxItems": 500, "items": ref("ProductRowInput")},
            "issued_on": {"type": ["string", "null"], "format": "date"},
            "due_on": {"type": ["string", "null"], "format": "date"},
            "buyer_inn": {"type": "string", "pattern": "^(\\d{10}|\\d{12})?$"},
            "buyer_kpp": {"type": "string", "pattern": "^(\\d{9})?$"},
            "comments": {"type": "string", "maxLength": 20000}},
            (), additionalProperties=False),
        "InvoiceUpdate": _obj({
            "company_id": {"type": ["integer", "null"], "minimum": 1},
            "contact_id": {"type": ["integer", "null"], "minimum": 1},
            "rows": {"type": "array", "minItems": 1, "maxItems": 500,
                     "items": ref("ProductRowInput")},
            "due_on": {"type": ["string", "null"], "format": "date"},
            "buyer_name": {"type": "string", "maxLength": 255},
            "buyer_inn": {"type": "string", "pattern": "^(\\d{10}|\\d{12})?$"},
            "buyer_kpp": {"type": "string", "pattern": "^(\\d{9})?$"},
            "buyer_address": {"type": "string", "maxLength": 500},
            "comments": {"type": "string", "maxLength": 20000}},
            (), additionalProperties=False),
        "InvoiceStageChange": _obj({"stage": {"type": "string", "enum": [
            "draft", "sent", "paid", "overdue", "cancelled"]}}, ("stage",),
            additionalProperties=False),
        "ProductRows": _obj({
            "entity_type": {"type": "string", "enum": ["deal", "lead"]}, "entity_id": ID,
            "currency": STR, "amount": {"type": ["string", "null"]},
            "amount_from_rows": BOOL, "rows": {"type": "array", "items": ref("ProductRow")},
            "total": MONEY, "vat": MONEY},
            ("entity_type", "entity_id", "currency", "amount_from_rows", "rows", "total")),
    }


def all_schemas() -> dict[str, dict[str, Any]]:
    out = static_schemas()
    out.update(catalog_schemas())
    for entity in SCHEMAS:
        out.update(entity_schemas(entity))
    return out
