"""The layout: navigation per rights, the language switch, sign-out, CSRF and start page."""
from __future__ import annotations

import re

from crm_models.org import User
from tests.factories import make_deal

from .pages_support import Browser, counts, fresh, set_locale, text


def test_anonymous_visitors_are_sent_to_the_login_page(app, client):
    for path in ("/", "/leads", "/deals/kanban", "/deals/1", "/admin/users"):
        r = client.get(path)
        assert r.status_code == 302 and "/login" in r.headers["Location"], path


def test_login_page_in_both_languages(app, client):
    ru = text(client.get("/login", headers={"Accept-Language": "ru"}))
    assert "Пароль" in ru and "Войти" in ru
    en = text(client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}))
    assert "Password" in en and "Sign in" in en


def test_navigation_shows_admin_only_to_admins(app, org, client, auth):
    Browser(client, auth).login(org.admin)
    html = text(client.get("/"))
    for label in ("Лиды", "Сделки", "Канбан", "Контакты", "Компании", "Настройки"):
        assert label in html
    assert 'name="csrf-token"' in html and "/static/css/app.css" in html
    auth.logout()
    Browser(client, auth).login(org.m1)
    html = text(client.get("/"))
    assert "Сделки" in html and "/admin/users" not in html


def test_language_switch_is_stored_on_the_user(app, db, org, client, auth):
    b = Browser(client, auth).login(org.m1)
    assert "Сделки" in text(client.get("/deals"))
    r = b.post("/locale", {"locale": "en", "next": "/deals"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/deals")
    assert fresh(db).get(User, org.m1.id).locale == "en"
    html = text(client.get("/deals"))
    assert "Deals" in html and "Сделки" not in html
    b.post("/locale", {"locale": "ru", "next": "/"})
    assert fresh(db).get(User, org.m1.id).locale == "ru"


def test_language_switch_for_anonymous_visitors_uses_the_session(app, client, auth):
    token = auth.csrf_token("/login")
    r = client.post("/locale", data={"locale": "en", "next": "/login", "csrf_token": token},
                    headers={"Accept-Language": "ru"})
    assert r.status_code == 302
    assert "Password" in text(client.get("/login", headers={"Accept-Language": "ru"}))


def test_language_switch_refuses_unknown_locales_and_foreign_redirects(app, db, org, client,
                                                                        auth):
    b = Browser(client, auth).login(org.m1)
    assert b.post("/locale", {"locale": "de"}).status_code == 422
    r = b.post("/locale", {"locale": "en", "next": "https://evil.example/"})
    assert r.status_code == 302 and "evil" not in r.headers["Location"]


def test_sign_out_is_a_post_with_csrf(app, org, client, auth):
    b = Browser(client, auth).login(org.m1)
    html = text(client.get("/"))
    assert 'action="/logout"' in html
    assert b.post("/logout", csrf=False).status_code == 400
    assert client.get("/").status_code == 200  # still signed in
    assert b.post("/logout").status_code == 302
    assert client.get("/").status_code == 302


def test_missing_csrf_token_is_refused_and_nothing_is_written(app, db, org, client, auth):
    deal = make_deal(db, org.m1, stage="NEW")
    db.commit()
    b = Browser(client, auth).login(org.m1)
    before = counts(db)
    attempts = [
        ("/leads/new", {"title": "No token"}),
        (f"/deals/{deal.id}/edit", {"title": "Changed", "responsible_id": org.m1.id}),
        (f"/deals/{deal.id}/stage", {"stage": "WON"}),
        (f"/deals/{deal.id}/comments", {"text": "hi"}),
        (f"/deals/{deal.id}/delete", {}),
        ("/locale", {"locale": "en"}),
    ]
    for path, data in attempts:
        r = b.post(path, data, csrf=False)
        assert r.status_code == 400, path
        assert "Форма устарела" in text(r)
    assert counts(db) == before
    assert fresh(db).get(type(deal), deal.id).title == deal.title


def test_start_page_counts_only_what_the_user_may_read(app, db, org, client, auth):
    for _ in range(3):
        make_deal(db, org.m2)
    make_deal(db, org.m1, title="Mine")
    db.commit()
    Browser(client, auth).login(org.m1)
    html = text(client.get("/"))
    assert "Здравствуйте, Manager One" in html
    mine = html.split('id="my-deals"', 1)[1].split("</section>", 1)[0]
    assert re.search(r'Новая</span></a></td>\s*<td class="num">1</td>', mine), mine
    assert "Mine" in html  # in the recent events
    set_locale(db, org.m1, "en")
    assert "Hello, Manager One" in text(client.get("/"))


def test_pages_render_without_the_javascript_bundle(app, org, client, auth, monkeypatch):
    from web import pages

    monkeypatch.setattr(pages, "BUNDLE", pages.BUNDLE.with_name("missing.js"))
    Browser(client, auth).login(org.m1)
    html = text(client.get("/deals/kanban"))
    assert "dist/crm.js" not in html
    assert 'class="kanban"' in html


def test_russian_catalog_is_complete_and_matches_the_sources():
    """Every message the pages use has a Russian translation (no empty or fuzzy entries)."""
    from pathlib import Path

    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parents[2] / "web" / "translations"
    with open(root / "ru" / "LC_MESSAGES" / "messages.po", "rb") as fh:
        ru = read_po(fh, locale="ru")
    with open(root / "messages.pot", "rb") as fh:
        pot = read_po(fh)
    missing = [m.id for m in ru if m.id and (not m.string or (isinstance(m.string, tuple) and
                                                               not all(m.string)))]
    assert missing == []
    assert not any(m.fuzzy for m in ru if m.id)
    assert {m.id for m in pot if m.id} <= {m.id for m in ru if m.id}
