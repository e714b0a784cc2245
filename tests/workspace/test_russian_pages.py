"""Full Russian: no English word on any page an admin or a manager reaches in the Russian UI.

The crawl starts on the home page and follows every link of the site (one page per URL shape,
so ``/deals/3`` and ``/deals/7`` count once), as the admin and as manager1, after a morning of
work in the demo: a big deal routed away by the shipped rules, comments, a task, an activity.
Pages that only a form post shows (validation errors, a refused duplicate e-mail, a sort
error, 403 and 404 bodies) are visited explicitly. ``russian_text.english_words`` says what
counts as English; the first test proves it finds what it should.
"""
from __future__ import annotations

import re
from collections import deque
from typing import Any
from urllib.parse import urljoin, urlsplit

from .russian_text import english_words

#: Not pages, or not pages of this crawl: the process editor's pages (/processes/…) are checked
#: with the editor's own translations (tests/browser/test_editor*.py).
SKIP = re.compile(r"^/(api|static|rest|logout|locale)\b|\.(pdf|csv|xml|bpmn|svg|png)$|/pdf$"
                  r"|/export\b|/download\b")
HREF = re.compile(r'href="([^"#]+)')
MAX_PAGES = 160


def test_the_detector_finds_english_and_leaves_names_alone():
    html = ("<h1>Сделки</h1><p title='Open the card'>Карточка</p>"
            "<p>1 Errors · Сохранено</p><script>var x = 'Hello';</script>"
            "<p>info@vector.example · crm.js · vector_head2 · 2 500 000,00 RUB · Marshrut</p>"
            "<p>E-mail · SRV-CARE</p><pre>SEQUENCE FLOW</pre><span translate='no'>deal.amount &gt; limit</span>"
            "<input type='submit' value='Save'><input name='q' value='Typed by a user'>")
    found = " ".join(english_words(html))
    assert "'Open'" in found and "'Errors'" in found and "'Save'" in found
    for ok in ("Hello", "vector", "RUB", "Marshrut", "SEQUENCE", "limit", "Typed", "mail", "SRV"):
        assert f"'{ok}'" not in found, found


def shape(path: str) -> str:
    """A URL's shape: ids and query values stand for any (``/deals/N/edit?page=…``)."""
    parts = urlsplit(path)
    query = "&".join(sorted(p.split("=")[0] for p in parts.query.split("&") if p))
    return re.sub(r"/\d+", "/N", parts.path) + ("?" + query if query else "")


def crawl(client: Any, start: str = "/", seen: set[str] | None = None) -> dict[str, list[str]]:
    """Every page shape reachable by links from ``start``: its English words, by URL (``seen``
    collects the shapes visited)."""
    seen = set() if seen is None else seen
    queue = deque([start])
    problems: dict[str, list[str]] = {}
    visited = 0
    while queue and visited < MAX_PAGES:
        path = queue.popleft()
        if shape(path) in seen:
            continue
        seen.add(shape(path))
        r = client.get(path)
        visited += 1
        if r.status_code in (301, 302, 303):
            queue.append(urlsplit(r.headers["Location"]).path)
            continue
        assert r.status_code < 500, (path, r.status_code)
        if "text/html" not in r.content_type:
            continue
        html = r.get_data(as_text=True)
        words = english_words(html)
        if words:
            problems[path] = words
        for href in HREF.findall(html):
            href = href.replace("&amp;", "&")
            target = urlsplit(urljoin("http://localhost" + path, href))
            if target.netloc != "localhost":
                continue
            local = target.path + ("?" + target.query if target.query else "")
            if not SKIP.search(target.path) and shape(local) not in seen:
                queue.append(local)
    assert visited > 25, f"the crawl reached only {visited} pages: {sorted(seen)}"
    return problems


def morning(pages: Any, demo: Any) -> None:
    """What a working morning leaves on the pages: routed deals, comments, an activity."""
    r = pages.post("manager1@demo.local", "/deals/new", {
        "title": "Крупная поставка", "amount": "2500000", "currency": "RUB",
        "responsible_id": str(demo.m1.id)})
    assert r.status_code in (302, 303), re.findall(r'field-error[^>]*>([^<]*)', r.get_data(as_text=True))
    r = pages.post("manager1@demo.local", "/deals/new", {
        "title": "Небольшая поставка", "amount": "1000", "currency": "RUB",
        "responsible_id": str(demo.m1.id)})
    assert r.status_code in (302, 303), re.findall(r'field-error[^>]*>([^<]*)', r.get_data(as_text=True))
    deal_id = int(re.search(r"/deals/(\d+)", r.headers["Location"]).group(1))
    pages.post("manager1@demo.local", f"/deals/{deal_id}/comments",
               {"text": "Позвонить @Руководитель завтра"})
    pages.post("manager1@demo.local", f"/deals/{deal_id}/activities",
               {"type": "call", "subject": "Звонок клиенту", "due_at": "2030-01-01T10:00",
                "responsible_id": str(demo.m1.id)})


