"""The layout at 1280 px in Russian: every menu item reachable, nothing cut off."""
from __future__ import annotations

import pytest

from .conftest import login

pytestmark = pytest.mark.browser

ADMIN_ITEMS = {
    "Моя работа": ["Задачи", "Лента", "Индекс активности", "Уведомления"],
    "CRM": ["Лиды", "Сделки", "Канбан", "Контакты", "Компании"],
    "Продажи": ["Товары", "Счета"],
    "Процессы": ["Процессы"],
    "Настройки": ["Пользователи", "Отделы", "Роли и права", "Неудачные входы",
                  "Наши реквизиты", "Таймеры"],
}


@pytest.fixture(autouse=True)
def _narrow(page):
    page.set_default_timeout(10000)
    page.set_viewport_size({"width": 1280, "height": 800})


def within_viewport(page, locator) -> bool:
    box = locator.bounding_box()
    return (box is not None and box["width"] > 0 and box["x"] >= 0
            and box["x"] + box["width"] <= 1280 and box["y"] + box["height"] <= 800)


def open_every_item(page, items: dict[str, list[str]]) -> list[str]:
    """Each menu link reached through its group, clicked, and its page loaded: the labels."""
    reached = []
    for group, labels in items.items():
        for label in labels:
            page.goto("/")
            nav = page.locator("nav.mainnav")
            entry = nav.locator(":scope > a, :scope > details > summary", has_text=group).first
            assert within_viewport(page, entry), f"«{group}» is outside the 1280 px window"
            if labels == [group]:  # a group of one link is that link
                link = entry
            else:
                entry.click()
                link = nav.locator("details[open] .navgroup-panel a", has_text=label).first
            assert link.is_visible() and within_viewport(page, link), f"«{label}» is hidden"
            link.click()
            page.wait_for_load_state()
            assert page.locator("main h1, main h2").first.is_visible(), label
            reached.append(label)
    return reached


def test_every_menu_item_fits_and_opens_at_1280px(page, app, org):
    login(page, "admin@test.local")
    page.goto("/")
    nav = page.locator("nav.mainnav")
    # Nothing is scrolled or clipped away: the bar's content is no wider than the bar.
    assert page.evaluate("() => { const b = document.querySelector('header.topbar');"
                         " return b.scrollWidth <= b.clientWidth; }")
    assert page.evaluate("() => { const n = document.querySelector('nav.mainnav');"
                         " return n.scrollWidth <= n.clientWidth + 1; }")
    right = page.locator(".topbar-right").bounding_box()
    assert right["x"] + right["width"] <= 1280
    reached = open_every_item(page, ADMIN_ITEMS)
    assert len(reached) == sum(len(v) for v in ADMIN_ITEMS.values())
    # The group of the page shown is marked, and one drop-down is open at a time.
    page.goto("/deals/kanban")
    assert "is-current" in (nav.locator("summary", has_text="CRM").get_attribute("class") or "")
    nav.locator("summary", has_text="Продажи").click()
    nav.locator("summary", has_text="Моя работа").click()
    assert nav.locator("details[open]").count() == 1
    page.keyboard.press("Escape")
    assert nav.locator("details[open]").count() == 0
    assert page.console_errors == []


def test_a_manager_sees_no_admin_group(page, app, org):
    login(page, "m1@test.local")
    page.goto("/")
    nav = page.locator("nav.mainnav")
    assert nav.locator("summary", has_text="Настройки").count() == 0
    assert nav.locator("a", has_text="Пользователи").count() == 0
    open_every_item(page, {"CRM": ["Сделки", "Компании"], "Продажи": ["Товары", "Счета"],
                           "Процессы": ["Процессы"]})
