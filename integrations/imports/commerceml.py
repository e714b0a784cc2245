"""1C:Enterprise exchange over CommerceML 2 (the protocol "Управление торговлей" and other stock
configurations use with web sites, versions 2.05–2.10): sessions, files, the catalog import
and the orders going out and their statuses coming back.

The HTTP adapter (``web.exchange1c``) answers the plain-text lines 1C expects; everything here
is plain Python over the CRM services. Catalog: ``import.xml`` (classifier groups → product
sections, products with article, unit, VAT, the deletion mark → inactive) and ``offers.xml``
(the price of the configured price type, the stock quantity, kept on the product). Product
properties (Свойства / ЗначенияСвойств) are kept on the product as name → value; its first
Картинка (a file 1C sent, see ``commerceml_files``) becomes its picture. 1C calls
``mode=import`` repeatedly until it reads ``success``: each call does one bounded step
(``import_catalog_step``) and answers ``progress`` meanwhile. The whole file is parsed and
checked before the first write: a truncated or invalid file imports nothing. A repeated exchange changes nothing (products are
matched by their 1C id, kept in ``exchange_ref``, and an update without changes writes no
event). Sale: ``mode=query`` lists deals with product rows not yet confirmed by
``mode=success``; documents coming back set their invoices paid ("оплачен") or their deal won
("отгружен").
"""
from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from sqlalchemy import JSON, Index, Integer, String, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from crm_models.catalog import Product, ProductRow, ProductSection
from crm_models.db import Base, UTCDateTime, utcnow
from crm_models.entities import Deal, Stage
from crm_models.errors import CrmError, ValidationFailed
from crm_models.invoices import Invoice
from crm_models.permissions import Actor
from crm_models.services import add_comment, change_deal_stage
from crm_models.services.catalog import create_product, save_section, update_product
from crm_models.services.images import MAX_BYTES as PICTURE_MAX_BYTES
from crm_models.services.images import set_product_picture
from crm_models.services.invoices import change_invoice_stage

from .commerceml_files import (  # noqa: F401  (the exchange's file handling, used from here)
    ExchangeError,
    Unpacked,
    read_picture,
    safe_name,
    safe_path,
    save_chunk,
    stored_name,
    unpack,
)

COOKIE = "marshrut_1c"
UNIT_CODES = {"796": "pcs", "166": "kg", "163": "g", "168": "t", "006": "m", "055": "m2",
              "113": "m3", "112": "l", "356": "hour", "359": "day", "362": "month",
              "778": "pack", "839": "set"}


class ExchangeSession(Base):
    __tablename__ = "exchange_session"
    __table_args__ = (Index("ix_exchange_session_token", "token", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))  # catalog | sale
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: [{"at", "mode", "filename", "ok", "message"}], newest last
    log: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    #: where a stepped ``mode=import`` stands: {"import": {"file", "size", "position",
    #: "total", "report"}, "unpacked": [zip names]}
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ExchangeRef(Base):
    """A 1C object's id ↔ ours (``kind``: section, product, deal_sent)."""

    __tablename__ = "exchange_ref"
    __table_args__ = (UniqueConstraint("kind", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(100))
    local_id: Mapped[int] = mapped_column(Integer)


def open_session(session: Session, user_id: int, kind: str) -> ExchangeSession:
    ex = ExchangeSession(token=secrets.token_hex(24), user_id=user_id, kind=kind, log=[])
    session.add(ex)
    session.flush()
    return ex


def find_session(session: Session, token: str | None, kind: str) -> ExchangeSession:
    ex = session.scalar(select(ExchangeSession).where(ExchangeSession.token == token)) \
        if token else None
    if ex is None or ex.kind != kind:
        raise ExchangeError("not authorized: run checkauth first")
    ex.last_seen = utcnow()
    return ex


def note(ex: ExchangeSession, mode: str, filename: str, ok: bool, message: str) -> None:
    ex.log = [*ex.log[-199:], {"at": utcnow().isoformat(timespec="seconds"), "mode": mode,
                               "filename": filename, "ok": ok, "message": message[:500]}]
    if not ok:
        ex.errors += 1


# --- parsing -------------------------------------------------------------------------------

def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: Element | None, name: str) -> Element | None:
    if el is None:
        return None
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _children(el: Element | None, name: str) -> list[Element]:
    return [c for c in el if _local(c.tag) == name] if el is not None else []


def _text(el: Element | None, name: str) -> str:
    c = _child(el, name)
    return (c.text or "").strip() if c is not None else ""


