"""Record lists: filters, search, sorting by column header, pagination with counts, htmx."""
from __future__ import annotations

import re

import pytest

from tests.factories import make_company, make_contact, make_deal, make_lead

from .pages_support import Browser, set_locale, text


def titles(html: str) -> list[str]:
    """Record names in table order (the links in the first column)."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return re.findall(r'<td class="col-(?:title|last_name)"><a href="[^"]+">([^<]+)</a>', body)


@pytest.fixture()
def admin(app, org, client, auth):
    return Browser(client, auth).login(org.admin)


def test_every_list_renders_in_russian_and_english(app, db, org, admin):
    make_lead(db, org.m1, title="Lead A")
    make_deal(db, org.m1, title="Deal A", amount="2500000")
    make_contact(db, org.m1, last_name="Petrov")
    make_company(db, org.m1, title="Vector")
    db.commit()
    expected = {"/leads": ("Лиды", "Leads", "Lead A"), "/deals": ("Сделки", "Deals", "Deal A"),
                "/contacts": ("Контакты", "Contacts", "Petrov"),
                "/companies": ("Компании", "Companies", "Vector")}
    for path, (ru, _en, name) in expected.items():
        html = text(admin.get(path))
        assert f"<h1>{ru}</h1>" in html and name in html, path
    assert "2\xa0500\xa0000,00\xa0₽" in text(admin.get("/deals"))
    set_locale(db, org.admin, "en")
    for path, (_ru, en, name) in expected.items():
        html = text(admin.get(path))
        assert f"<h1>{en}</h1>" in html and name in html, path
    assert "RUB" in text(admin.get("/deals")) and "2,500,000.00" in text(admin.get("/deals"))


def test_lead_list_filters_by_status_source_responsible_and_opened(app, db, org, admin):
    make_lead(db, org.m1, title="New web", status="NEW", source="WEB")
    make_lead(db, org.m1, title="Junk call", status="JUNK", source="CALL")
    make_lead(db, org.m2, title="Closed one", status="NEW", source="CALL", opened=False)
    db.commit()
    assert sorted(titles(text(admin.get("/leads?status=NEW")))) == ["Closed one", "New web"]
    assert titles(text(admin.get("/leads?source=CALL&status=JUNK"))) == ["Junk call"]
    assert titles(text(admin.get(f"/leads?responsible_id={org.m2.id}"))) == ["Closed one"]
    assert titles(text(admin.get("/leads?opened=0"))) == ["Closed one"]
    html = text(admin.get("/leads?status=NEW"))
    assert '<option value="NEW" selected>' in html  # the filter form shows its state


def test_deal_list_filters_by_stage_and_company(app, db, org, admin):
    vector = make_company(db, org.m1, title="Vector")
    make_deal(db, org.m1, title="Won deal", stage="WON", company_id=vector.id)
    make_deal(db, org.m1, title="New deal", stage="NEW")
    db.commit()
    assert titles(text(admin.get("/deals?stage=WON"))) == ["Won deal"]
    assert titles(text(admin.get(f"/deals?company_id={vector.id}"))) == ["Won deal"]
    assert titles(text(admin.get("/deals?pipeline_id=0&stage=NEW"))) == ["New deal"]


def test_contact_and_company_filters(app, db, org, admin):
    vector = make_company(db, org.m1, title="Vector", industry="Manufacturing")
    make_company(db, org.m1, title="Shop", industry="Retail")
    make_contact(db, org.m1, last_name="Petrov", company_id=vector.id)
    make_contact(db, org.m1, last_name="Sidorov")
    db.commit()
    assert titles(text(admin.get(f"/contacts?company_id={vector.id}"))) == ["Petrov"]
    assert titles(text(admin.get("/companies?industry=manuf"))) == ["Vector"]


def test_search_finds_names_phones_and_cyrillic(app, db, org, admin):
    make_lead(db, org.m1, title="Поставка станков", phones=[{"value": "+7 916 555-01-02"}])
    make_lead(db, org.m1, title="Other")
    make_contact(db, org.m1, first_name="Пётр", last_name="Петров",
                 emails=[{"value": "petrov@vector.example"}])
    db.commit()
    assert titles(text(admin.get("/leads?q=СТАНК"))) == ["Поставка станков"]
    assert titles(text(admin.get("/leads?q=9165550102"))) == ["Поставка станков"]
    assert titles(text(admin.get("/contacts?q=petrov@vector"))) == ["Пётр Петров"]


def test_sorting_by_column_header_toggles_direction(app, db, org, admin):
    for title, amount in (("B", "200"), ("A", "300"), ("C", "100")):
        make_deal(db, org.m1, title=title, amount=amount)
    db.commit()
    html = text(admin.get("/deals?sort=title"))
    assert titles(html) == ["A", "B", "C"]
    assert 'aria-sort="ascending"' in html
    assert re.search(r'href="/deals\?sort=-title[^"]*" class="sort sort-asc"', html)
    assert titles(text(admin.get("/deals?sort=-title"))) == ["C", "B", "A"]
    assert titles(text(admin.get("/deals?sort=amount"))) == ["C", "B", "A"]
    assert titles(text(admin.get("/deals?sort=-amount"))) == ["A", "B", "C"]


def test_pagination_with_counts(app, db, org, admin):
    for i in range(45):
        make_company(db, org.m1, title=f"Company {i:02d}")
    db.commit()
    html = text(admin.get("/companies?sort=title"))
    assert "Найдено 45 записей" in html
    assert "1–20 из 45" in html and "Страница 1 из 3" in html
    assert titles(html)[0] == "Company 00" and len(titles(html)) == 20
    html = text(admin.get("/companies?sort=title&page=3"))
    assert titles(html) == [f"Company {i}" for i in range(40, 45)]
    assert "41–45 из 45" in html and 'rel="next"' not in html and 'rel="prev"' in html
    html = text(admin.get("/companies?sort=title&per_page=50"))
    assert len(titles(html)) == 45
    set_locale(db, org.admin, "en")
    assert "45 records found" in text(admin.get("/companies"))


def test_next_links_continue_from_the_page_before(app, db, org, admin):
    for i in range(45):
        make_company(db, org.m1, title=f"Company {i:02d}")
    db.commit()
    seen, url = [], "/companies?sort=title"
    for number in (1, 2, 3):
        html = text(admin.get(url))
        assert f"Страница {number} из 3" in html
        seen += titles(html)
        if number == 3:
            assert 'rel="next"' not in html
            break
        [url] = re.findall(r'href="([^"]+)" rel="next"', html)
        url = url.replace("&amp;", "&")
        assert "after=" in url and f"page={number + 1}" in url
    assert seen == [f"Company {i:02d}" for i in range(45)]
    # the previous page and a new sort are asked by number, without the cursor
    [prev] = re.findall(r'href="([^"]+)" rel="prev"', html)
    assert "after=" not in prev
    assert "after=" not in html.split("<thead>", 1)[1].split("</thead>", 1)[0]
    r = admin.get("/companies?sort=title&page=2&after=broken")
    assert r.status_code == 400 and "ссылка на эту страницу устарела" in text(r)


def test_bad_filters_show_a_message_not_an_error_page(app, db, org, admin):
    for query in ("status=NOPE", "sort=password_hash", "responsible_id=abc",
                  "created_from=yesterday", "q=" + "x" * 300, "page=0"):
        r = admin.get(f"/leads?{query}")
        assert r.status_code in (200, 400), query
        assert "<h1>Лиды</h1>" in text(r)
    assert "Список нельзя показать" in text(admin.get("/leads?status=NOPE"))


def test_created_date_filters_use_the_users_day(app, db, org, admin):
    make_lead(db, org.m1, title="Today")
    db.commit()
    assert titles(text(admin.get("/leads?created_from=2000-01-01"))) == ["Today"]
    assert titles(text(admin.get("/leads?created_to=2000-01-01"))) == []


def test_htmx_filtering_returns_only_the_results(app, db, org, admin):
    make_lead(db, org.m1, title="Alpha")
    make_lead(db, org.m1, title="Beta")
    db.commit()
    r = admin.get("/leads?q=alp", headers={"HX-Request": "true", "HX-Target": "results"})
    html = text(r)
    assert r.status_code == 200
    assert html.lstrip().startswith('<section id="results"') and "<html" not in html
    assert titles(html) == ["Alpha"]
    full = text(admin.get("/leads"))
    assert 'hx-get="/leads"' in full and 'hx-target="#results"' in full
