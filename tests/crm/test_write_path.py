"""The write path's shortcuts change nothing a caller can see: a record the session already
holds is used only when it is what the database has, its relationships follow changed keys,
the events describe the record as flushed, and each way of choosing a deal's stage gives the
stage, or the error, it always gave."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from crm_models.activity import AuditEvent, OutboxEvent
from crm_models.entities import Deal, Pipeline, Stage
from crm_models.errors import ValidationFailed
from crm_models.serialize import to_dict
from crm_models.services import (
    assign_responsible,
    change_deal_stage,
    create_deal,
    delete_contact,
    update_contact,
    update_deal,
)
from tests.factories import SYSTEM, Org, make_company, make_contact, make_deal


def _last_event(db: Session, event_type: str) -> OutboxEvent:
    event = db.scalars(select(OutboxEvent).where(OutboxEvent.event_type == event_type)
                       .order_by(OutboxEvent.id.desc())).first()
    assert event is not None
    return event


@pytest.mark.parametrize("eager", [False, True])
def test_a_reassigned_record_names_its_new_responsible(db: Session, org: Org,
                                                       eager: bool) -> None:
    deal = make_deal(db, org.m1)
    if eager:  # loaded with its responsible, as a process's start data loads it
        db.commit()
        db.rollback()
        deal = db.get(Deal, deal.id, options=[joinedload(Deal.responsible)],
                      populate_existing=True)
    assert deal.responsible.id == org.m1.id
    assign_responsible(db, SYSTEM, "deal", deal.id, org.m2.id)
    assert (deal.responsible_id, deal.responsible.id) == (org.m2.id, org.m2.id)


def test_a_changed_reference_loads_its_new_record(db: Session, org: Org) -> None:
    first, second = make_company(db, org.m1), make_company(db, org.m1)
    contact = make_contact(db, org.m1, company_id=first.id)
    assert contact.company is first
    update_contact(db, SYSTEM, contact.id, company_id=second.id)
    assert contact.company is second
    update_contact(db, SYSTEM, contact.id, company_id=None)
    assert contact.company is None


def test_contacts_changed_elsewhere_are_read_again(app: Any, db: Session, org: Org) -> None:
    kept, gone = make_contact(db, org.m1), make_contact(db, org.m1)
    deal = make_deal(db, org.m1, contact_ids=[kept.id, gone.id])
    kept_id, gone_id = kept.id, gone.id
    db.commit()
    db.rollback()  # the after-commit hook may have expired the session: load all again
    assert deal.title and [c.id for c in deal.contacts] == [kept_id, gone_id]
    db.commit()  # ends this transaction; expire_on_commit is off, so the session keeps them
    assert "title" in deal.__dict__ and "contacts" in deal.__dict__
    other = app.extensions["db_sessionmaker"]()
    try:
        delete_contact(other, SYSTEM, gone_id)  # unlinks it: the deal's own row is unchanged
        other.commit()
    finally:
        other.close()
    update_deal(db, SYSTEM, deal.id, title="Renamed")
    assert [c.id for c in deal.contacts] == [kept_id]
    event = _last_event(db, "deal.updated")
    assert event.payload["changed"] == {"title": [event.payload["changed"]["title"][0],
                                                  "Renamed"]}
    assert event.payload["fields"]["contact_ids"] == [kept_id]


def test_update_events_describe_the_record_as_flushed(db: Session, org: Org) -> None:
    deal = make_deal(db, org.m1, amount="10")
    change_deal_stage(db, SYSTEM, deal.id, "WON")
    fields = to_dict(deal)
    assert _last_event(db, "deal.updated").payload["fields"] == fields
    assert _last_event(db, "deal.stage_changed").payload["fields"] == fields
    assert db.get(Deal, deal.id, populate_existing=True) is deal
    assert to_dict(deal) == fields  # as read back from the database
    trail = db.scalars(select(AuditEvent.action).where(AuditEvent.entity_type == "deal",
                                                       AuditEvent.entity_id == deal.id)
                       .order_by(AuditEvent.id)).all()
    assert trail == ["created", "updated", "stage_changed"]


@pytest.fixture()
def pipelines(db: Session) -> None:
    """Pipeline 1 with two stages (listed out of order), pipeline 2 without any."""
    db.add(Pipeline(id=1, name="Wholesale", sort=10, stages=[
        Stage(code="C1:WON", name="Won", sort=20, semantics="won"),
        Stage(code="C1:NEW", name="New", sort=10)]))
    db.add(Pipeline(id=2, name="Empty", sort=20))
    db.flush()


def _error(call: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as info:
        call()
    return info.value.fields


@pytest.mark.usefixtures("pipelines")
def test_a_new_deals_stage(db: Session, org: Org) -> None:
    def stage_of(**fields: Any) -> tuple[int, str]:
        deal = create_deal(db, SYSTEM, title="D", responsible_id=org.m1.id, **fields)
        return deal.pipeline_id, deal.stage.code

    assert stage_of() == (0, "NEW")
    assert stage_of(pipeline_id=1) == (1, "C1:NEW")
    assert stage_of(pipeline_id=1, stage="C1:WON") == (1, "C1:WON")
    assert stage_of(stage="WON") == (0, "WON")
    assert _error(lambda: stage_of(pipeline_id=2)) == {
        "pipeline_id": "this pipeline has no stages"}
    assert _error(lambda: stage_of(pipeline_id=99)) == {
        "pipeline_id": "no pipeline with id 99"}
    assert _error(lambda: stage_of(pipeline_id=99, stage="NEW")) == {
        "pipeline_id": "no pipeline with id 99"}
    assert _error(lambda: stage_of(stage="C1:WON")) == {
        "stage": "no stage 'C1:WON' in pipeline 0"}
    assert _error(lambda: stage_of(stage="NOPE")) == {"stage": "no stage 'NOPE' in pipeline 0"}


@pytest.mark.usefixtures("pipelines")
def test_a_moved_deals_stage(db: Session, org: Org) -> None:
    deal = make_deal(db, org.m1)
    update_deal(db, SYSTEM, deal.id, pipeline_id=1)
    assert (deal.pipeline_id, deal.stage.code) == (1, "C1:NEW")
    before = _last_event(db, "deal.updated").id
    update_deal(db, SYSTEM, deal.id, pipeline_id=1)  # where it is: nothing changes
    change_deal_stage(db, SYSTEM, deal.id, "C1:NEW")
    assert _last_event(db, "deal.updated").id == before
    change_deal_stage(db, SYSTEM, deal.id, "C1:WON")
    assert deal.stage.code == "C1:WON"
    assert _error(lambda: change_deal_stage(db, SYSTEM, deal.id, "WON")) == {
        "stage": "no stage 'WON' in pipeline 1"}
    assert _error(lambda: update_deal(db, SYSTEM, deal.id, pipeline_id=2)) == {
        "pipeline_id": "this pipeline has no stages"}
    assert _error(lambda: update_deal(db, SYSTEM, deal.id, pipeline_id=99, stage="NEW")) == {
        "pipeline_id": "no pipeline with id 99"}
    update_deal(db, SYSTEM, deal.id, pipeline_id=0, stage="LOSE")
    assert (deal.pipeline_id, deal.stage.code, deal.pipeline.id) == (0, "LOSE", 0)


def test_a_new_deal_checks_its_responsible_and_stage_in_one_select(app: Any, db: Session,
                                                                   org: Org) -> None:
    """The usual new deal (default pipeline) reads its responsible's ``active`` flag and its
    first stage at once; each refusal still names its field."""
    from sqlalchemy import event

    from crm_models.services.org import update_user

    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = app.extensions["db_engine"]
    m1_id = org.m1.id
    event.listen(engine, "before_cursor_execute", count)
    try:
        deal = create_deal(db, SYSTEM, title="D", responsible_id=m1_id)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert deal.stage.code == "NEW" and deal.pipeline_id == 0
    selects = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1 and "user_account" in selects[0] and "stage" in selects[0]
    assert _error(lambda: create_deal(db, SYSTEM, title="D", responsible_id=10**6)) == {
        "responsible_id": f"no active user with id {10**6}"}
    db.commit()
    # Deactivated by another session: this session still holds the user as active, but the
    # check asks the database.
    assert org.m2.active
    other = app.extensions["db_sessionmaker"]()
    try:
        update_user(other, SYSTEM, org.m2.id, active=False)
        other.commit()
    finally:
        other.close()
    db.rollback()
    assert _error(lambda: create_deal(db, SYSTEM, title="D", responsible_id=org.m2.id)) == {
        "responsible_id": f"no active user with id {org.m2.id}"}
    assert db.scalars(select(Deal).where(Deal.responsible_id == org.m2.id)).first() is None


# --- rows written with Core: the session's objects as a flush would leave them -----------

def test_written_records_leave_nothing_to_flush(app: Any, db: Session, org: Org) -> None:
    from sqlalchemy import event, inspect

    contact = make_contact(db, org.m1)
    deal = make_deal(db, org.m1, amount="10", contact_ids=[contact.id])
    update_deal(db, SYSTEM, deal.id, title="Renamed", amount="20")
    assert not inspect(deal).modified and not db.new and not db.dirty
    assert inspect(deal).persistent and db.get(Deal, deal.id) is deal
    seen: list[str] = []
    engine = app.extensions["db_engine"]
    listener = lambda *args: seen.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        db.flush()
        fields = to_dict(deal)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert seen == []  # nothing pending, every column loaded
    db.commit()
    db.expire_all()
    assert to_dict(db.get(Deal, deal.id)) == fields  # what the session held is the row


def test_a_rolled_back_savepoint_undoes_its_writes_in_the_session(db: Session,
                                                                  org: Org) -> None:
    from sqlalchemy import inspect

    deal = make_deal(db, org.m1, title="Before")
    db.commit()
    with pytest.raises(RuntimeError):
        with db.begin_nested():
            update_deal(db, SYSTEM, deal.id, title="Inside")
            new = make_deal(db, org.m1, title="New inside")
            new_id = new.id
            assert deal.title == "Inside"
            raise RuntimeError
    # As after a flush in the savepoint: the updated record reloads what the database has,
    # the inserted one is transient again, keeping its values.
    assert deal.title == "Before"
    assert inspect(new).transient and new.title == "New inside"
    assert db.get(Deal, new_id) is None
    with db.begin_nested():  # a released savepoint's writes belong to the transaction
        update_deal(db, SYSTEM, deal.id, title="Released")
        kept = make_deal(db, org.m1, title="Kept")
    assert deal.title == "Released" and inspect(kept).persistent
    db.rollback()
    assert inspect(kept).transient and kept.title == "Kept"
    assert deal.title == "Before"


def test_a_rolled_back_transaction_undoes_a_new_deals_contacts(db: Session, org: Org) -> None:
    from sqlalchemy import inspect

    contact = make_contact(db, org.m1)
    db.commit()
    deal = make_deal(db, org.m1, contact_ids=[contact.id])
    deal_id = deal.id
    db.rollback()
    assert inspect(deal).transient and [c.id for c in deal.contacts] == [contact.id]
    assert db.get(Deal, deal_id) is None


def test_contact_links_are_written(app: Any, db: Session, org: Org) -> None:
    a, b, c = (make_contact(db, org.m1) for _ in range(3))
    deal = make_deal(db, org.m1, contact_ids=[b.id, a.id])
    update_deal(db, SYSTEM, deal.id, contact_ids=[c.id, b.id])
    assert [x.id for x in deal.contacts] == sorted([b.id, c.id])
    assert _last_event(db, "deal.updated").payload["changed"] == {
        "contact_ids": [sorted([a.id, b.id]), sorted([b.id, c.id])]}
    db.commit()
    other = app.extensions["db_sessionmaker"]()
    try:
        assert [x.id for x in other.get(Deal, deal.id).contacts] == sorted([b.id, c.id])
    finally:
        other.close()


def test_outbox_listeners_hear_each_event_in_its_transaction(db: Session, org: Org) -> None:
    from crm_models.services.rows import OUTBOX_INSERTED

    heard: list[dict[str, Any]] = []
    db.info[OUTBOX_INSERTED] = [*db.info.get(OUTBOX_INSERTED, ()),
                                lambda session, row: heard.append(row)]
    deal = make_deal(db, org.m1)
    assign_responsible(db, SYSTEM, "deal", deal.id, org.m2.id)
    assert [(r["event_type"], r["entity_id"]) for r in heard] == [
        ("deal.created", deal.id), ("deal.updated", deal.id)]
    for row in heard:
        stored = db.get(OutboxEvent, row["id"])
        assert (stored.event_type, stored.payload, stored.actor_label) == (
            row["event_type"], row["payload"], row["actor_label"])
