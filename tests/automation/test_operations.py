"""CRM service operations: each calls its CRM service as the process, typed params, clear errors."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from automation.models import Notification
from automation.operations import crm_operations
from automation.params import params_schema, parse_duration
from crm_models.activity import Activity, AuditEvent, Comment
from crm_models.entities import Deal, Lead
from engine.errors import ServiceCallError
from engine.ports import ProcessContext
from tests.factories import make_deal, make_lead

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


class FixedClock:
    def now(self) -> dt.datetime:
        return NOW


OPS = {op.spec.name: op for op in crm_operations(FixedClock())}


def call(db, name, entity, entity_id, **params):
    ctx = ProcessContext("routing", 2, 7, "Task_1", entity, entity_id)
    return OPS[name](db, ctx, params, {})


def last_audit(db, entity_id):
    return db.scalars(select(AuditEvent).where(AuditEvent.entity_id == entity_id)
                      .order_by(AuditEvent.id.desc())).first()


def test_assign_responsible_by_email_writes_as_the_process(db, org):
    deal = make_deal(db, org.m1, amount="2500000")
    out = call(db, "crm.assign_responsible", "deal", deal.id, user="corporate@test.local")
    assert db.get(Deal, deal.id).responsible_id == org.corporate.id
    assert out["deal"]["responsible"]["email"] == "corporate@test.local"
    assert out["deal"]["responsible_set_by"] == "routing"
    assert last_audit(db, deal.id).actor_label == "process routing v2, instance 7"


def test_assign_responsible_to_a_department_head_or_a_role_member(db, org):
    deal = make_deal(db, org.m1)
    call(db, "crm.assign_responsible", "deal", deal.id, department_head="sales")
    assert db.get(Deal, deal.id).responsible_id == org.head.id
    call(db, "crm.assign_responsible", "deal", deal.id, role="manager")
    assert db.get(Deal, deal.id).responsible_id in {org.corporate.id, org.m1.id, org.m2.id,
                                                    org.outsider.id}


@pytest.mark.parametrize("params, field", [
    ({}, "user"),
    ({"user": "m1@test.local", "role": "manager"}, "user"),
    ({"user": "ghost@test.local"}, "user"),
    ({"user": True}, "user"),
    ({"role": "wizards"}, "role"),
    ({"department_head": "Nowhere"}, "department_head"),
    ({"colour": "red", "user": "m1@test.local"}, "colour"),
])
def test_assign_responsible_bad_params(db, org, params, field):
    deal = make_deal(db, org.m1)
    with pytest.raises(ServiceCallError) as err:
        call(db, "crm.assign_responsible", "deal", deal.id, **params)
    assert err.value.retryable is False and field in err.value.fields
    assert "crm.assign_responsible" in err.value.message


def test_change_stage_and_its_errors(db, org):
    deal = make_deal(db, org.m1)
    out = call(db, "crm.change_stage", "deal", deal.id, stage="EXECUTING")
    assert out["deal"]["stage"] == "EXECUTING"
    with pytest.raises(ServiceCallError) as err:
        call(db, "crm.change_stage", "deal", deal.id, stage="NOPE")
    assert "stage" in err.value.fields
    lead = make_lead(db, org.m1)
    with pytest.raises(ServiceCallError, match="deals only"):
        call(db, "crm.change_stage", "lead", lead.id, stage="NEW")


def test_update_fields_validates_like_the_crm(db, org):
    deal = make_deal(db, org.m1)
    call(db, "crm.update_fields", "deal", deal.id, fields={"probability": 50})
    assert db.get(Deal, deal.id).probability == 50
    call(db, "crm.update_fields", "deal", deal.id, fields='{"probability": 70}')
    assert db.get(Deal, deal.id).probability == 70
    with pytest.raises(ServiceCallError) as err:
        call(db, "crm.update_fields", "deal", deal.id, fields={"probability": 500})
    assert "probability" in err.value.fields
    with pytest.raises(ServiceCallError) as err:
        call(db, "crm.update_fields", "deal", deal.id, fields="[1]")
    assert "fields" in err.value.fields


def test_create_activity_for_a_user_due_after_a_duration(db, org):
    deal = make_deal(db, org.m1)
    out = call(db, "crm.create_activity", "deal", deal.id, subject="Call back", type="call",
               user="m2@test.local", due="PT2H")
    act = db.get(Activity, out["activity"]["id"])
    assert act.responsible_id == org.m2.id and act.type == "call"
    assert act.due_at == NOW + dt.timedelta(hours=2)
    default = call(db, "crm.create_activity", "deal", deal.id, subject="Follow up")
    assert db.get(Activity, default["activity"]["id"]).responsible_id == org.m1.id
    with pytest.raises(ServiceCallError) as err:
        call(db, "crm.create_activity", "deal", deal.id, subject="x", due="2 hours",
             type="fax")
    assert set(err.value.fields) == {"due", "type"}


def test_add_comment_is_signed_by_the_process(db, org):
    deal = make_deal(db, org.m1)
    out = call(db, "crm.add_comment", "deal", deal.id, text="Routed to Corporate")
    comment = db.get(Comment, out["comment"]["id"])
    assert comment.author_label == "process routing v2, instance 7"
    with pytest.raises(ServiceCallError) as err:
        call(db, "crm.add_comment", "deal", deal.id, text="   ")
    assert "text" in err.value.fields


def test_notify_users_a_role_and_the_responsible(db, org):
    deal = make_deal(db, org.outsider)
    out = call(db, "crm.notify", "deal", deal.id, title="Big deal", user="head@test.local",
               responsible=True)
    assert out["notified"] == sorted([org.head.id, org.outsider.id])
    rows = db.scalars(select(Notification).order_by(Notification.user_id)).all()
    assert {r.user_id for r in rows} == {org.head.id, org.outsider.id}
    assert rows[0].entity_id == deal.id and rows[0].source_label.startswith("process routing")
    out = call(db, "crm.notify", "deal", deal.id, title="All", role="sales_head")
    assert out["notified"] == [org.head.id]
    with pytest.raises(ServiceCallError) as err:
        call(db, "crm.notify", "deal", deal.id, title="Nobody")
    assert "user" in err.value.fields


def test_convert_lead(db, org):
    lead = make_lead(db, org.m1, first_name="Анна", company_title="ООО «Гранит»", amount="5")
    out = call(db, "crm.convert_lead", "lead", lead.id, stage="PREPARATION")
    deal = db.get(Deal, out["conversion"]["deal_id"])
    assert deal.stage.code == "PREPARATION" and deal.lead_id == lead.id
    assert out["lead"]["status"] == "CONVERTED"
    assert db.get(Lead, lead.id).deal_id == deal.id
    with pytest.raises(ServiceCallError, match="already converted"):
        call(db, "crm.convert_lead", "lead", lead.id)


def test_an_instance_without_an_entity_is_refused(db, org):
    ctx = ProcessContext("routing", 1, 1, "Task_1")
    with pytest.raises(ServiceCallError, match="not bound to a CRM record"):
        OPS["crm.add_comment"](db, ctx, {"text": "hi"}, {})
    deal = make_deal(db, org.m1)
    # the entity may also come from the start data's event
    OPS["crm.add_comment"](db, ctx, {"text": "hi"},
                           {"event": {"entity_type": "deal", "entity_id": deal.id}})


def test_a_deleted_record_is_a_clear_error(db, org):
    with pytest.raises(ServiceCallError, match="No deal with id 424242"):
        call(db, "crm.add_comment", "deal", 424242, text="hi")


@pytest.mark.parametrize("text, expected", [
    ("PT2H", dt.timedelta(hours=2)), ("P1D", dt.timedelta(days=1)),
    ("P1DT2H30M", dt.timedelta(days=1, hours=2, minutes=30)), ("PT90S", dt.timedelta(seconds=90)),
    ("P2W", dt.timedelta(weeks=2)),
])
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["P", "PT", "2H", "P1H", "PT-1H", "P99999D", ""])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_every_operation_has_a_json_schema():
    assert set(OPS) == {"crm.assign_responsible", "crm.change_stage", "crm.update_fields",
                        "crm.create_activity", "crm.add_comment", "crm.notify",
                        "crm.convert_lead", "crm.create_invoice", "crm.set_invoice_stage"}
    schema = params_schema(OPS["crm.create_activity"].spec)
    assert schema["required"] == ["subject"]
    assert schema["properties"]["due"]["format"] == "duration"
    assert schema["properties"]["type"]["enum"] == ["call", "meeting", "email", "todo"]


def test_assigning_the_current_responsible_is_recorded_as_the_process_choice(db, org):
    deal = make_deal(db, org.head)
    out = call(db, "crm.assign_responsible", "deal", deal.id, user="head@test.local")
    assert out["deal"]["responsible_set_by"] == "routing"
    audit = last_audit(db, deal.id)
    assert audit.action == "responsible_confirmed" and audit.changes == {
        "responsible_id": [org.head.id, org.head.id]}


def test_the_post_write_snapshot_knows_who_set_the_responsible_without_reading_it_back(db, org):
    from sqlalchemy import event

    from automation.snapshot import responsible_set_by

    deal = make_deal(db, org.m1, amount="2500000")
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    bind = db.get_bind()
    event.listen(bind, "before_cursor_execute", count)
    try:
        out = call(db, "crm.assign_responsible", "deal", deal.id, user="corporate@test.local")
    finally:
        event.remove(bind, "before_cursor_execute", count)
    assert not [s for s in seen if s.lstrip().upper().startswith("SELECT")
                and "audit_event" in s]  # the call wrote the audit row that decides it
    assert out["deal"]["responsible_set_by"] == "routing" == responsible_set_by(
        db, "deal", deal.id)  # … and it says what the audit trail says
    assert db.info.get("marshrut_responsible_writes") is None  # nothing left behind