def parse(path: Path) -> Element:
    """The document's root; ExchangeError for a file that is not well-formed XML (truncated,
    wrong encoding) — the XML declaration's encoding (UTF-8 or Windows-1251) is honoured."""
    try:
        return SafeET.parse(str(path)).getroot()
    except FileNotFoundError:
        raise ExchangeError(f"no file '{path.name}' was uploaded") from None
    except Exception as exc:  # ParseError, defusedxml's forbidden constructs
        raise ExchangeError(f"{path.name}: not a valid XML document ({exc})") from None


@dataclass
class CatalogReport:
    sections: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    prices: int = 0
    stock: int = 0
    pictures: int = 0
    picture_errors: int = 0


def _ref(session: Session, kind: str, external_id: str) -> int | None:
    return session.scalar(select(ExchangeRef.local_id).where(
        ExchangeRef.kind == kind, ExchangeRef.external_id == external_id))


def _remember(session: Session, kind: str, external_id: str, local_id: int) -> None:
    session.add(ExchangeRef(kind=kind, external_id=external_id[:100], local_id=local_id))
    session.flush()


def import_catalog(session: Session, actor: Actor, path: Path, *,
                   price_type: str = "") -> CatalogReport:
    """Import ``import.xml`` or ``offers.xml`` (by its content) whole, in the caller's
    transaction; ExchangeError (nothing written: the caller rolls back) on a bad document."""
    state: dict[str, Any] = {}
    import_catalog_step(session, actor, path, state, price_type=price_type, step=0)
    return CatalogReport(**state["report"])


def import_catalog_step(session: Session, actor: Actor, path: Path, state: dict[str, Any], *,
                        price_type: str = "", step: int = 0) -> bool:
    """One bounded step of importing ``import.xml`` / ``offers.xml``: at most ``step``
    products or offers (0: all) from ``state["position"]`` on; True when the file is done.

    ``state`` (kept by the caller between 1C's repeated ``mode=import`` calls; empty to
    start) gets ``position``, ``total``, ``report`` and ``problems`` (this step's pictures
    that could not be taken: [{"filename", "message"}], the product imported all the same).
    The first step checks the whole document (well-formed, every product valid, every
    offer's product known, every price and quantity a number, the price type present)
    before it writes anything, so bad input imports nothing; each step is then written in
    the caller's transaction. Pictures are looked for next to ``path``."""
    actor.require("product", "import")
    root = parse(path)
    classifier = _child(root, "Классификатор")
    catalog = _child(root, "Каталог")
    offers = _child(root, "ПакетПредложений")
    if classifier is None and catalog is None and offers is None:
        raise ExchangeError(f"{path.name}: no Классификатор, Каталог or ПакетПредложений in it")
    props = _property_names(classifier)
    items = _children(_child(catalog, "Товары"), "Товар")
    offer_items = _children(_child(offers, "Предложения"), "Предложение")
    types, type_id = _price_type(offers, price_type) if offers is not None else ({}, "")
    total = len(items) + len(offer_items)
    position = int(state.get("position", 0))
    report = CatalogReport(**state.get("report", {}))
    end = total if step <= 0 else min(total, position + step)
    problems: list[dict[str, str]] = []
    try:
        with session.begin_nested():
            if not state.get("checked"):
                _check(session, path.name, items, offer_items, types, type_id)
                if classifier is not None:
                    _groups(session, actor, _child(classifier, "Группы"), None, report)
            for i in range(position, end):
                if i < len(items):
                    _product(session, actor, items[i], props, report, path.parent, problems)
                else:
                    _offer(session, actor, offer_items[i - len(items)], types, type_id,
                           report)
    except ValidationFailed as exc:
        raise ExchangeError(f"{path.name}: " + "; ".join(
            f"{k}: {v}" for k, v in exc.fields.items())) from None
    state.update(checked=True, position=end, total=total, report=report.__dict__.copy(),
                 problems=problems)
    return end >= total


def _property_names(classifier: Element | None) -> dict[str, tuple[str, dict[str, str]]]:
    """Property Ид → (its name, {value Ид → value}) from the classifier's Свойства."""
    out: dict[str, tuple[str, dict[str, str]]] = {}
    for prop in _children(_child(classifier, "Свойства"), "Свойство"):
        choices = {_text(v, "ИдЗначения"): _text(v, "Значение")
                   for v in _children(_child(prop, "ВариантыЗначений"), "Справочник")}
        out[_text(prop, "Ид")] = (_text(prop, "Наименование") or _text(prop, "Ид"), choices)
    return out


