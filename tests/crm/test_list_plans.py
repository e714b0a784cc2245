"""The deal lists a manager opens all day read one page from an index, not every deal:
EXPLAIN of the first page with the list's filters, on both databases."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, insert, select, text

from crm_models.entities import Deal, Stage
from crm_models.services.records import page_query, query

from ..factories import actor, make_deal


def explain(db, stmt) -> str:
    """The plan of ``stmt``; on PostgreSQL with sequential scans priced out, so that the test
    asks "can an index serve it", not "is it worth it on a near-empty table"."""
    sql = str(stmt.compile(dialect=db.get_bind().dialect,
                           compile_kwargs={"literal_binds": True}))
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SET LOCAL enable_seqscan = off"))
        db.execute(text("SET LOCAL enable_sort = off"))
        return "\n".join(db.scalars(text("EXPLAIN " + sql)))
    # A pooled connection keeps the statistics it read with the schema; ANALYZE on another one
    # does not reach it. This makes the connection that plans reload them.
    db.execute(text("ANALYZE sqlite_schema"))
    return "\n".join(r[-1] for r in db.execute(text("EXPLAIN QUERY PLAN " + sql)))


@pytest.fixture()
def deals(db, org):
    """A few deals through the service, then 3,000 more written directly (spread over the
    users, stages and days) and the planner's statistics brought up to date."""
    make_deal(db, org.m1, title="Deal")
    db.flush()
    stages = db.scalars(select(Stage.id).where(Stage.pipeline_id == 0)).all()
    users = [org.m1.id, org.m2.id, org.head.id, org.corporate.id, org.outsider.id]
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    db.execute(insert(Deal), [
        {"title": f"Deal {i}", "pipeline_id": 0, "stage_id": stages[i % len(stages)],
         "responsible_id": users[i % len(users)], "created_at": start + dt.timedelta(hours=i),
         "updated_at": start, "opened": True, "comments": "", "search_text": "",
         "currency": "RUB", "source": ""}
        for i in range(3000)])
    db.commit()
    db.execute(text("ANALYZE"))
    db.commit()


def first_page(db, who, filters, sort):
    return page_query(query(db, who, "deal", filters=filters), "deal", sort=sort, per_page=20)


@pytest.mark.parametrize("sort", ["-created_at", "created_at"])
def test_my_deals_in_a_stage_by_date_come_from_one_index(db, org, deals, sort):
    for who in (actor(db, org.admin), actor(db, org.m1)):
        got = explain(db, first_page(db, who, {"responsible_id": org.m1.id, "stage": "NEW"},
                                     sort))
        assert "ix_deal_responsible_stage_created" in got, got
        assert "TEMP B-TREE" not in got and "Sort" not in got, got


def test_everything_newest_first_and_a_kanban_column(db, org, deals):
    admin = actor(db, org.admin)
    got = explain(db, first_page(db, admin, {}, "-created_at"))
    assert "ix_deal_created" in got and "TEMP B-TREE" not in got, got
    got = explain(db, first_page(db, admin, {"stage": "NEW"}, "-id"))  # as the kanban asks
    assert "TEMP B-TREE" not in got and "Sort" not in got, got
    if db.get_bind().dialect.name == "sqlite":
        assert "ix_deal_stage_id" in got, got


def test_the_count_of_a_filtered_list_reads_the_index_only(db, org, deals):
    stmt = query(db, actor(db, org.admin), "deal",
                 filters={"responsible_id": org.m1.id, "stage": "NEW"})
    got = explain(db, select(func.count()).select_from(stmt.subquery()))
    # either (responsible, stage, …) index: both hold every column the count needs
    assert "ix_deal_responsible_stage" in got, got


@pytest.fixture()
def crowd(db, org, deals):
    """20,000 more deals of 100 other people: one person's share is small in a real CRM (with
    3,000 deals over five people, walking all of them is as cheap as an index of one)."""
    from crm_models.org import User

    stages = db.scalars(select(Stage.id).where(Stage.pipeline_id == 0)).all()
    start = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    first = (db.scalar(select(func.max(User.id))) or 0) + 1
    others = list(range(first, first + 100))
    db.execute(insert(User), [
        {"id": i, "email": f"crowd{i}@test.local", "full_name": f"Crowd {i}",
         "password_hash": "", "active": True, "locale": "ru", "timezone": "Europe/Moscow",
         "created_at": start} for i in others])
    db.execute(insert(Deal), [
        {"title": f"Other {i}", "pipeline_id": 0, "stage_id": stages[i % len(stages)],
         "responsible_id": others[i % len(others)], "created_at": start, "updated_at": start,
         "opened": True, "comments": "", "search_text": "", "currency": "RUB", "source": ""}
        for i in range(20_000)])
    db.commit()
    db.execute(text("ANALYZE"))
    db.commit()


def test_a_persons_deals_in_a_stage_newest_id_first_read_their_own_index(db, org, crowd):
    """The kanban column of a manager and the list's default order (-id): the rows of that
    person in that stage, from ix_deal_responsible_stage, not the stage's whole index."""
    for who, filters in ((actor(db, org.m1), {"stage": "NEW"}),
                         (actor(db, org.admin), {"stage": "NEW", "responsible_id": org.m1.id})):
        got = explain(db, first_page(db, who, filters, "-id"))
        assert re.search(r"\bix_deal_responsible_stage\b", got), got
        assert "TEMP B-TREE" not in got and "Sort" not in got, got


