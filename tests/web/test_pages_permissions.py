"""Rights through the pages: lists, kanban, search, counts and cards show only readable rows;
edits of others' records are refused; administration is for administrators only."""
from __future__ import annotations

import pytest

from crm_models.entities import Deal, Lead
from tests.factories import make_company, make_deal, make_lead

from .pages_support import Browser, counts, fresh, text


@pytest.fixture()
def deals(app, db, org):
    """Two deals each for m1 and m2 (both "own"-level managers), one for the head."""
    out = {
        "m1": [make_deal(db, org.m1, title=f"M1 deal {i}", amount="100", stage="NEW")
               for i in range(2)],
        "m2": [make_deal(db, org.m2, title=f"M2 secret {i}", amount="999", stage="NEW")
               for i in range(2)],
        "head": [make_deal(db, org.head, title="Head deal", stage="WON")],
    }
    db.commit()
    return out


def test_own_level_manager_sees_only_own_deals_everywhere(app, db, org, client, auth, deals):
    b = Browser(client, auth).login(org.m1)
    html = text(b.get("/deals"))
    assert "M1 deal 0" in html and "M1 deal 1" in html
    assert "M2 secret" not in html and "Head deal" not in html
    assert "Найдено 2 записи" in html
    html = text(b.get("/deals?q=secret"))
    assert "M2 secret" not in html and "Найдено 0 записей" in html
    html = text(b.get(f"/deals?responsible_id={org.m2.id}"))
    assert "M2 secret" not in html
    html = text(b.get("/deals/kanban"))
    assert "M2 secret" not in html and "Head deal" not in html
    assert '<span class="kanban-count" title="Сделки">2</span>' in html
    assert "999" not in html  # the others' amounts are not in the sums
    assert "200,00\xa0₽" in html
    html = text(b.get("/"))
    mine = html.split('id="my-deals"', 1)[1].split("</section>", 1)[0]
    assert '<td class="num">2</td>' in mine and "999" not in mine
    assert "M2 secret" not in html and "Head deal" not in html  # not in the recent events
    for deal in deals["m2"] + deals["head"]:
        assert b.get(f"/deals/{deal.id}").status_code == 404


def test_manager_cannot_edit_delete_or_move_others_records(app, db, org, client, auth, deals):
    other = deals["m2"][0]
    b = Browser(client, auth).login(org.m1)
    before = counts(db)
    assert b.get(f"/deals/{other.id}/edit").status_code == 404
    assert b.post(f"/deals/{other.id}/edit", {"title": "Hacked"}).status_code == 404
    assert b.post(f"/deals/{other.id}/delete").status_code == 404
    assert b.post(f"/deals/{other.id}/stage", {"stage": "WON"}).status_code == 404
    assert b.post(f"/deals/{other.id}/comments", {"text": "hi"}).status_code == 404
    assert b.post(f"/deals/{other.id}/activities", {"type": "call",
                                                    "subject": "x"}).status_code == 404
    assert counts(db) == before
    assert fresh(db).get(Deal, other.id).title == "M2 secret 0"


def test_open_records_are_readable_but_not_editable_by_observers(app, db, org, client, auth):
    lead = make_lead(db, org.m2, title="Open lead", opened=True)
    hidden = make_lead(db, org.m2, title="Closed lead", opened=False)
    db.commit()
    b = Browser(client, auth).login(org.observer)
    html = text(b.get("/leads"))
    assert "Open lead" in html and "Closed lead" not in html
    html = text(b.get(f"/leads/{lead.id}"))
    assert "Open lead" in html
    assert f'href="/leads/{lead.id}/edit"' not in html and "/convert" not in html
    assert b.get(f"/leads/{hidden.id}").status_code == 404
    assert b.get(f"/leads/{lead.id}/edit").status_code == 403
    assert b.post(f"/leads/{lead.id}/edit", {"title": "x"}).status_code == 403
    assert b.get(f"/leads/{lead.id}/delete").status_code == 403
    assert b.get("/leads/new").status_code == 403
    assert b.post(f"/leads/{lead.id}/convert").status_code == 403
    assert fresh(db).get(Lead, lead.id).title == "Open lead"


def test_head_sees_the_department_subtree(app, db, org, client, auth, deals):
    corp = make_deal(db, org.corporate, title="Corporate deal")
    outside = make_deal(db, org.outsider, title="Support deal")
    db.commit()
    b = Browser(client, auth).login(org.head)
    html = text(b.get("/deals"))
    assert "M1 deal 0" in html and "M2 secret 0" in html and "Corporate deal" in html
    assert "Support deal" not in html
    assert b.get(f"/deals/{corp.id}").status_code == 200
    assert b.get(f"/deals/{outside.id}").status_code == 404


def test_linked_records_the_user_cannot_read_are_not_shown(app, db, org, client, auth):
    secret = make_company(db, org.m2, title="Secret company", opened=False)
    deal = make_deal(db, org.m1, title="Mine", company_id=secret.id)
    db.commit()
    b = Browser(client, auth).login(org.m1)
    html = text(b.get(f"/deals/{deal.id}"))
    assert "Mine" in html and "Secret company" not in html
    assert "Secret company" not in text(b.get("/deals/new"))
    assert "Secret company" not in text(b.get("/deals"))


@pytest.mark.parametrize("path", ["/admin/", "/admin/users", "/admin/users/new",
                                  "/admin/users/1/edit", "/admin/departments",
                                  "/admin/departments/new", "/admin/roles", "/admin/roles/1",
                                  "/admin/roles/new"])
def test_non_admins_get_403_on_admin_pages(app, db, org, client, auth, path):
    b = Browser(client, auth).login(org.head)
    r = b.get(path)
    assert r.status_code == 403
    assert "Доступ запрещён" in text(r)


def test_non_admins_cannot_post_to_admin_pages(app, db, org, client, auth):
    b = Browser(client, auth).login(org.m1)
    before = counts(db)
    assert b.post("/admin/users/new", {"full_name": "X", "email": "x@x.io",
                                       "password": "secret"}).status_code == 403
    assert b.post(f"/admin/users/{org.m1.id}/edit", {"full_name": "Boss", "email": "m1@test.local",
                                                     "roles": "1"}).status_code == 403
    assert b.post("/admin/roles/1", {"name": "x"}).status_code == 403
    assert b.post("/admin/departments/new", {"name": "x"}).status_code == 403
    assert counts(db) == before