def _price_type(offers: Element, price_type: str) -> tuple[dict[str, tuple[str, str]], str]:
    types = {_text(t, "Ид"): (_text(t, "Наименование"), _text(t, "Валюта") or "RUB")
             for t in _children(_child(offers, "ТипыЦен"), "ТипЦены")}
    if price_type:
        wanted = [i for i, (n, _c) in types.items() if price_type in (i, n)]
        if not wanted:
            raise ExchangeError(f"unknown price type '{price_type}' (the file has: "
                                + ", ".join(n for n, _c in types.values()) + ")")
        return types, wanted[0]
    return types, next(iter(types), "")


def _check(session: Session, filename: str, items: list[Element], offer_items: list[Element],
           types: dict[str, tuple[str, str]], type_id: str) -> None:
    """Everything that can be known wrong before writing: ExchangeError naming the item."""
    from crm_models.services.catalog import _clean_exchange_fields, _validate_product

    known: set[str] = set()
    for item in items:
        ext = _text(item, "Ид")
        if not ext:
            raise ExchangeError(f"{filename}: a product without Ид")
        known.add(ext)
        fields, deleted = _product_fields(item, {})
        if deleted:
            continue
        fields.pop("properties", None)
        try:
            _validate_product(session, fields, partial=False)
        except ValidationFailed as exc:
            raise ExchangeError(f"{filename}: product '{ext[:60]}': " + "; ".join(
                f"{k}: {v}" for k, v in exc.fields.items())) from None
    for offer in offer_items:
        ext = _text(offer, "Ид").split("#")[0]
        if ext not in known and _ref(session, "product", ext) is None:
            raise ExchangeError(f"an offer for an unknown product '{ext[:60]}'")
        _offer_price(offer, types, type_id)
        try:
            _clean_exchange_fields({"stock": _offer_stock(offer)})
        except ValidationFailed:
            raise ExchangeError(f"offer '{ext[:60]}': Количество is not a number") from None


def _groups(session: Session, actor: Actor, groups: Element | None, parent_id: int | None,
            report: CatalogReport) -> None:
    for g in _children(groups, "Группа"):
        ext, name = _text(g, "Ид"), _text(g, "Наименование")
        if not ext or not name:
            raise ExchangeError("a group without Ид or Наименование")
        local = _ref(session, "section", ext)
        if local is None:
            section = save_section(session, actor, name=name, parent_id=parent_id)
            _remember(session, "section", ext, section.id)
            local = section.id
            report.sections += 1
        else:
            current = session.get(ProductSection, local)
            if current is not None and (current.name != name or current.parent_id != parent_id):
                save_section(session, actor, local, name=name, parent_id=parent_id)
                report.sections += 1
        _groups(session, actor, _child(g, "Группы"), local, report)


def _vat(item: Element) -> str | None:
    for rate in _children(_child(item, "СтавкиНалогов"), "СтавкаНалога"):
        value = _text(rate, "Ставка").replace("%", "").strip().lower()
        if value in ("20", "10", "0"):
            return value
        if value in ("без ндс", ""):
            return "none"
    return None


def _product_fields(item: Element, props: dict[str, tuple[str, dict[str, str]]]
                    ) -> tuple[dict[str, Any], bool]:
    deleted = _text(item, "ПометкаУдаления").lower() == "true" or item.get("Статус") == "Удален"
    fields: dict[str, Any] = {"name": _text(item, "Наименование"),
                              "sku": _text(item, "Артикул")[:100],
                              "description": _text(item, "Описание"), "active": not deleted}
    unit_el = _child(item, "БазоваяЕдиница")
    if unit_el is not None:
        fields["unit"] = UNIT_CODES.get((unit_el.get("Код") or "").strip(), "pcs")
    vat = _vat(item)
    if vat is not None:
        fields["vat_rate"] = vat
    values = _child(item, "ЗначенияСвойств")
    if values is not None:
        out: dict[str, str] = {}
        for v in _children(values, "ЗначенияСвойства"):
            name, choices = props.get(_text(v, "Ид"), (_text(v, "Ид"), {}))
            value = _text(v, "Значение")
            if name:
                out[name[:255]] = choices.get(value, value)[:2000]
        fields["properties"] = out
    return fields, deleted


