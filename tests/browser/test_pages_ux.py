"""The pages in Chromium at 1280 px, Russian: pickers with inline creation on the deal form,
no dead end after a save that a rule hands away, long names that do not stretch the card."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_models.entities import Company, Deal
from tests.factories import make_company, make_contact

from ..automation.conftest import demo, engine  # noqa: F401  (fixtures)
from .conftest import login

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _narrow(page):
    page.set_default_timeout(10000)
    page.set_viewport_size({"width": 1280, "height": 800})


def fresh(db, stmt):
    db.rollback()
    db.expire_all()
    return db.scalars(stmt).all()


def test_deal_form_finds_contacts_and_creates_the_company_inline(page, app, db, org):
    petrov = make_contact(db, org.m1, first_name="Пётр", last_name="Петров")
    for n in range(15):  # more than a picker offers at once: the search has to find him
        make_contact(db, org.m1, first_name="Иван", last_name=f"Аааев{n:02d}")
    db.commit()
    login(page, "m1@test.local")
    page.goto("/deals/new")
    assert "Ctrl" not in page.content()
    page.fill("#f-title", "Станки для «Новой»")
    contacts = page.locator("#picker-contact_ids")
    assert contacts.locator(f'input[value="{petrov.id}"]').count() == 0  # not among the first
    contacts.locator(".picker-search").fill("Петров")
    option = contacts.locator(f'.picker-options input[value="{petrov.id}"]')
    option.wait_for()
    option.check()
    # Ticked, it moves up to the chosen ones and stays there through the next search.
    contacts.locator(f'.picker-chosen input[value="{petrov.id}"]').wait_for()
    contacts.locator(".picker-search").fill("Аааев01")
    contacts.locator(".picker-options", has_text="Аааев01").wait_for()
    assert contacts.locator(f'.picker-chosen input[value="{petrov.id}"]').is_checked()
    # Enter in the search box searches; it does not submit the deal.
    contacts.locator(".picker-search").press("Enter")
    assert page.url.endswith("/deals/new")
    companies = page.locator("#picker-company_id")
    companies.locator(".picker-search").fill("ООО «Новая»")
    create = companies.get_by_role("button", name="Создать компанию «ООО «Новая»»")
    create.click()
    companies.locator(".picker-chosen", has_text="ООО «Новая»").wait_for()
    [company] = fresh(db, select(Company).where(Company.title == "ООО «Новая»"))
    assert companies.locator(f'.picker-chosen input[value="{company.id}"]').is_checked()
    page.locator("form.record-form button[type=submit].btn-primary").click()
    page.wait_for_url("**/deals/*")
    [deal] = fresh(db, select(Deal).where(Deal.title == "Станки для «Новой»"))
    assert deal.company_id == company.id and [c.id for c in deal.contacts] == [petrov.id]
    assert page.console_errors == []


def test_a_deal_a_rule_hands_away_lands_on_a_page_that_says_who_got_it(page, app, db, demo):  # noqa: F811
    login(page, "manager1@demo.local")
    page.goto("/deals/new")
    page.fill("#f-title", "Большая поставка")
    page.fill("#f-amount", "2500000")
    page.locator("form.record-form button[type=submit].btn-primary").click()
    page.wait_for_url("**/handed")
    [deal] = fresh(db, select(Deal).where(Deal.title == "Большая поставка"))
    body = page.locator("#handed").inner_text()
    new_name = next(u.full_name for u in (demo.corporate, demo.head)
                    if u.id == deal.responsible_id)
    assert "Передано коллеге" in body and new_name in body and "404" not in page.content()
    page.locator("#bell .bell-count").wait_for()
    assert int(page.locator("#bell .bell-count").get_attribute("data-unread")) >= 1
    page.locator("#bell").click()
    page.wait_for_url("**/notifications")
    assert "Передано коллеге" in page.locator(".notifications").inner_text()
    assert page.console_errors == []


def test_a_long_name_wraps_instead_of_stretching_the_card(page, app, db, org):
    company = make_company(db, org.m1, title="Щ" * 255)
    db.commit()
    login(page, "m1@test.local")
    page.goto(f"/companies/{company.id}")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1280
    assert page.evaluate("() => document.documentElement.scrollHeight") < 2500
    page.goto(f"/companies/{company.id}/edit")
    assert page.locator("#f-title").get_attribute("maxlength") == "255"
    assert "Не более 255 знаков" in page.locator("form.record-form").inner_text()