def test_no_english_on_the_pages_a_manager_and_an_admin_reach(app, db, demo, pages):
    morning(pages, demo)
    problems = {}
    for email in ("admin@demo.local", "manager1@demo.local"):
        client = pages.as_(email)
        client.set_cookie("locale", "ru")
        seen: set[str] = set()
        for path, words in crawl(client, seen=seen).items():
            problems[f"{email} {path}"] = words
        if email == "admin@demo.local":  # the process pages a designer works on
            for shape_ in ("/processes/", "/processes/instances/N", "/processes/N/edit",
                           "/processes/N/backtest", "/processes/N/versions/N"):
                assert any(re.sub(r"^/processes/(?!instances)[^/?]+", "/processes/N", s)
                           .startswith(shape_) for s in seen), (shape_, sorted(seen))
            for path in ("/processes/large_deal_routing/backtest?days=30",
                         "/processes/large_deal_routing/backtest?days=много",
                         "/processes/large_deal_routing/compare"):
                r = client.get(path)
                assert r.status_code == 200, (path, r.status_code)
                words = english_words(r.get_data(as_text=True))
                if words:
                    problems[f"{email} {path}"] = words
    report = "\n".join(f"{where}: {', '.join(sorted(set(w)))[:600]}"
                       for where, w in sorted(problems.items()))
    assert not problems, "English on Russian pages:\n" + report


def test_no_english_in_error_and_refusal_pages(app, db, demo, pages):
    m1 = "manager1@demo.local"
    views = {
        "404 of a record": pages.as_(m1).get("/deals/999999"),
        "404 of a page": pages.as_(m1).get("/no-such-page"),
        "403 of the admin pages": pages.as_(m1).get("/admin/users"),
        "a bad sort": pages.as_(m1).get("/deals?sort=nonsense"),
        "a too long company title": pages.post(m1, "/companies/new",
                                               {"title": "Щ" * 400,
                                                "responsible_id": str(demo.m1.id)}),
        "a bad deal": pages.post(m1, "/deals/new", {"title": "", "amount": "много",
                                                    "responsible_id": str(demo.m1.id)}),
        "a contact without a name": pages.post(m1, "/contacts/new", {
            "position": "Директор", "responsible_id": str(demo.m1.id)}),
        "bad phones and e-mails": pages.post(m1, "/leads/new", {
            "title": "Лид", "phones-value": "звоните", "phones-type": "WORK",
            "emails-value": "не-почта", "emails-type": "WORK",
            "responsible_id": str(demo.m1.id)}),
        "bad numbers and dates": pages.post(m1, "/deals/new", {
            "title": "Сделка", "probability": "140", "close_date": "31.12.2024",
            "stage": "NO_SUCH", "currency": "ЕВРО", "responsible_id": str(demo.m1.id)}),
        "a bad filter date": pages.as_(m1).get("/deals?created_from=вчера"),
        "a bad out-of-office": pages.post(m1, "/profile", {
            "deputy_id": str(demo.m1.id), "out_of_office_from": "завтра",
            "out_of_office_until": "никогда"}),
        "an empty comment": pages.post(m1, "/companies/2/comments", {"text": "  "}),
        "a duplicate e-mail": pages.post("admin@demo.local", "/admin/users/new", {
            "email": "manager2@demo.local", "full_name": "Двойник", "password": "secret-pass",
            "timezone": "Europe/Moscow", "locale": "ru"}),
    }
    problems = {}
    for name, r in views.items():
        assert 400 <= r.status_code < 500, (name, r.status_code)
        words = english_words(r.get_data(as_text=True))
        if words:
            problems[name] = words
    assert views["a too long company title"].status_code == 422
    assert views["a duplicate e-mail"].status_code in (409, 422)
    assert not problems, "English on Russian pages:\n" + "\n".join(
        f"{k}: {', '.join(v)}" for k, v in problems.items())


def test_a_duplicate_key_race_is_a_409_in_russian_not_a_500(app, db, demo, pages, monkeypatch):
    """Two admins create the same e-mail at once: the second passes the service's check, the
    database's unique index refuses it. The page says so in Russian; nothing is saved."""
    from sqlalchemy.exc import IntegrityError

    from web.pages.admin import users

    def racing(*_a, **_kw):
        raise IntegrityError("INSERT INTO user_account …", {}, Exception("UNIQUE constraint"))

    monkeypatch.setattr(users, "create_user", racing)
    r = pages.post("admin@demo.local", "/admin/users/new", {
        "email": "twin@demo.local", "full_name": "Двойник", "password": "secret-pass",
        "timezone": "Europe/Moscow", "locale": "ru"})
    html = r.get_data(as_text=True)
    assert r.status_code == 409 and "Такое значение уже есть у другой записи" in html
    assert english_words(html) == []
    assert pages.as_("admin@demo.local").get("/admin/users").status_code == 200  # still usable