def _product(session: Session, actor: Actor, item: Element,
             props: dict[str, tuple[str, dict[str, str]]], report: CatalogReport,
             folder: Path, problems: list[dict[str, str]]) -> None:
    ext = _text(item, "Ид")
    fields, deleted = _product_fields(item, props)
    group_ids = _children(_child(item, "Группы"), "Ид")
    if group_ids:
        fields["section_id"] = _ref(session, "section", (group_ids[0].text or "").strip())
    local = _ref(session, "product", ext)
    before = session.get(Product, local) if local is not None else None
    if before is None:
        if deleted:
            return  # marked deleted before we ever had it
        product = create_product(session, actor, **fields)
        session.execute(delete(ExchangeRef).where(ExchangeRef.kind == "product",
                                                  ExchangeRef.external_id == ext))
        _remember(session, "product", ext, product.id)
        _picture(session, actor, product, item, folder, report, problems)
        report.created += 1
        return
    updated_at, was_active = before.updated_at, before.active
    product = update_product(session, actor, before.id, **fields)
    if not deleted:
        _picture(session, actor, product, item, folder, report, problems)
    if deleted and was_active:
        report.deleted += 1
    elif product.updated_at != updated_at:
        report.updated += 1
    else:
        report.unchanged += 1


def _picture(session: Session, actor: Actor, product: Product, item: Element, folder: Path,
             report: CatalogReport, problems: list[dict[str, str]]) -> None:
    """The product's first ``Картинка`` becomes its picture (through the service, as a
    picture uploaded on the product's page); the same bytes as its current picture write
    nothing. No ``Картинка``: the picture is left as it is (an exchange of changes only
    leaves them out). A picture that cannot be taken — bad name, not uploaded, not a
    readable PNG or JPEG, too big — is a problem naming the product and the file; the
    product stays imported."""
    names = [(c.text or "").strip() for c in _children(item, "Картинка")]
    name = next((n for n in names if n), "")
    if not name:
        return
    before = product.picture_id
    try:
        data = read_picture(folder, name, max_bytes=PICTURE_MAX_BYTES)
        with session.begin_nested():
            set_product_picture(session, actor, product.id, data)
    except ExchangeError as exc:
        reason = str(exc)
    except ValidationFailed as exc:
        reason = "; ".join(exc.fields.values())
    else:
        if product.picture_id != before:
            report.pictures += 1
        return
    report.picture_errors += 1
    who = f"product '{_text(item, 'Ид')[:60]}' ({_text(item, 'Наименование')[:80]})"
    problems.append({"filename": name[:200],
                     "message": f"{who}: picture '{name[:200]}': {reason}"})


def _offer_stock(offer: Element) -> str | None:
    """Количество, or the sum of the warehouses' КоличествоНаСкладе (2.08+); None: absent."""
    if _child(offer, "Количество") is not None:
        return _text(offer, "Количество").replace(" ", "").replace(",", ".") or None
    stores = [s.get("КоличествоНаСкладе") for s in _children(offer, "Склад")]
    found = [x.replace(",", ".") for x in stores if x]
    if not found:
        return None
    try:
        return str(sum((Decimal(x) for x in found), Decimal(0)))
    except InvalidOperation:
        return found[0]  # not a number: the check names it


def _offer_price(offer: Element, types: dict[str, tuple[str, str]], type_id: str
                 ) -> tuple[Decimal, str] | None:
    ext = _text(offer, "Ид").split("#")[0]
    for price in _children(_child(offer, "Цены"), "Цена"):
        if _text(price, "ИдТипаЦены") not in (type_id, ""):
            continue
        raw = _text(price, "ЦенаЗаЕдиницу").replace(" ", "").replace(",", ".")
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise ExchangeError(f"offer '{ext[:60]}': price '{raw[:20]}' is not a number") \
                from None
        currency = _text(price, "Валюта") or types.get(type_id, ("", "RUB"))[1]
        return value, "RUB" if currency in ("руб", "руб.", "643") else currency
    return None


def _offer(session: Session, actor: Actor, offer: Element, types: dict[str, tuple[str, str]],
           type_id: str, report: CatalogReport) -> None:
    ext = _text(offer, "Ид").split("#")[0]  # "product#characteristic"
    local = _ref(session, "product", ext)
    if local is None:
        raise ExchangeError(f"an offer for an unknown product '{ext[:60]}'")
    fields: dict[str, Any] = {}
    stock = _offer_stock(offer)
    if stock is not None:
        fields["stock"] = stock
        report.stock += 1
    price = _offer_price(offer, types, type_id)
    if price is not None:
        fields["price"], fields["currency"] = str(price[0]), price[1]
        report.prices += 1
    if fields:
        update_product(session, actor, local, **fields)


# --- sale ----------------------------------------------------------------------------------

