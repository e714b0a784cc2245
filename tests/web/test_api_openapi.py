"""The OpenAPI document: valid 3.1, complete, and in agreement with what the API accepts."""
from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from crm_models.fields import SCHEMAS

from .api_support import (  # noqa: F401  (fast_passwords: an autouse fixture)
    PLURALS,
    api_for,
    fast_passwords,
)


@pytest.fixture()
def doc(client):
    r = client.get("/api/v1/openapi.json")  # public: client generators fetch it anonymously
    assert r.status_code == 200
    return r.get_json()


def test_document_is_valid_openapi_31(doc):
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        **doc["components"]["securitySchemes"]["bearerAuth"], "type": "http", "scheme": "bearer"}
    op_ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(op_ids) == len(set(op_ids))


def test_every_registered_route_is_documented(app, doc):
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if method.lower() not in doc["paths"].get(path, {}):
                missing.append(f"{method} {path}")
    assert missing == []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["summary"], (method, path)
            assert set(op["responses"]) & {"200", "201", "204"}, (method, path)
            if "{" in path:
                names = set(re.findall(r"{(\w+)}", path))
                assert names == {p["name"] for p in op["parameters"] if p["in"] == "path"}


def test_entity_schemas_come_from_the_field_schemas(doc):
    schemas = doc["components"]["schemas"]
    for entity, fields in SCHEMAS.items():
        name = entity.capitalize()
        out, create, update = schemas[name], schemas[f"{name}Create"], schemas[f"{name}Update"]
        for f in fields:
            assert f.name in out["properties"], (entity, f.name)
            assert out["properties"][f.name]["title"] == f.label_en
            assert out["properties"][f.name]["x-label-ru"] == f.label_ru
            assert (f.name in create["properties"]) != f.readonly, (entity, f.name)
            assert (f.name in update["properties"]) != f.readonly
        assert set(create["required"]) == {f.name for f in fields if f.required}
        assert create["additionalProperties"] is False
        plural = PLURALS[entity]
        listing = doc["paths"][f"/api/v1/{plural}"]["get"]
        assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{name}Page"}
        assert doc["paths"][f"/api/v1/{plural}"]["post"]["requestBody"]["content"][
            "application/json"]["schema"] == {"$ref": f"#/components/schemas/{name}Create"}
    assert schemas["Deal"]["properties"]["amount"]["pattern"] == r"^\d+\.\d{2}$"
    assert "Error" in schemas and schemas["Error"]["required"] == ["error"]
    assert doc["paths"]["/api/v1/auth/login"]["post"]["security"] == []


def _sample(schema: dict) -> str:
    """A value a documented query parameter would carry."""
    if "enum" in schema:
        return str(next(v for v in schema["enum"] if v not in ("", None)))
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if schema.get("format") == "date":
        return "2030-01-01"
    if schema.get("format") == "date-time":
        return "2030-01-01T00:00:00"
    if "boolean" in types:
        return "true"
    if "integer" in types or "number" in types:
        return str(max(schema.get("minimum", 1), 1))
    if schema.get("pattern") == "^[A-Za-z]{3}$":
        return "RUB"
    return "x"


@pytest.mark.parametrize("entity", list(PLURALS))
def test_documented_list_parameters_are_accepted(app, db, org, doc, entity):
    api = api_for(app, db, org.m1)
    path = f"/api/v1/{PLURALS[entity]}"
    params = doc["paths"][path]["get"]["parameters"]
    by_name = {p["name"]: p for p in params}
    for value in by_name["sort"]["schema"]["enum"]:
        r = api.get(path, query_string={"sort": value})
        assert r.status_code == 200, (value, r.get_json())
    for p in params:
        if p["name"] in ("sort", "filters", "after"):  # a cursor: test_api_keyset.py
            continue
        value = _sample(p["schema"])
        if p["name"] == "stage":
            value = "NEW"
        r = api.get(path, query_string={p["name"]: value})
        assert r.status_code == 200, (p["name"], value, r.get_json())
    documented = set()
    for pattern in by_name["filters"]["schema"]["patternProperties"]:
        m = re.fullmatch(r"\^\((.*?)\)__\((.*?)\)\$", pattern)
        for field in m.group(1).split("|"):
            for op in m.group(2).split("|"):
                documented.add(field)
                value = "NEW" if field == "stage" else _sample(by_name[field]["schema"])
                r = api.get(path, query_string={f"{field}__{op}": value})
                assert r.status_code == 200, (field, op, r.get_json())
    assert documented == {p["name"] for p in params} - {"page", "per_page", "sort", "q",
                                                         "after", "filters"}
    # and what is not documented is refused
    assert api.get(path, query_string={"id__contains": "1"}).status_code == 422
