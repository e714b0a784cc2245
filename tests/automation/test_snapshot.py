"""Start data: a JSON snapshot of the entity and its event, numeric amounts, who set what."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from automation.actors import parse_process_label, process_actor
from automation.snapshot import SnapshotError, responsible_set_by, start_data
from crm_models.activity import AuditEvent, OutboxEvent
from crm_models.db import utcnow
from crm_models.services import assign_responsible, update_deal
from engine.ports import ProcessContext
from tests.factories import SYSTEM, make_company, make_contact, make_deal, make_lead


def test_deal_snapshot_has_relations_and_numeric_amount(db, org):
    company = make_company(db, org.head, title="ООО «Вектор»")
    contact = make_contact(db, org.head, first_name="Пётр", last_name="Петров",
                           company_id=company.id)
    deal = make_deal(db, org.m1, amount="2500000.50", company_id=company.id,
                     contact_ids=[contact.id])
    db.commit()
    event = db.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "deal.created",
                                                 OutboxEvent.entity_id == deal.id)).one()
    data = start_data(db, "deal", deal.id, event)
    assert json.loads(json.dumps(data)) == data  # JSON values only
    d = data["deal"]
    assert d["amount"] == "2500000.50"  # exact; the sandbox compares it as a number
    assert d["stage"] == "NEW" and d["title"] == deal.title
    assert d["company"]["title"] == "ООО «Вектор»"
    assert [c["full_name"] for c in d["contacts"]] == ["Пётр Петров"]
    assert d["responsible"] == {"id": org.m1.id, "email": "m1@test.local",
                                "full_name": "Manager One", "department": "Sales",
                                "department_id": org.sales_id}
    assert d["responsible_set_by"] is None
    assert data["event"]["type"] == "deal.created" and data["event"]["id"] == event.id
    assert data["event"]["entity_id"] == deal.id


def test_missing_amount_and_company_are_none(db, org):
    deal = make_deal(db, org.m1)
    data = start_data(db, "deal", deal.id)
    assert data["deal"]["amount"] is None and data["deal"]["company"] is None
    assert data["event"]["type"] == "manual"


def test_changed_fields_come_from_the_update_event(db, org):
    deal = make_deal(db, org.m1, amount="10")
    update_deal(db, SYSTEM, deal.id, amount="1500000")
    event = db.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "deal.updated")).one()
    data = start_data(db, "deal", deal.id, event)
    assert data["event"]["changed"]["amount"] == ["10.00", "1500000.00"]


def test_lead_snapshot(db, org):
    lead = make_lead(db, org.m2, company_title="ООО «Вектор»", amount="100")
    data = start_data(db, "lead", lead.id)
    assert data["lead"]["company_title"] == "ООО «Вектор»"
    assert data["lead"]["amount"] == "100.00" and data["lead"]["contact"] is None


def test_contact_and_company_snapshots(db, org):
    company = make_company(db, org.m1)
    contact = make_contact(db, org.m1, company_id=company.id)
    assert start_data(db, "contact", contact.id)["contact"]["company"]["id"] == company.id
    assert start_data(db, "company", company.id)["company"]["title"] == company.title


def test_responsible_set_by_names_the_process_until_a_person_changes_it(db, org):
    deal = make_deal(db, org.m1)
    ctx = ProcessContext("key_client_routing", 3, 42, "Task_Assign", "deal", deal.id)
    assign_responsible(db, process_actor(ctx), "deal", deal.id, org.head.id)
    assert start_data(db, "deal", deal.id)["deal"]["responsible_set_by"] == "key_client_routing"
    update_deal(db, SYSTEM, deal.id, title="renamed")  # other fields do not matter
    assert start_data(db, "deal", deal.id)["deal"]["responsible_set_by"] == "key_client_routing"
    assign_responsible(db, SYSTEM, "deal", deal.id, org.m2.id)
    assert start_data(db, "deal", deal.id)["deal"]["responsible_set_by"] is None


def test_process_labels_round_trip():
    ctx = ProcessContext("large_deal_routing", 2, 17, "Task_X")
    label = parse_process_label(ctx.label)
    assert label is not None
    assert (label.key, label.version, label.instance_id) == ("large_deal_routing", 2, 17)
    assert parse_process_label("Manager One") is None and parse_process_label(None) is None


@pytest.mark.parametrize("entity, entity_id", [("deal", 999999), ("invoice", 1)])
def test_missing_entity_raises(db, org, entity, entity_id):
    with pytest.raises(SnapshotError):
        start_data(db, entity, entity_id)


def _both_ways(db, deal_id):
    """(who set the responsible as read along with the record, as read on its own)."""
    db.flush()
    db.expunge_all()  # the record is loaded, not found in the session
    along = start_data(db, "deal", deal_id)["deal"]["responsible_set_by"]
    return along, responsible_set_by(db, "deal", deal_id)


def test_who_set_the_responsible_is_read_with_the_record_as_on_its_own(db, org):
    deal_id, head_id, m2_id = make_deal(db, org.m1).id, org.head.id, org.m2.id
    assert _both_ways(db, deal_id) == (None, None)
    ctx = ProcessContext("key_client_routing", 3, 42, "Task_Assign", "deal", deal_id)
    assign_responsible(db, process_actor(ctx), "deal", deal_id, head_id)
    assert _both_ways(db, deal_id) == ("key_client_routing", "key_client_routing")
    # an audit row whose changes name responsible_id only inside a value does not count
    db.execute(AuditEvent.__table__.insert(), [
        {"at": utcnow(), "actor_user_id": None, "actor_label": "Someone", "entity_type": "deal",
         "entity_id": deal_id, "action": "note", "changes": ["responsible_id"],
         "responsible_id": None},
        {"at": utcnow(), "actor_user_id": None, "actor_label": "Someone", "entity_type": "deal",
         "entity_id": deal_id, "action": "note", "changes": {"x": {"responsible_id": 1}},
         "responsible_id": None}])
    assert _both_ways(db, deal_id) == ("key_client_routing", "key_client_routing")
    for i in range(50):  # the process's change falls out of the 50 rows looked at
        update_deal(db, SYSTEM, deal_id, title=f"renamed {i}")
    assert _both_ways(db, deal_id) == (None, None)
    assign_responsible(db, process_actor(ctx), "deal", deal_id, m2_id)
    assert _both_ways(db, deal_id) == ("key_client_routing", "key_client_routing")
