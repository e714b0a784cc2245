"""Numbers in page URLs and forms are ASCII digits: ``"²".isdigit()`` is true and ``int("²")``
fails (a 500), ``int("١")`` is 1 (the wrong record). Each is ignored or refused instead."""
from __future__ import annotations

import pytest

from tests.factories import make_deal

from .pages_support import Browser, counts

UNICODE_DIGITS = ("%C2%B2", "%D9%A1", "%E2%91%A0")  # ², ١ (Arabic-Indic one), ①


@pytest.fixture()
def admin(app, org, client, auth):
    return Browser(client, auth).login(org.admin)


@pytest.mark.parametrize("digit", UNICODE_DIGITS)
def test_query_numbers_fall_back_to_their_defaults(app, db, org, admin, digit):
    make_deal(db, org.m1, title="Only deal")
    db.commit()
    for path in (f"/deals?page={digit}", f"/deals?per_page={digit}",
                 f"/leads?page=1{digit}", f"/deals/kanban?pipeline={digit}",
                 f"/deals/kanban?responsible_id={digit}"):
        r = admin.get(path)
        assert r.status_code == 200, (path, r.status_code)
        if path.startswith("/deals?") or "kanban" in path:
            assert "Only deal" in r.get_data(as_text=True), path


@pytest.mark.parametrize("digit", UNICODE_DIGITS)
def test_ids_in_paths_are_ascii(app, db, org, admin, digit):
    deal = make_deal(db, org.m1, title="Deal one")
    db.commit()
    assert deal.id == 1
    for path in (f"/deals/{digit}", f"/deals/{digit}/edit", f"/admin/users/{digit}/edit",
                 f"/inbox/tasks/{digit}", "/deals/2147483648", "/admin/roles/99999999999"):
        assert admin.get(path).status_code == 404, path
    assert admin.get("/deals/1").status_code == 200


def test_form_ids_are_refused_or_ignored(app, db, org, admin):
    deal = make_deal(db, org.m1, title="Deal one")
    db.commit()
    before = counts(db)
    r = admin.post(f"/deals/{deal.id}/activities", {
        "type": "call", "subject": "Call back", "responsible_id": "\u0661"})
    assert r.status_code < 500
    r = admin.post("/notifications/read", {"id": ["\u00b2", "1"]})
    assert r.status_code < 500
    r = admin.post("/admin/roles/new", {"name": "Digits", "level-deal-read": "\u0661"})
    assert r.status_code == 422, r.status_code
    assert counts(db)["role"] == before["role"]
