"""Two sessions changing the same record: the second waits for the first or is told of the
conflict; a change is never computed from (or saved over) values that are no longer there."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_models.activity import OutboxEvent
from crm_models.entities import Company, Deal
from crm_models.errors import Conflict, NotFound, ValidationFailed
from crm_models.org import User
from crm_models.services import (
    add_comment,
    create_contact,
    create_deal,
    delete_company,
    delete_deal,
    get_deal,
    list_deals,
    update_deal,
)
from crm_models.services.org import update_user
from tests.factories import SYSTEM, Org, make_company, make_deal


def _update_in_thread(app: Any, deal_id: int, result: dict[str, Any], *,
                      read_first: bool = False, **fields: Any) -> threading.Thread:
    def run() -> None:
        session = app.extensions["db_sessionmaker"]()
        try:
            if read_first:  # this transaction has read before the other one commits
                get_deal(session, SYSTEM, deal_id)
                result["read"] = True
            update_deal(session, SYSTEM, deal_id, **fields)
            session.commit()
            result["ok"] = True
        except Exception as exc:  # noqa: BLE001 - handed to the test thread to assert on
            result["error"] = exc
            session.rollback()
        finally:
            session.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _fresh(db: Session, deal_id: int) -> Deal:
    """The deal as committed now. Ends the test session's transaction first: on SQLite it
    would otherwise keep reading its own older snapshot."""
    db.rollback()
    db.expire_all()
    return db.get(Deal, deal_id)


def _committed_deal(db: Session, org: Org, **fields: Any) -> int:
    deal_id = make_deal(db, org.m1, **fields).id
    db.commit()
    db.rollback()  # an after-commit hook may have reloaded rows: start clean
    return deal_id


def test_second_writer_waits_for_the_first(app: Any, db: Session, org: Org) -> None:
    deal_id = _committed_deal(db, org, title="Original", amount="1")
    first = app.extensions["db_sessionmaker"]()
    try:
        update_deal(first, SYSTEM, deal_id, title="First")  # holds the row (or database) lock
        result: dict[str, Any] = {}
        thread = _update_in_thread(app, deal_id, result, amount="2")
        time.sleep(0.5)
        assert thread.is_alive(), result  # waiting for the first writer
        first.commit()
    finally:
        first.close()
    thread.join(20)
    assert result.get("ok"), result
    fresh = _fresh(db, deal_id)
    assert (fresh.title, str(fresh.amount)) == ("First", "2.00")
    last = db.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "deal.updated")
                      .order_by(OutboxEvent.id.desc())).first()
    assert last.payload["changed"] == {"amount": ["1.00", "2.00"]}
    assert last.payload["fields"]["title"] == "First"  # computed from the committed row


def test_writer_that_read_too_early_waits_or_gets_a_conflict(app: Any, db: Session,
                                                             org: Org) -> None:
    deal_id = _committed_deal(db, org, title="Original", amount="1")
    first = app.extensions["db_sessionmaker"]()
    result: dict[str, Any] = {}
    try:
        update_deal(first, SYSTEM, deal_id, title="First")
        thread = _update_in_thread(app, deal_id, result, read_first=True, amount="2")
        time.sleep(0.5)
        first.commit()
    finally:
        first.close()
    thread.join(20)
    fresh = _fresh(db, deal_id)
    # PostgreSQL locks the row and re-reads it; SQLite cannot hand a stale snapshot the write
    # lock and says so. Either way the first change survives; never a raw database error.
    if "error" in result:
        assert isinstance(result["error"], Conflict), repr(result["error"])
        assert db.get_bind().dialect.name == "sqlite"
        assert (fresh.title, str(fresh.amount)) == ("First", "1.00")
    else:
        assert (fresh.title, str(fresh.amount)) == ("First", "2.00")


def test_update_does_not_use_values_read_before_another_commit(app: Any, db: Session,
                                                               org: Org) -> None:
    deal_id = _committed_deal(db, org, title="Old name")
    stale = get_deal(db, SYSTEM, deal_id)  # kept by the session (expire_on_commit is off)
    assert stale.title == "Old name"
    db.commit()  # ends the transaction; expire_on_commit is off, so "stale" keeps its values
    assert "title" in stale.__dict__
    other = app.extensions["db_sessionmaker"]()
    try:
        update_deal(other, SYSTEM, deal_id, title="New name")
        other.commit()
    finally:
        other.close()
    update_deal(db, SYSTEM, deal_id, amount="5")
    db.commit()
    db.rollback()
    event = db.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "deal.updated")
                       .order_by(OutboxEvent.id.desc())).first()
    assert event.payload["changed"] == {"amount": [None, "5.00"]}
    assert event.payload["fields"]["title"] == "New name"
    # The search text was rebuilt from the current name, not the stale one.
    found = list_deals(db, SYSTEM, search="new name").items
    assert [d.id for d in found] == [deal_id]
    assert list_deals(db, SYSTEM, search="old name").items == []


def test_records_deleted_elsewhere_are_gone_here(app: Any, db: Session, org: Org) -> None:
    company_id = make_company(db, org.m1).id
    deal_id = _committed_deal(db, org)
    deal = get_deal(db, SYSTEM, deal_id)  # both now sit, loaded, in this identity map
    company = db.get(Company, company_id)
    m2 = db.get(User, org.m2.id)
    assert company.title and "title" in deal.__dict__ and m2.active
    db.commit()  # end this transaction (an SQLite snapshot would still show the old rows)
    assert "title" in company.__dict__
    other = app.extensions["db_sessionmaker"]()
    try:
        delete_company(other, SYSTEM, company_id)
        delete_deal(other, SYSTEM, deal_id)
        update_user(other, SYSTEM, org.m2.id, active=False)
        other.commit()
    finally:
        other.close()
    for call in (lambda: get_deal(db, SYSTEM, deal_id),
                 lambda: update_deal(db, SYSTEM, deal_id, title="x"),
                 lambda: delete_deal(db, SYSTEM, deal_id),
                 lambda: add_comment(db, SYSTEM, entity_type="deal", entity_id=deal_id,
                                     text="x")):
        with pytest.raises(NotFound):
            call()
    # References are checked in the database, not against the stale objects held here.
    with pytest.raises(ValidationFailed) as info:
        create_contact(db, SYSTEM, last_name="Orphan", company_id=company_id,
                       responsible_id=org.m1.id)
    assert "company_id" in info.value.fields
    assert m2.__dict__["active"] is True  # (this session's stale view of m2)
    with pytest.raises(ValidationFailed) as info:
        create_deal(db, SYSTEM, title="To a leaver", responsible_id=org.m2.id)
    assert "responsible_id" in info.value.fields


def test_deleted_in_this_session_is_not_found(db: Session, org: Org) -> None:
    deal = make_deal(db, org.m1)
    delete_deal(db, SYSTEM, deal.id)
    with pytest.raises(NotFound):
        get_deal(db, SYSTEM, deal.id)
    with pytest.raises(NotFound):
        delete_deal(db, SYSTEM, deal.id)
    assert list_deals(db, SYSTEM).items == []