def orders_document(session: Session, actor: Actor, *, limit: int = 500) -> tuple[str, list[int]]:
    """The CommerceML document of deals with product rows not yet confirmed, and their ids."""
    sent = select(ExchangeRef.local_id).where(ExchangeRef.kind == "deal_sent")
    with_rows = select(ProductRow.entity_id).where(ProductRow.entity_type == "deal")
    deals = list(session.scalars(select(Deal).where(
        Deal.id.in_(with_rows), Deal.id.not_in(sent), actor.scope(Deal, "read"))
        .order_by(Deal.id).limit(limit)))
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<КоммерческаяИнформация ВерсияСхемы="2.08" ДатаФормирования='
           f'"{utcnow().strftime("%Y-%m-%dT%H:%M:%S")}">']
    for deal in deals:
        rows = session.scalars(select(ProductRow).where(
            ProductRow.entity_type == "deal", ProductRow.entity_id == deal.id)
            .order_by(ProductRow.sort)).all()
        out.append("<Документ>")
        out.append(f"<Ид>{deal.id}</Ид><Номер>{deal.id}</Номер>"
                   f"<Дата>{deal.created_at.date().isoformat()}</Дата>"
                   "<ХозОперация>Заказ товара</ХозОперация><Роль>Продавец</Роль>"
                   f"<Валюта>{_esc(deal.currency)}</Валюта><Курс>1</Курс>"
                   f"<Сумма>{deal.amount or Decimal('0.00')}</Сумма>")
        if deal.contacts:
            c = deal.contacts[0]
            out.append(f"<Контрагенты><Контрагент><Ид>contact-{c.id}</Ид><Наименование>"
                       f"{_esc(c.full_name)}</Наименование><Роль>Покупатель</Роль>"
                       "</Контрагент></Контрагенты>")
        out.append("<Товары>")
        for r in rows:
            ext = _external_product(session, r.product_id)
            out.append(f"<Товар><Ид>{_esc(ext)}</Ид><Наименование>{_esc(r.name)}</Наименование>"
                       f"<ЦенаЗаЕдиницу>{r.price}</ЦенаЗаЕдиницу>"
                       f"<Количество>{r.quantity}</Количество>"
                       f"<Сумма>{(r.price * r.quantity).quantize(Decimal('0.01'))}</Сумма>"
                       "</Товар>")
        out.append("</Товары></Документ>")
    out.append("</КоммерческаяИнформация>")
    return "\n".join(out), [d.id for d in deals]


def _esc(value: Any) -> str:
    return (str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _external_product(session: Session, product_id: int | None) -> str:
    if product_id is None:
        return ""
    ext = session.scalar(select(ExchangeRef.external_id).where(
        ExchangeRef.kind == "product", ExchangeRef.local_id == product_id))
    return ext or f"marshrut-{product_id}"


def confirm_sent(session: Session, deal_ids: list[int]) -> None:
    for deal_id in deal_ids:
        if _ref(session, "deal_sent", str(deal_id)) is None:
            _remember(session, "deal_sent", str(deal_id), deal_id)


def import_statuses(session: Session, actor: Actor, path: Path) -> int:
    """Documents 1C sends back: "оплачен"/"Дата оплаты по 1С" → the deal's invoices paid,
    "отгружен"/"Дата отгрузки по 1С" → the deal won. The number of deals changed."""
    root = parse(path)
    changed = 0
    with session.begin_nested():
        for doc in _children(root, "Документ"):
            number = _text(doc, "Номер") or _text(doc, "Ид")
            if not number.isdigit():
                continue
            deal = session.get(Deal, int(number))
            if deal is None:
                continue
            props = {_text(p, "Наименование").lower(): _text(p, "Значение").lower()
                     for p in _children(_child(doc, "ЗначенияРеквизитов"), "ЗначениеРеквизита")}
            status = props.get("статус заказа", "")
            paid = "оплачен" in status or bool(props.get("дата оплаты по 1с")) or \
                props.get("оплачен") == "true"
            shipped = "отгружен" in status or bool(props.get("дата отгрузки по 1с")) or \
                props.get("отгружен") == "true"
            if paid:
                for inv in session.scalars(select(Invoice).where(
                        Invoice.deal_id == deal.id, Invoice.stage.not_in(("paid", "cancelled")))):
                    if inv.stage == "draft":  # paid in 1C: it was sent, whatever we recorded
                        change_invoice_stage(session, actor, inv.id, "sent")
                    change_invoice_stage(session, actor, inv.id, "paid")
            if shipped:
                won = session.scalar(select(Stage.code).where(
                    Stage.pipeline_id == deal.pipeline_id, Stage.semantics == "won"))
                if won and deal.stage.code != won:
                    change_deal_stage(session, actor, deal.id, won)
            if paid or shipped:
                try:
                    add_comment(session, actor, entity_type="deal", entity_id=deal.id,
                                text="1С: " + ", ".join(
                                    s for s, on in (("оплачен", paid), ("отгружен", shipped))
                                    if on))
                except CrmError:
                    pass
                changed += 1
    return changed