def kanban_totals_sql(db, who):
    """The statement ``stage_totals`` runs, captured as it is executed."""
    from sqlalchemy import event

    from crm_models.services.board import stage_totals

    seen = []

    def grab(conn, cursor, statement, params, context, executemany):  # noqa: ARG001
        if "GROUP BY" in statement:
            seen.append(context.compiled)

    bind = db.get_bind()
    event.listen(bind, "before_cursor_execute", grab)
    try:
        totals = stage_totals(db, who, 0)
    finally:
        event.remove(bind, "before_cursor_execute", grab)
    assert len(seen) == 1
    return totals, seen[0].statement


def test_kanban_headers_read_the_totals_index_only(db, org, deals):
    """Count and sum per stage of a pipeline: an index-only read of
    ix_deal_pipeline_stage_totals in stage order, no table rows, no sort of all deals."""
    totals, stmt = kanban_totals_sql(db, actor(db, org.admin))
    assert sum(n for n, _ in totals.values()) == 3001
    got = explain(db, stmt)
    assert "ix_deal_pipeline_stage_totals" in got, got
    if db.get_bind().dialect.name == "sqlite":
        assert "COVERING INDEX ix_deal_pipeline_stage_totals" in got, got
        assert "TEMP B-TREE" not in got, got
    else:
        assert "Sort" not in got and "Seq Scan" not in got, got


def test_kanban_headers_of_a_manager_count_their_deals_only(db, org, crowd):
    totals, stmt = kanban_totals_sql(db, actor(db, org.m1))
    assert sum(n for n, _ in totals.values()) == db.scalar(
        select(func.count()).select_from(Deal).where(Deal.responsible_id == org.m1.id))
    got = explain(db, stmt)
    assert "ix_deal_responsible" in got, got  # any index led by the responsible
    assert "Seq Scan" not in got and "SCAN deal" not in got.replace("SCAN deal USING", ""), got


@pytest.fixture()
def events(db, org, deals):
    """A "created" feed item per deal (3,001), by its responsible, as the service writes them,
    and unread and read notifications for m1."""
    from automation.models import Notification
    from crm_models.activity import AuditEvent

    db.execute(text(
        "INSERT INTO audit_event (at, actor_user_id, actor_label, entity_type, entity_id, "
        "action, changes, responsible_id) SELECT created_at, responsible_id, '', 'deal', id, "
        "'created', '{}', responsible_id FROM deal WHERE id NOT IN (SELECT entity_id FROM "
        "audit_event WHERE entity_type = 'deal')"))
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    db.execute(insert(Notification), [
        {"user_id": (org.m1.id, org.m2.id)[i % 2], "title": "t", "text": "", "source_label": "",
         "kind": "task", "created_at": start,
         "read_at": None if i % 10 == 0 else start} for i in range(2000)])
    db.commit()
    db.execute(text("ANALYZE"))
    db.commit()
    return db.scalar(select(func.count()).select_from(AuditEvent))


def feed_sql(db, who):
    from sqlalchemy import event

    from crm_models.services.feed import list_feed

    seen = []

    def grab(conn, cursor, statement, params, context, executemany):  # noqa: ARG001
        if "audit_event" in statement and "ORDER BY" in statement:
            seen.append(context.compiled)

    bind = db.get_bind()
    event.listen(bind, "before_cursor_execute", grab)
    try:
        items = list_feed(db, who)
    finally:
        event.remove(bind, "before_cursor_execute", grab)
    return items, seen[-1].statement


@pytest.mark.parametrize("who", ["admin", "m1"])
def test_the_feed_walks_events_newest_first_and_stops_at_a_page(db, org, events, who):
    """Newest first from the primary key backwards (no sort of every event), for the
    administrator and for a manager, whose records are looked up once as a set, not read
    per event."""
    items, stmt = feed_sql(db, actor(db, getattr(org, who)))
    assert len(items) == 30
    ids = [e.id for e in items]
    assert ids == sorted(ids, reverse=True)
    if who == "m1":
        assert {e.responsible_id for e in items} == {org.m1.id}
    got = explain(db, stmt)
    assert "TEMP B-TREE" not in got and "Sort" not in got, got
    if db.get_bind().dialect.name == "sqlite":
        assert "SCAN audit_event" in got, got
        if who == "m1":
            assert "LIST SUBQUERY" in got, got  # the manager's deal ids, once
    else:
        assert "Index Scan Backward using pk_audit_event" in got, got


def test_the_unread_count_reads_the_bell_index_only(db, org, events):
    from automation.models import Notification
    from automation.notifications import unread_count

    assert unread_count(db, org.m1.id) == 200  # i % 10 == 0: even, so all m1's
    got = explain(db, select(func.count()).select_from(Notification).where(
        Notification.user_id == org.m1.id, Notification.read_at.is_(None)))
    assert "ix_notification_user_unread" in got, got
    if db.get_bind().dialect.name == "sqlite":
        assert "COVERING INDEX" in got, got
