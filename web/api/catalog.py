"""The product catalog over REST: ``/products`` and ``/product-sections``."""
from __future__ import annotations

from typing import Any

from flask import Response, url_for

from crm_models.errors import NotFound, ValidationFailed
from crm_models.services import catalog as cat
from crm_models.services import images
from crm_models.services import product_rows as pr

from .common import (
    Operation,
    add_route,
    api_route,
    commit,
    db_actor,
    json_body,
    list_of,
    only_keys,
    page_json,
    paging,
    query_args,
    ref,
    single,
)

PRODUCT_QUERY = ("q", "section_id", "active", "currency", "sort", "page", "per_page")


def _known_keys(body: dict[str, Any], fields: dict[str, Any], what: str, *,
                partial: bool) -> None:
    """Unknown keys never reach a service (it takes ``**fields``); the error names them
    together with every other bad field."""
    unknown = {str(k)[:60]: f"is not a field of {what}" for k in body if k not in fields}
    if not unknown:
        return
    try:
        cat.clean_fields(fields, {k: v for k, v in body.items() if k in fields}, what,
                         partial=partial)
    except ValidationFailed as exc:
        unknown = {**exc.fields, **unknown}
    raise ValidationFailed(unknown)


@api_route("/products", tag="products", endpoint="product_list",
           summary="List products (search in name and article, section with its subsections)",
           query=PRODUCT_QUERY, response=ref("ProductPage"))
def product_list() -> Any:
    args = query_args()
    only_keys(args, PRODUCT_QUERY, "a product list query")
    page, per_page = paging(args)
    db, actor = db_actor()
    result = cat.list_products(db, actor, search=single(args, "q"),
                               section_id=single(args, "section_id"),
                               active=single(args, "active"), currency=single(args, "currency"),
                               sort=single(args, "sort"), page=page, per_page=per_page)
    return page_json([cat.product_dict(p) for p in result.items], result.total, result.page,
                     result.per_page)


@api_route("/products", methods=("POST",), tag="products", endpoint="product_create",
           summary="Add a product to the catalog", status=201, body=ref("ProductCreate"),
           response=ref("Product"))
def product_create() -> Any:
    body = json_body()
    _known_keys(body, cat.PRODUCT_FIELD_MAP, "product", partial=False)
    db, actor = db_actor()
    product = cat.create_product(db, actor, **body)
    out = cat.product_dict(product)
    commit()
    return out, 201, {"Location": url_for("api.product_get", product_id=product.id)}


@api_route("/products/<id:product_id>", tag="products", endpoint="product_get",
           summary="Get one product", response=ref("Product"))
def product_get(product_id: int) -> Any:
    db, actor = db_actor()
    return cat.product_dict(cat.get_product(db, actor, product_id))


@api_route("/products/<id:product_id>/picture", tag="products", endpoint="product_picture",
           response={"type": "string", "format": "binary"},
           extra={"media": ("image/png", "image/jpeg")},
           summary="The product's picture (PNG or JPEG; 404 when it has none)")
def product_picture(product_id: int) -> Any:
    db, actor = db_actor()
    product = cat.get_product(db, actor, product_id)
    if product.picture_id is None:
        raise NotFound(f"Product {product_id} has no picture")
    image = images.get_image(db, product.picture_id)
    return Response(image.data, mimetype=image.content_type,
                    headers={"Cache-Control": "private, max-age=3600",
                             "X-Content-Type-Options": "nosniff"})


@api_route("/products/<id:product_id>", methods=("PATCH", "PUT"), tag="products",
           endpoint="product_update", body=ref("ProductUpdate"), response=ref("Product"),
           summary="Change some fields of a product (PUT is an alias of PATCH)")
def product_update(product_id: int) -> Any:
    body = json_body()
    _known_keys(body, cat.PRODUCT_FIELD_MAP, "product", partial=True)
    db, actor = db_actor()
    out = cat.product_dict(cat.update_product(db, actor, product_id, **body))
    commit()
    return out


@api_route("/products/<id:product_id>", methods=("DELETE",), tag="products",
           endpoint="product_delete", summary="Delete a product", status=204)
