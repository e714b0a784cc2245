"""Outbox and audit events: exactly one per change, the right type and payload, none for a
no-op, and none at all when the transaction (or a failing service call) is rolled back."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_models.activity import Activity, AuditEvent, Comment, OutboxEvent
from crm_models.entities import Company, Contact, Deal, Lead
from crm_models.errors import ValidationFailed
from crm_models.permissions import actor_for
from crm_models.services import (
    add_activity,
    add_comment,
    change_deal_stage,
    convert_lead,
    create_company,
    create_contact,
    create_deal,
    create_lead,
    delete_company,
    delete_contact,
    delete_deal,
    delete_lead,
    update_deal,
    update_lead,
)
from tests.factories import Org, make_company, make_contact, make_deal, make_lead


def outbox(db: Session) -> list[OutboxEvent]:
    return list(db.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))


def audit(db: Session) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def types(db: Session, since: int = 0) -> list[str]:
    return [e.event_type for e in outbox(db)[since:]]


def rows(db: Session, model: Any) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture()
def m1(db: Session, org: Org) -> Any:
    return actor_for(db, org.m1)


@pytest.mark.parametrize(("entity", "create", "fields"), [
    ("lead", create_lead, {"title": "Lead"}),
    ("deal", create_deal, {"title": "Deal", "amount": "10"}),
    ("contact", create_contact, {"last_name": "Petrov"}),
    ("company", create_company, {"title": "Vector"}),
])
def test_created_event_once_with_fields_and_audit(db: Session, m1: Any, org: Org, entity: str,
                                                  create: Any, fields: dict[str, Any]) -> None:
    before = len(outbox(db))
    record = create(db, m1, **fields)
    events = outbox(db)[before:]
    assert [(e.event_type, e.entity_type, e.entity_id) for e in events] == [
        (f"{entity}.created", entity, record.id)]
    assert events[0].actor_user_id == org.m1.id
    assert events[0].actor_label == "Manager One"
    assert events[0].payload["fields"]["id"] == record.id
    assert events[0].payload["fields"]["responsible_id"] == org.m1.id
    trail = [a for a in audit(db) if a.entity_type == entity and a.entity_id == record.id]
    assert [a.action for a in trail] == ["created"]
    assert trail[0].actor_user_id == org.m1.id
    for name in fields:
        assert trail[0].changes[name][0] is None
    if entity == "deal":
        assert trail[0].changes["amount"] == [None, "10.00"]
        assert events[0].payload["fields"]["stage"] == "NEW"


def test_deal_update_carries_changed_fields_only(db: Session, m1: Any, org: Org) -> None:
    deal = make_deal(db, org.m1, amount="100", probability=10)
    before = len(outbox(db))
    update_deal(db, m1, deal.id, title=deal.title, amount="250.5", probability=10)
    events = outbox(db)[before:]
    assert [e.event_type for e in events] == ["deal.updated"]
    assert events[0].payload["changed"] == {"amount": ["100.00", "250.50"]}
    assert events[0].payload["fields"]["amount"] == "250.50"
    last = audit(db)[-1]
    assert (last.action, last.actor_user_id, last.changes) == (
        "updated", org.m1.id, {"amount": ["100.00", "250.50"]})


def test_stage_change_emits_updated_and_stage_changed(db: Session, m1: Any, org: Org) -> None:
    deal = make_deal(db, org.m1)
    before = len(outbox(db))
    change_deal_stage(db, m1, deal.id, "WON")
    events = outbox(db)[before:]
    assert [e.event_type for e in events] == ["deal.updated", "deal.stage_changed"]
    # Only fields of the schema count as changed; the derived semantics is in the payload.
    assert events[0].payload["changed"] == {"stage": ["NEW", "WON"]}
    assert {k: events[1].payload[k] for k in ("from", "to", "semantics")} == {
        "from": "NEW", "to": "WON", "semantics": "won"}
    change_deal_stage(db, m1, deal.id, "LOSE")
    assert outbox(db)[-1].payload["semantics"] == "lost"
    assert outbox(db)[-1].payload["from"] == "WON"


def test_no_op_update_writes_no_event(db: Session, m1: Any, org: Org) -> None:
    contact = make_contact(db, org.m1)
    deal = make_deal(db, org.m1, amount="100.50", contact_ids=[contact.id],
                     close_date="2025-03-01")
    lead = make_lead(db, org.m1, phones=[{"value": "+7 900 1", "value_type": "MOBILE"}])
    before_out, before_audit = len(outbox(db)), len(audit(db))
    update_deal(db, m1, deal.id, title=deal.title, amount="100.5", contact_ids=[contact.id],
                close_date="2025-03-01", stage="NEW")
    update_deal(db, m1, deal.id)
    update_lead(db, m1, lead.id, phones=[{"value": "+7 900 1", "value_type": "mobile"}])
    change_deal_stage(db, m1, deal.id, "NEW")
    assert len(outbox(db)) == before_out
    assert len(audit(db)) == before_audit


def test_lead_updated_event(db: Session, m1: Any, org: Org) -> None:
    lead = make_lead(db, org.m1)
    before = len(outbox(db))
    update_lead(db, m1, lead.id, status="IN_PROCESS", source="CALL")
    (event,) = outbox(db)[before:]
    assert event.event_type == "lead.updated"
    assert event.payload["changed"] == {"status": ["NEW", "IN_PROCESS"], "source": ["", "CALL"]}


@pytest.mark.parametrize(("entity", "make", "delete"), [
    ("lead", make_lead, delete_lead), ("deal", make_deal, delete_deal),
    ("contact", make_contact, delete_contact), ("company", make_company, delete_company),
])
def test_deleted_event(db: Session, m1: Any, org: Org, entity: str, make: Any,
                       delete: Any) -> None:
    record = make(db, org.m1)
    record_id = record.id
    before = len(outbox(db))
    delete(db, m1, record_id)
    events = outbox(db)[before:]
    assert [(e.event_type, e.entity_id) for e in events] == [(f"{entity}.deleted", record_id)]
    assert events[0].payload["fields"]["id"] == record_id
    assert audit(db)[-1].action == "deleted"


def test_conversion_events(db: Session, m1: Any, org: Org) -> None:
    lead = make_lead(db, org.m1, first_name="Ivan", company_title="Vector")
    before = len(outbox(db))
    conv = convert_lead(db, m1, lead.id)
    assert types(db, before) == ["company.created", "contact.created", "deal.created",
                                 "lead.updated", "lead.converted"]
    converted = outbox(db)[-1]
    assert converted.entity_id == lead.id
    assert converted.payload == {"deal_id": conv.deal.id, "contact_id": conv.contact.id,
                                 "company_id": conv.company.id}
    assert outbox(db)[-2].payload["changed"]["status"] == ["NEW", "CONVERTED"]


def test_comment_and_activity_events(db: Session, m1: Any, org: Org) -> None:
    deal = make_deal(db, org.m1)
    before = len(outbox(db))
    comment = add_comment(db, m1, entity_type="deal", entity_id=deal.id, text=" Hello ")
    act = add_activity(db, m1, entity_type="deal", entity_id=deal.id, type="call",
                       subject="Call back", due_at="2030-01-01T10:00:00+03:00")
    events = outbox(db)[before:]
    assert [(e.event_type, e.entity_type, e.entity_id) for e in events] == [
        ("comment.added", "deal", deal.id), ("activity.created", "deal", deal.id)]
    assert events[0].payload == {"comment_id": comment.id, "text": "Hello"}
    assert events[1].payload["activity_id"] == act.id
    assert events[1].payload["due_at"] == "2030-01-01T07:00:00+00:00"
    assert events[1].payload["responsible_id"] == org.m1.id


def test_rollback_leaves_no_rows_and_no_events(db: Session, m1: Any, org: Org) -> None:
    db.commit()
    counts = {m: rows(db, m) for m in (OutboxEvent, AuditEvent, Deal, Lead, Contact, Company)}
    lead = create_lead(db, m1, title="Gone", first_name="Ivan", company_title="Gone Ltd")
    deal = create_deal(db, m1, title="Gone")
    update_deal(db, m1, deal.id, amount="5")
    convert_lead(db, m1, lead.id)
    add_comment(db, m1, entity_type="deal", entity_id=deal.id, text="x")
    db.rollback()
    assert {m: rows(db, m) for m in counts} == counts


def test_conversion_failing_at_the_deal_step_leaves_nothing(db: Session, m1: Any,
                                                           org: Org) -> None:
    lead = make_lead(db, org.m1, first_name="Ivan", company_title="Half Ltd")
    db.commit()
    counts = {m: rows(db, m) for m in (OutboxEvent, AuditEvent, Deal, Contact, Company)}
    with pytest.raises(ValidationFailed) as info:
        convert_lead(db, m1, lead.id, deal={"stage": "NO_SUCH_STAGE"})
    assert "stage" in info.value.fields
    # Even a caller that goes on and commits must not find half a conversion.
    db.commit()
    assert {m: rows(db, m) for m in counts} == counts
    db.expire_all()
    assert db.get(Lead, lead.id).status == "NEW"
    assert db.get(Lead, lead.id).contact_id is None


def test_failed_update_changes_nothing_even_when_committed(db: Session, m1: Any,
                                                          org: Org) -> None:
    deal = make_deal(db, org.m1, title="Original", amount="1")
    db.commit()
    before = len(outbox(db))
    with pytest.raises(ValidationFailed) as info:
        update_deal(db, m1, deal.id, title="Changed", amount="2", stage="NO_SUCH_STAGE")
    assert set(info.value.fields) == {"stage"}
    db.commit()
    db.expire_all()
    fresh = db.get(Deal, deal.id)
    assert (fresh.title, str(fresh.amount)) == ("Original", "1.00")
    assert len(outbox(db)) == before


def test_delete_unlinks_and_records_it_in_history(db: Session, m1: Any, org: Org) -> None:
    company = make_company(db, org.m1)
    contact = make_contact(db, org.m1, company_id=company.id)
    deal = make_deal(db, org.m1, company_id=company.id, contact_ids=[contact.id])
    deal_id, contact_id, company_id = deal.id, contact.id, company.id
    before = len(outbox(db))
    delete_company(db, m1, company_id)
    # One outbox event (the delete); the unlinked records get audit entries only.
    assert types(db, before) == ["company.deleted"]
    unlinked = {(a.entity_type, a.entity_id): a.changes for a in audit(db)
                if a.action == "unlinked"}
    assert unlinked == {("contact", contact_id): {"company_id": [company_id, None]},
                        ("deal", deal_id): {"company_id": [company_id, None]}}
    delete_contact(db, m1, contact_id)
    unlinked = [a.changes for a in audit(db) if a.action == "unlinked" and a.entity_id == deal_id
                and "contact_ids" in a.changes]
    assert unlinked == [{"contact_ids": [[contact_id], []]}]


def test_delete_removes_the_timeline(db: Session, m1: Any, org: Org) -> None:
    deal = make_deal(db, org.m1)
    other = make_deal(db, org.m1)
    for d in (deal, other):
        add_comment(db, m1, entity_type="deal", entity_id=d.id, text="note")
        add_activity(db, m1, entity_type="deal", entity_id=d.id, type="todo", subject="do")
    delete_deal(db, m1, deal.id)
    assert [c.entity_id for c in db.scalars(select(Comment))] == [other.id]
    assert [a.entity_id for a in db.scalars(select(Activity))] == [other.id]
