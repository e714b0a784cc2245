"""The demo routing end to end: a manager creates deals and leads through the API, the shipped
processes route them before the request returns, tasks land in the right inbox."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from crm_models.activity import AuditEvent, OutboxEvent
from crm_models.entities import Deal, Lead
from crm_models.permissions import system_actor
from crm_models.services.crm import update_company

from ..engine.support import FakeClock
from .support import api_as, instances_of, tasks_of


def create(api, entity, **fields):
    r = api.post(f"/api/v1/{entity}s", json=fields)
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def test_large_deal_goes_to_the_corporate_manager_with_a_task(app, db, demo, monkeypatch):
    before = dt.datetime(2026, 3, 6, 14, 0, tzinfo=dt.UTC)  # a fixed "now" (a Friday)
    monkeypatch.setattr(app.extensions["engine"], "clock", FakeClock(before))
    manager = api_as(app, db, "manager1@demo.local")
    deal_id = create(manager, "deal", title="Станки для завода", amount="2500000")
    # routed before the request returned: the next GET (by the new responsible) shows it
    corporate = api_as(app, db, "corporate@demo.local")
    got = corporate.get(f"/api/v1/deals/{deal_id}").get_json()
    assert got["responsible_id"] == demo.corporate.id
    tasks = corporate.get("/api/v1/tasks").get_json()["items"]
    [task] = [t for t in tasks if t["entity_id"] == deal_id]
    assert task["name"] == "Связаться с клиентом" and task["assignee_id"] == demo.corporate.id
    due = dt.datetime.fromisoformat(task["due_at"])
    assert due == before + dt.timedelta(hours=2)  # "due in 2 hours": wall-clock hours
    assert "2500000.00 RUB" in task["instructions"]
    # the manager lost sight of it (a manager reads only their own deals)
    assert manager.get(f"/api/v1/deals/{deal_id}").status_code == 404
    assert manager.get("/api/v1/tasks").get_json()["items"] == []


def vector_kept_by(db, demo, user):
    """``user`` becomes ООО «Вектор»'s responsible: a manager with "own" rights may link
    deals only to companies he can read."""
    update_company(db, system_actor("tests"), demo.vector_id, responsible_id=user.id)
    db.commit()


def test_key_client_deal_goes_to_the_head_of_sales_whatever_the_amount(app, db, demo):
    vector_kept_by(db, demo, demo.m1)
    manager = api_as(app, db, "manager1@demo.local")
    small = create(manager, "deal", title="Запчасти", amount="50000", company_id=demo.vector_id)
    large = create(manager, "deal", title="Линия", amount="3000000", company_id=demo.vector_id)
    db.rollback()
    assert db.get(Deal, small).responsible_id == demo.head.id
    assert db.get(Deal, large).responsible_id == demo.head.id  # not the corporate manager
    head_tasks = api_as(app, db, "head@demo.local").get("/api/v1/tasks").get_json()["items"]
    assert sorted(t["entity_id"] for t in head_tasks) == [small, large]
    assert {t["name"] for t in head_tasks} == {"Связаться с ключевым клиентом"}
    assert tasks_of(db, entity_id=large, definition_key="large_deal_routing") == []


def test_small_deal_is_left_alone(app, db, demo):
    manager = api_as(app, db, "manager1@demo.local")
    deal_id = create(manager, "deal", title="Мелочь", amount="10000")
    db.rollback()
    assert db.get(Deal, deal_id).responsible_id == demo.m1.id
    assert tasks_of(db, entity_id=deal_id) == []
    statuses = {i.status for k in ("large_deal_routing", "key_client_routing")
                for i in instances_of(db, k, entity_id=deal_id)}
    assert statuses == {"completed"}


def test_key_client_lead_goes_to_the_head_of_sales(app, db, demo):
    manager = api_as(app, db, "manager2@demo.local")
    lead_id = create(manager, "lead", title="Запрос КП", company_title="ООО «Вектор»")
    other = create(manager, "lead", title="Другой запрос", company_title="ООО «Гранит»")
    db.rollback()
    assert db.get(Lead, lead_id).responsible_id == demo.head.id
    assert db.get(Lead, other).responsible_id == demo.m2.id
    [task] = tasks_of(db, entity_type="lead", entity_id=lead_id)
    assert task.assignee_id == demo.head.id and task.name == "Связаться с ключевым клиентом"
    assert instances_of(db, "large_deal_routing", entity_type="lead") == []  # deals only


def test_precedence_and_history_say_which_process_set_what(app, db, demo, engine):
    vector_kept_by(db, demo, demo.m1)
    manager = api_as(app, db, "manager1@demo.local")
    deal_id = create(manager, "deal", title="Большой ключевой", amount="5000000",
                     company_id=demo.vector_id)
    [key] = instances_of(db, "key_client_routing", entity_id=deal_id)
    # The first was started by deal.created; the key-client rule's assignment is a
    # deal.updated, which starts the large-deal rule again (it reacts to amounts raised above
    # its threshold) — that one leaves the deal alone as well.
    large, *on_updates = instances_of(db, "large_deal_routing", entity_id=deal_id)
    assert [i.status for i in on_updates] == ["completed"] * len(on_updates)
    assert key.id < large.id  # priority 10 ran first
    key_history = engine.history(db, key.id)
    [assigned] = [h for h in key_history if h.element_id == "Task_AssignHead"
                  and h.event == "left"]
    assert "crm.assign_responsible" in assigned.message
    assert assigned.changes["assigned"][1]["email"] == "head@demo.local"
    large_history = " | ".join(h.message for h in engine.history(db, large.id))
    assert "took flow Flow_NotLarge" in large_history
    assert large.status == "completed"
    audit = db.scalars(select(AuditEvent).where(AuditEvent.entity_type == "deal",
                                                AuditEvent.entity_id == deal_id)
                       .order_by(AuditEvent.id)).all()
    assert [a.actor_label for a in audit if "responsible_id" in a.changes][-1] == \
        f"process key_client_routing v1, instance {key.id}"


def test_api_instance_view_and_conflict_report(app, db, demo):
    manager = api_as(app, db, "manager1@demo.local")
    deal_id = create(manager, "deal", title="Для отчёта", amount="1500000")
    corporate = api_as(app, db, "corporate@demo.local")
    items = corporate.get(f"/api/v1/process-instances?entity_type=deal&entity_id={deal_id}"
                          ).get_json()["items"]
    assert {i["definition_key"] for i in items} == {"key_client_routing", "large_deal_routing"}
    large = next(i for i in items if i["definition_key"] == "large_deal_routing")
    detail = corporate.get(f"/api/v1/process-instances/{large['id']}").get_json()
    assert detail["status"] == "waiting" and detail["tasks"][0]["name"] == "Связаться с клиентом"
    assert any(h["event"] == "started" for h in detail["history"])
    # the manager no longer reads the deal, so neither its processes
    assert manager.get(f"/api/v1/process-instances/{large['id']}").status_code == 404
    assert manager.get(f"/api/v1/process-instances?entity_id={deal_id}").get_json()[
        "items"] == []
    defs = manager.get("/api/v1/process-definitions").get_json()
    [conflict] = defs["conflicts"]
    assert (conflict["event"], conflict["field"]) == ("deal.created", "responsible_id")
    assert [d["key"] for d in conflict["definitions"]] == ["key_client_routing",
                                                          "large_deal_routing"]


def test_every_demo_event_is_dispatched_once(app, db, demo):
    api = api_as(app, db, "manager1@demo.local")
    create(api, "deal", title="A", amount="2000000")
    db.rollback()
    pending = db.scalars(select(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None))).all()
    assert pending == []