def product_delete(product_id: int) -> Any:
    db, actor = db_actor()
    cat.delete_product(db, actor, product_id)
    commit()
    return "", 204


@api_route("/product-sections", tag="products", endpoint="product_section_list",
           summary="The catalog's section tree, parents before their children",
           response=list_of("ProductSection"))
def product_section_list() -> Any:
    db, actor = db_actor()
    return {"items": [cat.section_dict(s) for s in cat.list_sections(db, actor)]}


@api_route("/product-sections", methods=("POST",), tag="products",
           endpoint="product_section_create", summary="Add a catalog section", status=201,
           body=ref("ProductSectionInput"), response=ref("ProductSection"))
def product_section_create() -> Any:
    body = json_body()
    _known_keys(body, cat.SECTION_FIELD_MAP, "product section", partial=False)
    db, actor = db_actor()
    section = cat.save_section(db, actor, **body)
    out = cat.section_dict(section)
    commit()
    return out, 201, {"Location": url_for("api.product_section_get", section_id=section.id)}


@api_route("/product-sections/<id:section_id>", tag="products",
           endpoint="product_section_get", summary="Get one catalog section",
           response=ref("ProductSection"))
def product_section_get(section_id: int) -> Any:
    db, actor = db_actor()
    return cat.section_dict(cat.get_section(db, actor, section_id))


@api_route("/product-sections/<id:section_id>", methods=("PATCH", "PUT"), tag="products",
           endpoint="product_section_update", body=ref("ProductSectionInput"),
           response=ref("ProductSection"), summary="Rename or move a catalog section")
def product_section_update(section_id: int) -> Any:
    body = json_body()
    _known_keys(body, cat.SECTION_FIELD_MAP, "product section", partial=True)
    db, actor = db_actor()
    out = cat.section_dict(cat.save_section(db, actor, section_id, **body))
    commit()
    return out


@api_route("/product-sections/<id:section_id>", methods=("DELETE",), tag="products",
           endpoint="product_section_delete", status=204,
           summary="Delete an empty catalog section", extra={"errors": (409,)})
def product_section_delete(section_id: int) -> Any:
    db, actor = db_actor()
    cat.delete_section(db, actor, section_id)
    commit()
    return "", 204


# --- product rows of deals and leads ---------------------------------------------------------

def _rows_json(record: Any, rows: list[Any]) -> dict[str, Any]:
    total, vat = pr.totals(rows)
    return {"entity_type": record.entity_type, "entity_id": record.id,
            "currency": record.currency,
            "amount": str(record.amount) if record.amount is not None else None,
            "amount_from_rows": bool(record.amount_from_rows),
            "rows": [pr.row_dict(r) for r in rows], "total": str(total), "vat": str(vat)}


def rows_get(entity: str, record_id: int) -> Any:
    db, actor = db_actor()
    record, rows = pr.get_product_rows(db, actor, entity, record_id)
    return _rows_json(record, rows)


def rows_put(entity: str, record_id: int) -> Any:
    body = json_body()
    only_keys(body, ("rows", "amount_from_rows"), "a product rows change")
    if "rows" not in body:
        raise ValidationFailed({"rows": "is required"})
    db, actor = db_actor()
    rows = pr.set_product_rows(db, actor, entity, record_id, body["rows"],
                               amount_from_rows=body.get("amount_from_rows"))
    record = pr.records.load(db, actor, entity, record_id)
    out = _rows_json(record, rows)
    commit()
    return out


for _entity, _plural in (("deal", "deals"), ("lead", "leads")):
    add_route(f"/{_plural}/<id:record_id>/product-rows", f"{_entity}_product_rows_get", rows_get,
              ["GET"], Operation(f"The product rows of a {_entity}, with their sums", _plural,
                                 response=ref("ProductRows")), {"entity": _entity})
    add_route(f"/{_plural}/<id:record_id>/product-rows", f"{_entity}_product_rows_put", rows_put,
              ["PUT"], Operation(
                  f"Replace the product rows of a {_entity}; unless its amount was set by "
                  f"hand, the amount becomes the rows' total ({_entity}.updated)", _plural,
                  body=ref("ProductRowsInput"), response=ref("ProductRows")),
              {"entity": _entity})
