"""The product catalog's service functions: one per action on products and sections.

Rights are the matrix's "product" row (a product has no responsible user, so any level above
"none" allows the action on every product). Every write validates all fields at once
(``ValidationFailed`` naming each bad one), then writes the row, one audit event and one
outbox event (``product.created`` / ``product.updated`` / ``product.deleted``) in the
caller's transaction, as ``records`` does for deals.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, selectinload

from ..catalog import UNITS, VAT_RATES, Product, ProductSection
from ..db import utcnow
from ..errors import Conflict, NotFound, ValidationFailed
from ..fields import Field, _coerce, clean_fields
from ..permissions import Actor
from ..serialize import json_value
from .records import MAX_ID, MAX_PAGE, MAX_PER_PAGE, Page, record_event

#: The product's writable fields: one list serves validation, the REST API and the forms.
PRODUCT_FIELDS: tuple[Field, ...] = (
    Field("name", "string", "Name", "Название", required=True),
    Field("sku", "string", "Article (SKU)", "Артикул", max_length=100),
    Field("description", "text", "Description", "Описание", max_length=20000),
    Field("price", "money", "Price", "Цена", blank=False),
    Field("currency", "currency", "Currency", "Валюта", blank=False),
    Field("vat_rate", "enum", "VAT rate", "Ставка НДС", choices=VAT_RATES, blank=False),
    Field("vat_included", "bool", "VAT included in the price", "НДС включён в цену",
          blank=False),
    Field("unit", "enum", "Unit of measure", "Единица измерения", choices=tuple(UNITS),
          blank=False),
    Field("section_id", "ref", "Section", "Раздел", ref="product_section"),
    Field("active", "bool", "Active", "Активен", blank=False),
    Field("sort", "int", "Sort order", "Сортировка", minimum=0),
)
SECTION_FIELDS: tuple[Field, ...] = (
    Field("name", "string", "Name", "Название", required=True),
    Field("parent_id", "ref", "Parent section", "Родительский раздел", ref="product_section"),
    Field("sort", "int", "Sort order", "Сортировка", minimum=0),
)
PRODUCT_FIELD_MAP = {f.name: f for f in PRODUCT_FIELDS}
SECTION_FIELD_MAP = {f.name: f for f in SECTION_FIELDS}
PRODUCT_SORTS = ("name", "sku", "price", "sort", "id", "created_at", "updated_at")


def _check_section(session: Session, values: dict[str, Any], key: str,
                   errors: dict[str, str]) -> None:
    section_id = values.get(key)
    if section_id is not None and session.get(ProductSection, section_id) is None:
        errors[key] = f"no product section with id {section_id}"


def _validate_product(session: Session, data: dict[str, Any], *,
                      partial: bool) -> dict[str, Any]:
    """Clean values, or ValidationFailed naming every bad field (an unknown section too,
    even when other fields are wrong)."""
    errors: dict[str, str] = {}
    try:
        values = clean_fields(PRODUCT_FIELD_MAP, data, "product", partial=partial)
    except ValidationFailed as exc:
        errors, values = dict(exc.fields), {}
        if "section_id" in data and "section_id" not in errors:
            values = {"section_id": _coerce(PRODUCT_FIELD_MAP["section_id"],
                                            data["section_id"])}
    _check_section(session, values, "section_id", errors)
    if errors:
        raise ValidationFailed(errors)
    return values


#: Written by the accounting exchange (1C), read everywhere, not by the product form.
EXCHANGE_FIELDS = ("stock", "properties")
MAX_PROPERTIES = 200


def _clean_exchange_fields(data: dict[str, Any]) -> dict[str, Any]:
    """``stock`` (a quantity, negative when 1C reports goods oversold, three decimals at most, or None: unknown) and
    ``properties`` (name → value strings); ValidationFailed naming the field."""
    out: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if "stock" in data:
        raw = data["stock"]
        try:
            value = None if raw is None else Decimal(str(raw).replace(" ", "").replace(",", "."))
            if value is not None and (not value.is_finite() or abs(value) >= 10 ** 12
                                      or value != value.quantize(Decimal("0.001"))):
                raise InvalidOperation
            # kept as the column holds it, so "3" from 1C again is no change to "3.000"
            out["stock"] = None if value is None else value.quantize(Decimal("0.001"))
        except (InvalidOperation, ValueError):
            errors["stock"] = "must be a quantity with at most three decimals (negative: oversold)"
    if "properties" in data:
        props = data["properties"]
        if not isinstance(props, dict) or len(props) > MAX_PROPERTIES or not all(
                isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= 255
                and len(v) <= 2000 for k, v in props.items()):
            errors["properties"] = (f"must map at most {MAX_PROPERTIES} names to text values")
        else:
            out["properties"] = {k.strip(): v.strip() for k, v in props.items()}
    if errors:
        raise ValidationFailed(errors)
    return out


def product_dict(p: Product) -> dict[str, Any]:
    out: dict[str, Any] = {"id": p.id}
    for f in PRODUCT_FIELDS:
        out[f.name] = json_value(getattr(p, f.name))
    out["stock"] = None if p.stock is None else str(p.stock)
    out["properties"] = dict(p.properties or {})
    out["created_by_id"] = p.created_by_id
    out["picture_id"] = p.picture_id
    out["created_at"] = json_value(p.created_at)
    out["updated_at"] = json_value(p.updated_at)
    return out


def section_dict(s: ProductSection) -> dict[str, Any]:
    return {"id": s.id, "name": s.name, "parent_id": s.parent_id, "sort": s.sort}


def _search_text(p: Product) -> str:
    return " ".join(x for x in (p.name, p.sku) if x).casefold()


def _id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise NotFound(f"No {what} with id {str(value)[:40]!r}")
    return value


# --- products --------------------------------------------------------------------------------

def get_product(session: Session, actor: Actor, product_id: int) -> Product:
    actor.require("product", "read")
    product = session.get(Product, _id(product_id, "product"))
    if product is None:
        raise NotFound(f"No product with id {product_id}")
    return product


def create_product(session: Session, actor: Actor, **fields: Any) -> Product:
    """Add a product; emits ``product.created``."""
    actor.require("product", "add")
    extra = {k: fields.pop(k) for k in EXCHANGE_FIELDS if k in fields}
    values = _validate_product(session, fields, partial=False)
    values.update(_clean_exchange_fields(extra))
    product = Product(created_by_id=actor.user_id, **values)
    product.search_text = _search_text(product)
    session.add(product)
    session.flush()
    data = product_dict(product)
    record_event(session, actor, entity="product", entity_id=product.id, action="created",
                 event_type="product.created",
                 changes={k: [None, v] for k, v in data.items() if v not in (None, "", {})
                          and (k in PRODUCT_FIELD_MAP or k in EXCHANGE_FIELDS)},
                 payload={"fields": data})
    return product


def update_product(session: Session, actor: Actor, product_id: int, **fields: Any) -> Product:
    """Change the given fields; emits ``product.updated`` with the changes (none: no event)."""
    actor.require("product", "update")
    product = get_product(session, actor, product_id)
    extra = {k: fields.pop(k) for k in EXCHANGE_FIELDS if k in fields}
    values = _validate_product(session, fields, partial=True)
    values.update(_clean_exchange_fields(extra))
    before = product_dict(product)
    for name, value in values.items():
        setattr(product, name, value)
    after = product_dict(product)
    changes = {k: [before[k], v] for k, v in after.items()
               if (k in PRODUCT_FIELD_MAP or k in EXCHANGE_FIELDS) and before[k] != v}
    if not changes:
        return product
    product.search_text = _search_text(product)
    product.updated_at = utcnow()
    after["updated_at"] = json_value(product.updated_at)
    session.flush()
    record_event(session, actor, entity="product", entity_id=product.id, action="updated",
                 event_type="product.updated", changes=changes,
                 payload={"changed": changes, "fields": after})
    return product


def delete_product(session: Session, actor: Actor, product_id: int) -> None:
    """Delete a product; emits ``product.deleted`` with its last fields."""
    actor.require("product", "delete")
    product = get_product(session, actor, product_id)
    data = product_dict(product)
    session.delete(product)
    session.flush()
    record_event(session, actor, entity="product", entity_id=product_id, action="deleted",
                 event_type="product.deleted", payload={"fields": data})


def list_products(session: Session, actor: Actor, *, search: str | None = None,
                  section_id: Any = None, active: Any = None, currency: str | None = None,
                  id_after: Any = None, sort: str | None = None, page: int = 1,
                  per_page: int = 50) -> Page:
    """Products, narrowed by a search in name and article, a section (with its subsections),
    the active flag and the currency."""
    actor.require("product", "read")
    if isinstance(page, bool) or not isinstance(page, int) or not 1 <= page <= MAX_PAGE:
        raise ValidationFailed({"page": f"must be a whole number from 1 to {MAX_PAGE}"})
    if isinstance(per_page, bool) or not isinstance(per_page, int) or not (
            1 <= per_page <= MAX_PER_PAGE):
        raise ValidationFailed({"per_page": f"must be between 1 and {MAX_PER_PAGE}"})
    conds: list[Any] = []
    errors: dict[str, str] = {}
    if search:
        if not isinstance(search, str) or len(search) > 200 or "\x00" in search:
            errors["q"] = "must be text of at most 200 characters"
        else:
            conds.append(Product.search_text.contains(search.strip().casefold(),
                                                      autoescape=True))
    if section_id not in (None, ""):
        try:
            sid = _coerce(Field("section_id", "ref", "", ""), section_id)
        except ValueError as exc:
            errors["section_id"] = str(exc)
        else:
            conds.append(Product.section_id.in_(sorted(section_subtree(session, sid))))
    if active not in (None, ""):
        try:
            conds.append(Product.active.is_(_coerce(Field("active", "bool", "", ""), active)))
        except ValueError as exc:
            errors["active"] = str(exc)
    if currency not in (None, ""):
        try:
            conds.append(Product.currency == _coerce(Field("currency", "currency", "", ""),
                                                     currency))
        except ValueError as exc:
            errors["currency"] = str(exc)
    if id_after not in (None, ""):  # keyset paging (Bitrix24's ">ID" filter)
        try:
            conds.append(Product.id > _coerce(Field("id", "int", "", "", minimum=0), id_after))
        except ValueError as exc:
            errors["id"] = str(exc)
    sort = sort or "name"
    if not isinstance(sort, str) or sort.lstrip("-") not in PRODUCT_SORTS:
        errors["sort"] = "must be one of: " + ", ".join(PRODUCT_SORTS)
    if errors:
        raise ValidationFailed(errors)
    column = getattr(Product, sort.lstrip("-"))
    desc = sort.startswith("-")
    stmt = select(Product).where(and_(*conds)) if conds else select(Product)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    items = list(session.scalars(
        stmt.options(selectinload(Product.section))
        .order_by(column.desc() if desc else column.asc(),
                  Product.id.desc() if desc else Product.id.asc())
        .limit(per_page).offset((page - 1) * per_page)))
    return Page(items=items, total=total, page=page, per_page=per_page)


# --- sections --------------------------------------------------------------------------------

def section_subtree(session: Session, section_id: int) -> set[int]:
    """The section and every section below it."""
    children: dict[int, list[int]] = {}
    for sid, parent in session.execute(select(ProductSection.id, ProductSection.parent_id)):
        if parent is not None:
            children.setdefault(parent, []).append(sid)
    out: set[int] = set()
    stack = [section_id]
    while stack:
        s = stack.pop()
        if s not in out:
            out.add(s)
            stack.extend(children.get(s, ()))
    return out


def list_sections(session: Session, actor: Actor) -> list[ProductSection]:
    """Every section, parents before their children (depth-first, by sort and name)."""
    actor.require("product", "read")
    rows = list(session.scalars(select(ProductSection).order_by(
        ProductSection.sort, ProductSection.name, ProductSection.id)))
    by_parent: dict[int | None, list[ProductSection]] = {}
    for s in rows:
        by_parent.setdefault(s.parent_id, []).append(s)
    out: list[ProductSection] = []

    def walk(parent: int | None) -> None:
        for s in by_parent.get(parent, ()):
            out.append(s)
            walk(s.id)

    walk(None)
    return out


def section_depths(sections: list[ProductSection]) -> dict[int, int]:
    depth: dict[int, int] = {}
    for s in sections:  # parents come first
        depth[s.id] = depth.get(s.parent_id, -1) + 1 if s.parent_id is not None else 0
    return depth


def get_section(session: Session, actor: Actor, section_id: int) -> ProductSection:
    actor.require("product", "read")
    section = session.get(ProductSection, _id(section_id, "product section"))
    if section is None:
        raise NotFound(f"No product section with id {section_id}")
    return section


def save_section(session: Session, actor: Actor, section_id: int | None = None,
                 **fields: Any) -> ProductSection:
    """Create (no ``section_id``) or change a section; a section cannot sit inside itself."""
    actor.require("product", "add" if section_id is None else "update")
    section = None if section_id is None else get_section(session, actor, section_id)
    values = clean_fields(SECTION_FIELD_MAP, fields, "product section", partial=section is not None)
    errors: dict[str, str] = {}
    _check_section(session, values, "parent_id", errors)
    parent_id = values.get("parent_id")
    if section is not None and parent_id is not None and parent_id in section_subtree(
            session, section.id):
        errors["parent_id"] = "a section cannot be inside itself"
    if errors:
        raise ValidationFailed(errors)
    if section is None:
        section = ProductSection(**values)
        session.add(section)
        session.flush()
        record_event(session, actor, entity="product_section", entity_id=section.id,
                     action="created", event_type=None,
                     changes={k: [None, v] for k, v in values.items()})
        return section
    changes = {k: [getattr(section, k), v] for k, v in values.items() if getattr(section, k) != v}
    for k, v in values.items():
        setattr(section, k, v)
    session.flush()
    if changes:
        record_event(session, actor, entity="product_section", entity_id=section.id,
                     action="updated", event_type=None, changes=changes)
    return section


def delete_section(session: Session, actor: Actor, section_id: int) -> None:
    """Delete an empty section (no products, no subsections)."""
    actor.require("product", "delete")
    section = get_section(session, actor, section_id)
    if session.scalar(select(func.count()).select_from(Product)
                      .where(Product.section_id == section.id)):
        raise Conflict("This section still holds products; move or delete them first")
    if session.scalar(select(func.count()).select_from(ProductSection)
                      .where(ProductSection.parent_id == section.id)):
        raise Conflict("This section still holds subsections; move or delete them first")
    name = section.name
    session.delete(section)
    session.flush()
    record_event(session, actor, entity="product_section", entity_id=section_id,
                 action="deleted", event_type=None, changes={"name": [name, None]})
