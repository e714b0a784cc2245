"""The product catalog's service functions: rights from the matrix, field-level validation,
and one audit plus one outbox event per write in the same transaction."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_models.activity import AuditEvent, OutboxEvent
from crm_models.catalog import Product
from crm_models.errors import Conflict, PermissionDenied, ValidationFailed
from crm_models.org import PermLevel
from crm_models.services import catalog as cat
from crm_models.services.org import save_role
from tests.factories import SYSTEM, actor, role


def _grant_products(db, levels=("add", "update")):
    save_role(db, SYSTEM, role(db, "manager").id,
              levels={("product", a): int(PermLevel.ALL) for a in levels})
    db.commit()


def test_manager_without_product_rights_cannot_add_but_reads(db, org):
    m1 = actor(db, org.m1)
    with pytest.raises(PermissionDenied):
        cat.create_product(db, m1, name="Консультация", price="1000")
    db.rollback()
    p = cat.create_product(db, SYSTEM, name="Консультация", price="1000")
    db.commit()
    assert cat.get_product(db, m1, p.id).name == "Консультация"
    with pytest.raises(PermissionDenied):
        cat.update_product(db, m1, p.id, price="2000")
    with pytest.raises(PermissionDenied):
        cat.delete_product(db, m1, p.id)
    with pytest.raises(PermissionDenied):
        cat.get_product(db, _no_rights(db, org), p.id)


def _no_rights(db, org):
    save_role(db, SYSTEM, role(db, "observer").id, levels={("product", "read"): 0})
    db.commit()
    return actor(db, org.observer)


def test_manager_with_add_update_granted_on_the_role_can(db, org):
    _grant_products(db)
    m1 = actor(db, org.m1)
    assert not m1.is_admin
    p = cat.create_product(db, m1, name="Лицензия", price="1500.50", vat_rate="20",
                           unit="license", sku="LIC-1")
    cat.update_product(db, m1, p.id, price="1600")
    db.commit()
    assert db.get(Product, p.id).price == Decimal("1600.00")
    with pytest.raises(PermissionDenied):  # delete was not granted
        cat.delete_product(db, m1, p.id)


def test_validation_names_every_bad_field(db, org):
    with pytest.raises(ValidationFailed) as exc:
        cat.create_product(db, SYSTEM, name="", price="-5", vat_rate="18", unit="bucket",
                           currency="рубли", section_id=999, colour="red")
    fields = exc.value.fields
    assert set(fields) == {"name", "price", "vat_rate", "unit", "currency", "section_id",
                           "colour"}
    assert "20, 10, 0, none" in fields["vat_rate"]
    assert "non-negative" in fields["price"]
    with pytest.raises(ValidationFailed) as exc:
        cat.create_product(db, SYSTEM, name="X", section_id=999)
    assert exc.value.fields == {"section_id": "no product section with id 999"}
    with pytest.raises(ValidationFailed) as exc:
        cat.create_product(db, SYSTEM, name="X", price="1.005")
    assert set(exc.value.fields) == {"price"}
    db.rollback()
    assert db.scalars(select(Product)).first() is None


def test_writes_leave_audit_and_outbox_rows_in_the_same_transaction(db, org):
    _grant_products(db, ("add", "update", "delete"))
    m1 = actor(db, org.m1)
    section = cat.save_section(db, m1, name="Услуги")
    p = cat.create_product(db, m1, name="Внедрение", price="50000", section_id=section.id,
                           vat_rate="20", vat_included=True, unit="service")
    db.rollback()  # nothing survives a rollback: neither the row nor its events
    assert db.scalars(select(OutboxEvent).where(OutboxEvent.entity_type == "product")).first() \
        is None
    assert db.scalars(select(AuditEvent).where(AuditEvent.entity_type == "product")).first() \
        is None
    section = cat.save_section(db, m1, name="Услуги")
    p = cat.create_product(db, m1, name="Внедрение", price="50000", section_id=section.id,
                           vat_rate="20", unit="service")
    cat.update_product(db, m1, p.id, price="55000", name="Внедрение")
    cat.update_product(db, m1, p.id, price="55000")  # no change: no event
    cat.delete_product(db, m1, p.id)
    db.commit()
    events = list(db.scalars(select(OutboxEvent).where(OutboxEvent.entity_type == "product")
                             .order_by(OutboxEvent.id)))
    assert [(e.event_type, e.entity_id) for e in events] == [
        ("product.created", p.id), ("product.updated", p.id), ("product.deleted", p.id)]
    assert events[0].payload["fields"]["price"] == "50000.00"
    assert events[1].payload["changed"] == {"price": ["50000.00", "55000.00"]}
    assert events[2].payload["fields"]["name"] == "Внедрение"
    assert all(e.actor_user_id == org.m1.id for e in events)
    audits = list(db.scalars(select(AuditEvent).where(AuditEvent.entity_type == "product")
                             .order_by(AuditEvent.id)))
    assert [a.action for a in audits] == ["created", "updated", "deleted"]
    assert audits[1].changes == {"price": ["50000.00", "55000.00"]}


def test_list_search_and_section_subtree(db, org):
    root = cat.save_section(db, SYSTEM, name="Товары")
    sub = cat.save_section(db, SYSTEM, name="Ноутбуки", parent_id=root.id)
    other = cat.save_section(db, SYSTEM, name="Услуги")
    cat.create_product(db, SYSTEM, name="Ноутбук ThinkPad", sku="TP-14", section_id=sub.id)
    cat.create_product(db, SYSTEM, name="Мышь", sku="MS-1", section_id=root.id)
    cat.create_product(db, SYSTEM, name="Настройка ноутбука", section_id=other.id,
                       active=False)
    db.commit()
    m1 = actor(db, org.m1)
    names = [p.name for p in cat.list_products(db, m1, section_id=root.id).items]
    assert names == ["Мышь", "Ноутбук ThinkPad"]
    names = [p.name for p in cat.list_products(db, m1, search="НОУТБУК").items]
    assert names == ["Настройка ноутбука", "Ноутбук ThinkPad"]
    assert [p.name for p in cat.list_products(db, m1, search="tp-14").items] == [
        "Ноутбук ThinkPad"]
    assert cat.list_products(db, m1, active="false").total == 1
    with pytest.raises(ValidationFailed) as exc:
        cat.list_products(db, m1, section_id="x", sort="colour")
    assert set(exc.value.fields) == {"section_id", "sort"}
    assert [s.name for s in cat.list_sections(db, m1)] == ["Товары", "Ноутбуки", "Услуги"]


def test_sections_cannot_loop_and_only_empty_ones_are_deleted(db, org):
    root = cat.save_section(db, SYSTEM, name="A")
    child = cat.save_section(db, SYSTEM, name="B", parent_id=root.id)
    with pytest.raises(ValidationFailed) as exc:
        cat.save_section(db, SYSTEM, root.id, parent_id=child.id)
    assert set(exc.value.fields) == {"parent_id"}
    with pytest.raises(Conflict):
        cat.delete_section(db, SYSTEM, root.id)
    cat.delete_section(db, SYSTEM, child.id)
    cat.delete_section(db, SYSTEM, root.id)
    db.commit()
    assert cat.list_sections(db, SYSTEM) == []
