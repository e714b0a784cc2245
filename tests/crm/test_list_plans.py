"""The deal lists a manager opens all day read one page from an index, not every deal:
EXPLAIN of the first page with the list's filters, on both databases."""
from __future__ import annotations

import datetime as dt

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
    assert "ix_deal_responsible_stage_created" in got, got
