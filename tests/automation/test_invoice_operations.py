"""The BPMN service operations "make an invoice from the deal" and "move an invoice"."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from automation.operations import crm_operations
from crm_models.activity import AuditEvent, OutboxEvent
from crm_models.invoices import Invoice
from crm_models.services import catalog as cat
from crm_models.services.product_rows import set_product_rows
from engine.errors import ServiceCallError
from engine.ports import ProcessContext
from tests.factories import SYSTEM, make_deal, make_lead

OPS = {op.spec.name: op for op in crm_operations()}


def call(db, name, entity, entity_id, **params):
    ctx = ProcessContext("billing", 1, 9, "Task_1", entity, entity_id)
    return OPS[name](db, ctx, params, {})


def test_create_an_invoice_then_mark_it_sent_and_paid(db, org):
    p = cat.create_product(db, SYSTEM, name="Услуга", price="1000", vat_rate="20")
    deal = make_deal(db, org.m1)
    set_product_rows(db, SYSTEM, "deal", deal.id, [{"product_id": p.id, "quantity": 3}])
    out = call(db, "crm.create_invoice", "deal", deal.id, due_days="5",
               buyer_inn="7712345678")
    assert out["invoice"]["total"] == "3000.00" and out["invoice"]["stage"] == "draft"
    inv = db.get(Invoice, out["invoice"]["id"])
    assert (inv.due_on - inv.issued_on).days == 5 and inv.buyer_inn == "7712345678"
    audit = db.scalars(select(AuditEvent).where(AuditEvent.entity_type == "invoice")).first()
    assert audit.actor_label.startswith("process billing")
    assert call(db, "crm.set_invoice_stage", "deal", deal.id, stage="sent")[
        "invoice"]["stage"] == "sent"
    call(db, "crm.set_invoice_stage", "deal", deal.id, stage="paid", invoice_id=str(inv.id))
    types = list(db.scalars(select(OutboxEvent.event_type).where(
        OutboxEvent.entity_type == "invoice").order_by(OutboxEvent.id)))
    assert types == ["invoice.created", "invoice.stage_changed", "invoice.stage_changed",
                     "invoice.paid"]


def test_bad_use_is_a_non_retryable_error_naming_the_field(db, org):
    deal = make_deal(db, org.m1)
    with pytest.raises(ServiceCallError) as exc:
        call(db, "crm.create_invoice", "deal", deal.id)
    assert not exc.value.retryable and "deal_id" in exc.value.fields
    with pytest.raises(ServiceCallError) as exc:
        call(db, "crm.set_invoice_stage", "deal", deal.id, stage="sent")
    assert "invoice_id" in exc.value.fields
    lead = make_lead(db, org.m1)
    with pytest.raises(ServiceCallError):
        call(db, "crm.create_invoice", "lead", lead.id)
