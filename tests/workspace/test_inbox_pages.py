"""The inbox a page at a time: each section shows its first tasks and its total, and "More
tasks" (htmx) brings the next page in place of the button until the section is exhausted."""
from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest

from tests.factories import make_inbox_tasks
from web.workspace.inbox import PAGE

from .test_inbox import task_ids

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
HX = {"HX-Request": "true"}


@pytest.fixture()
def filled(app, db, org):
    """m1: 2½ pages of own tasks (assigned and claimed), 1 page + 3 offered; m2: one task."""
    me, other = org.m1.id, org.m2.id
    specs = []
    for n in range(2 * PAGE + 7):
        spec = {"priority": 1 + n % 3,
                "due_at": None if n % 6 == 0 else T0 + dt.timedelta(hours=n % 4)}
        if n % 5 == 4:
            spec.update(status="claimed", claimed_by=me, candidate_ids=[me, other])
        else:
            spec["assignee_id"] = me
        specs.append(spec)
    specs += [{"priority": 2, "due_at": T0 + dt.timedelta(minutes=n % 3),
               "candidate_ids": [me, other]} for n in range(PAGE + 3)]
    specs.append({"priority": 1, "due_at": T0, "assignee_id": other})
    rows = make_inbox_tasks(db, specs)
    db.commit()
    return rows


def speaking(pages, lang, email="m1@test.local"):
    pages.post(email, "/locale", {"locale": lang})
    return pages.as_(email)


def _order(rows):
    return [t.id for t in sorted(rows, key=lambda t: (t.priority, t.due_at is None,
                                                      t.due_at or T0, t.id))]


def more_link(html, section):
    found = re.findall(r'<p class="inbox-more" id="more-' + section + r'">\s*<a [^>]*'
                       r'hx-get="([^"]+)"', html)
    assert len(found) <= 1
    return unescape(found[0]) if found else None


def cards(html):
    return [int(i) for i in re.findall(r'data-task-id="(\d+)"', html)]


def test_the_first_page_of_each_section_and_its_total(app, db, org, filled, pages):
    html = speaking(pages, "en").get("/inbox").get_data(as_text=True)
    mine = [t for t in filled if t.assignee_id == org.m1.id or t.claimed_by == org.m1.id]
    offered = [t for t in filled if t.status == "open" and org.m1.id in t.candidate_ids]
    assert task_ids(html, "my-tasks") == _order(mine)[:PAGE]
    assert task_ids(html, "offered-tasks") == _order(offered)[:PAGE]
    assert f'My tasks <span class="count">{len(mine)}</span>' in html
    assert f'Tasks for my roles <span class="count">{len(offered)}</span>' in html
    assert "More tasks" in html and more_link(html, "mine") and more_link(html, "offered")


@pytest.mark.parametrize("section, ident", [("mine", "my-tasks"), ("offered", "offered-tasks")])
def test_more_tasks_appends_every_task_once_until_the_end(app, db, org, filled, pages,
                                                          section, ident):
    client = pages.as_("m1@test.local")
    html = client.get("/inbox").get_data(as_text=True)
    seen, link, pages_read = task_ids(html, ident), more_link(html, section), 1
    while link is not None:
        r = client.get(link, headers=HX)
        assert r.status_code == 200
        part = r.get_data(as_text=True)
        assert "<html" not in part and "<section" not in part  # a fragment, not a page
        seen += cards(part)
        link, pages_read = more_link(part, section), pages_read + 1
        assert pages_read < 10
    if section == "mine":
        want = [t for t in filled if t.assignee_id == org.m1.id or t.claimed_by == org.m1.id]
    else:
        want = [t for t in filled if t.status == "open" and org.m1.id in t.candidate_ids]
    assert seen == _order(want)
    assert pages_read == -(-len(want) // PAGE)


def test_the_button_works_without_javascript_too(app, db, org, filled, pages):
    client = speaking(pages, "en")
    html = client.get("/inbox").get_data(as_text=True)
    href = unescape(re.search(r'id="more-mine">\s*<a class="btn" href="([^"]+)"', html)[1])
    assert href == more_link(html, "mine")
    page2 = client.get(href).get_data(as_text=True)
    mine = [t for t in filled if t.assignee_id == org.m1.id or t.claimed_by == org.m1.id]
    assert task_ids(page2, "my-tasks") == _order(mine)[PAGE:2 * PAGE]
    assert "Continued from an earlier page." in page2
    offered = [t for t in filled if t.status == "open" and org.m1.id in t.candidate_ids]
    assert task_ids(page2, "offered-tasks") == _order(offered)[:PAGE]


def test_the_button_speaks_russian(app, db, org, filled, pages):
    client = speaking(pages, "ru")
    html = client.get("/inbox").get_data(as_text=True)
    assert "Ещё задачи" in html and "More tasks" not in html


def test_a_short_inbox_has_no_button(app, db, org, filled, pages):
    html = pages.as_("m2@test.local").get("/inbox").get_data(as_text=True)
    assert len(task_ids(html, "my-tasks")) == 1 and more_link(html, "mine") is None
    assert more_link(html, "offered") is not None  # m2 is offered the same pool


@pytest.mark.parametrize("query, field", [
    ("section=mine&after=garbage", "after"), ("section=offered&after=W10", "after"),
    ("section=mine&after=" + "x" * 401, "after"), ("section=all&after=x", "section"),
    ("section=nope", "section"), ("after=x", "section"),
])
@pytest.mark.parametrize("headers", [{}, HX], ids=["page", "htmx"])
def test_a_bad_link_is_a_clear_error_not_a_500(app, db, org, filled, pages, query, field,
                                               headers):
    r = pages.as_("m1@test.local").get("/inbox?" + query, headers=headers)
    assert r.status_code == 422
    assert f"<b>{field}</b>" in r.get_data(as_text=True)


def test_a_failed_action_on_a_task_of_a_later_page_shows_it_with_the_errors(
        app, db, org, filled, pages):
    mine = [t for t in filled if t.assignee_id == org.m1.id or t.claimed_by == org.m1.id]
    deep = _order(mine)[-1]
    r = pages.post("m1@test.local", f"/inbox/tasks/{deep}/delegate", {"user_id": "999999"})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert cards(html) == [deep] and '<details class="delegate" open>' in html
    first = _order(mine)[0]
    r = pages.post("m1@test.local", f"/inbox/tasks/{first}/delegate", {"user_id": "999999"})
    assert r.status_code == 422  # a task of the first page: the inbox, with the errors there
    html = r.get_data(as_text=True)
    assert task_ids(html, "my-tasks") == _order(mine)[:PAGE] and '<details class="delegate" open>' in html
