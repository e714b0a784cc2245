"""The activity feed: who sees which events, filters, likes, comments and @mentions."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_models.activity import AuditEvent, OutboxEvent
from crm_models.errors import NotFound, PermissionDenied, ValidationFailed
from crm_models.feed import FeedLike, find_mentions
from crm_models.permissions import system_actor
from crm_models.services import (
    assign_responsible,
    create_deal,
    delete_deal,
    update_deal,
)
from crm_models.services.feed import (
    comment_on_event,
    like_event,
    list_feed,
    unlike_event,
    visible_event,
)

from ..factories import actor, make_deal


@pytest.fixture()
def deals(db, org):
    """A deal of each of Manager One, Manager Two, Corporate, the outsider (closed)."""
    made = {
        "m1": create_deal(db, actor(db, org.m1), title="Mine"),
        "m2": create_deal(db, actor(db, org.m2), title="Theirs"),
        "corp": create_deal(db, actor(db, org.corporate), title="Corporate's"),
        "out": create_deal(db, actor(db, org.outsider), title="Support's", opened=False),
    }
    db.commit()
    return made


def ids(db, who, **kw):
    return {e.entity_id for e in list_feed(db, actor(db, who), limit=100, **kw)}


def test_a_manager_with_own_sees_only_the_events_of_own_records(db, org, deals):
    assert ids(db, org.m1) == {deals["m1"].id}
    assert ids(db, org.m2) == {deals["m2"].id}
    # Someone else acting on my record is in my feed too: the record decides.
    update_deal(db, system_actor(), deals["m1"].id, amount="100")
    db.commit()
    assert [e.action for e in list_feed(db, actor(db, org.m1))] == ["updated", "created"]


def test_department_heads_see_their_subtree_observers_the_open_records(db, org, deals):
    assert ids(db, org.head) == {deals["m1"].id, deals["m2"].id, deals["corp"].id}
    assert ids(db, org.observer) == {deals["m1"].id, deals["m2"].id, deals["corp"].id}
    assert ids(db, org.admin) == {d.id for d in deals.values()}


def test_current_scope_for_live_records_and_the_event_responsible_for_deleted_ones(db, org,
                                                                                   deals):
    assign_responsible(db, system_actor(), "deal", deals["m1"].id, org.m2.id)
    db.commit()
    assert deals["m1"].id not in ids(db, org.m1)  # no longer theirs: its past goes with it
    assert deals["m1"].id in ids(db, org.m2)
    delete_deal(db, system_actor(), deals["m2"].id)
    db.commit()
    # Gone: each event counts for the responsible written with it.
    seen_by_m2 = list_feed(db, actor(db, org.m2), entity_type="deal", limit=100)
    assert {(e.entity_id, e.action) for e in seen_by_m2} >= {(deals["m2"].id, "deleted"),
                                                              (deals["m2"].id, "created")}
    assert deals["m2"].id not in ids(db, org.m1)
    assert deals["m2"].id in ids(db, org.head)


def test_filters_by_entity_user_and_department(db, org, deals):
    lead_actor = actor(db, org.m1)
    from crm_models.services import create_lead

    create_lead(db, lead_actor, title="A lead")
    db.commit()
    assert {e.entity_type for e in list_feed(db, actor(db, org.m1))} == {"deal", "lead"}
    assert {e.entity_type for e in list_feed(db, actor(db, org.m1),
                                             entity_type="lead")} == {"lead"}
    assert ids(db, org.head, user_id=org.m2.id) == {deals["m2"].id}
    assert ids(db, org.head, user_id=str(org.m2.id)) == {deals["m2"].id}
    # Sales includes its sub-department Corporate; Corporate alone only its own people.
    assert {e.actor_user_id for e in list_feed(db, actor(db, org.admin),
                                               department_id=org.sales_id, limit=100)} == {
        org.m1.id, org.m2.id, org.corporate.id}
    assert ids(db, org.admin, department_id=org.corporate_id) == {deals["corp"].id}
    newest = list_feed(db, actor(db, org.admin), limit=2)
    older = list_feed(db, actor(db, org.admin), before=newest[-1].id, limit=100)
    assert all(e.id < newest[-1].id for e in older) and older


@pytest.mark.parametrize(("kw", "field"), [
    ({"entity_type": "user"}, "entity_type"), ({"user_id": "x"}, "user_id"),
    ({"user_id": 2**40}, "user_id"), ({"department_id": 999}, "department_id"),
    ({"before": "-1"}, "before"), ({"limit": 0}, "limit"), ({"limit": 101}, "limit"),
])
def test_bad_filters_name_their_field(db, org, kw, field):
    with pytest.raises(ValidationFailed) as err:
        list_feed(db, actor(db, org.m1), **kw)
    assert field in err.value.fields


def test_feed_hides_user_changes_and_unlinks(db, org):
    from crm_models.services import create_company, delete_company

    company = create_company(db, system_actor(), title="Acme", responsible_id=org.m1.id)
    make_deal(db, org.m1, company_id=company.id)
    db.commit()
    delete_company(db, system_actor(), company.id)
    db.commit()
    actions = [e.action for e in list_feed(db, actor(db, org.admin), limit=100)]
    assert "unlinked" not in actions and "deleted" in actions
    assert all(e.entity_type != "user" for e in list_feed(db, actor(db, org.admin), limit=100))


def test_likes_are_once_per_user_audited_and_only_on_visible_items(db, org, deals):
    event = list_feed(db, actor(db, org.m1))[0]
    r = like_event(db, actor(db, org.m1), event.id)
    assert (r.likes, r.liked) == (1, True)
    r = like_event(db, actor(db, org.m1), event.id)  # again: nothing changes
    assert r.likes == 1
    r = like_event(db, actor(db, org.head), event.id)
    assert (r.likes, r.liked, r.likers) == (2, True, [org.m1.id, org.head.id])
    db.commit()
    with pytest.raises(NotFound):
        like_event(db, actor(db, org.m2), event.id)  # Manager Two cannot see it
    with pytest.raises(NotFound):
        like_event(db, actor(db, org.m1), 2**40)
    with pytest.raises(PermissionDenied):
        like_event(db, system_actor(), event.id)
    db.rollback()
    outbox = [o.event_type for o in db.scalars(select(OutboxEvent).where(
        OutboxEvent.entity_type == "feed").order_by(OutboxEvent.id))]
    assert outbox == ["feed.liked", "feed.liked"]
    audit = db.scalars(select(AuditEvent).where(AuditEvent.entity_type == "feed")).all()
    assert [(a.action, a.entity_id, a.actor_user_id) for a in audit] == [
        ("liked", event.id, org.m1.id), ("liked", event.id, org.head.id)]
    r = unlike_event(db, actor(db, org.m1), event.id)
    assert (r.likes, r.liked) == (1, False)
    assert unlike_event(db, actor(db, org.m1), event.id).likes == 1  # nothing to take back
    db.commit()
    assert db.scalars(select(FeedLike.user_id)).all() == [org.head.id]
    # Likes and comments are not feed items themselves.
    assert all(e.entity_type != "feed" for e in list_feed(db, actor(db, org.admin), limit=100))


def test_comments_record_mentions_of_those_who_may_see_the_item(db, org, deals):
    event = list_feed(db, actor(db, org.m1))[0]
    c = comment_on_event(db, actor(db, org.head), event.id,
                         "  @Manager One, @m2@test.local and @Head of Sales: well done  ")
    assert c.text.startswith("@Manager One")
    # Manager Two cannot see the item; the author is not notified of themselves.
    assert c.mentions == [org.m1.id]
    db.commit()
    [o] = db.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "feed.commented"))
    assert o.payload["mentions"] == [org.m1.id] and o.payload["event_id"] == event.id
    for text, field in (("", "text"), ("   ", "text"), (None, "text"), ("x" * 5001, "text")):
        with pytest.raises(ValidationFailed) as err:
            comment_on_event(db, actor(db, org.head), event.id, text)
        assert field in err.value.fields
    with pytest.raises(NotFound):
        comment_on_event(db, actor(db, org.m2), event.id, "hi")
    assert visible_event(db, actor(db, org.head), event.id).id == event.id


def test_find_mentions():
    people = [(1, "Anna", "anna@x.ru"), (2, "Anna Ivanova", "ai@x.ru"), (3, "Пётр Петров", "")]
    assert find_mentions("hi @Anna Ivanova!", people) == [2]
    assert find_mentions("hi @anna, and @ПЁТР петров", people) == [1, 3]
    assert find_mentions("mail @AI@X.RU please", people) == [2]
    assert find_mentions("@Annabel and anna@x.ru", people) == []
    assert find_mentions("", people) == []


def test_feed_page_likes_and_comments_with_and_without_htmx(app, db, org, deals, pages):
    html = pages.as_("m1@test.local").get("/feed").get_data(as_text=True)
    assert "Mine" in html and "Theirs" not in html
    event = list_feed(db, actor(db, org.m1))[0]
    r = pages.post("m1@test.local", f"/feed/{event.id}/like", headers={"HX-Request": "true"})
    assert r.status_code == 200
    item = r.get_data(as_text=True)
    assert item.lstrip().startswith("<article") and 'class="like-count">1<' in item
    assert 'aria-pressed="true"' in item
    r = pages.post("m1@test.local", f"/feed/{event.id}/comments", {"text": " "},
                   headers={"HX-Request": "true"})
    assert r.status_code == 422 and 'id="err-text"' in r.get_data(as_text=True)
    r = pages.post("m1@test.local", f"/feed/{event.id}/comments",
                   {"text": "Ask @Head of Sales"})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"#event-{event.id}")
    html = pages.as_("m1@test.local").get("/feed").get_data(as_text=True)
    assert '<mark class="mention">@Head of Sales</mark>' in html
    assert pages.post("m2@test.local", f"/feed/{event.id}/like").status_code == 404
    assert pages.as_("m1@test.local").get("/feed?entity_type=user").status_code == 422
    assert pages.as_("m1@test.local").get("/feed?user_id=abc").status_code == 422
    assert pages.as_("m1@test.local").get(
        f"/feed?department_id={org.sales_id}").status_code == 200
