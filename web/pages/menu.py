"""The main menu: one list of groups, each a drop-down of links, drawn by ``base.html``.

To add a page to the menu, add an ``Item`` to a group of ``MENU`` (or a new ``Group``): its
label (lazy-translated), its endpoint, the path prefixes that mark it current, and who sees it
(``shown``, from the actor's rights). A group nobody may open is left out; a group of one link
is drawn as that link. The menu fits 1280 px in Russian (tests/browser/test_layout.py).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import url_for
from flask_babel import lazy_gettext as _l

Rule = Callable[[Any], bool]


def _always(actor: Any) -> bool:
    return True


def reads(entity: str) -> Rule:
    return lambda actor: bool(actor.level(entity, "read"))


def imports_any(actor: Any) -> bool:
    return any(actor.level(e, "import")
               for e in ("lead", "deal", "contact", "company", "product"))


def _admin(actor: Any) -> bool:
    return bool(actor.is_admin)


@dataclass(frozen=True)
class Item:
    label: Any
    endpoint: str
    prefixes: tuple[str, ...]
    shown: Rule = _always
    args: dict[str, Any] = field(default_factory=dict)

    def url(self) -> str:
        return url_for(self.endpoint, **self.args)


@dataclass(frozen=True)
class Group:
    key: str
    label: Any
    items: tuple[Item, ...]


MENU: tuple[Group, ...] = (
    Group("work", _l("My work"), (
        Item(_l("Inbox"), "workspace.inbox", ("/inbox",)),
        Item(_l("Feed"), "workspace.feed", ("/feed",)),
        Item(_l("Activity index"), "workspace.activity_index_page", ("/activity-index",)),
        Item(_l("Notifications"), "workspace.notifications", ("/notifications",)),
        Item(_l("E-mail"), "mail.inbox", ("/mail",)),
    )),
    Group("crm", _l("CRM"), (
        Item(_l("Leads"), "pages.record_list", ("/leads",), reads("lead"), {"plural": "leads"}),
        Item(_l("Deals"), "pages.record_list", ("/deals",), reads("deal"), {"plural": "deals"}),
        Item(_l("Kanban"), "pages.kanban", ("/deals/kanban",), reads("deal")),
        Item(_l("Contacts"), "pages.record_list", ("/contacts",), reads("contact"),
             {"plural": "contacts"}),
        Item(_l("Companies"), "pages.record_list", ("/companies",), reads("company"),
             {"plural": "companies"}),
        Item(_l("Import"), "imports.import_list", ("/imports",), imports_any),
    )),
    Group("sales", _l("Sales"), (
        Item(_l("Products"), "pages.product_list", ("/products", "/product-sections"),
             reads("product")),
        Item(_l("Invoices"), "pages.invoice_list", ("/invoices",), reads("invoice")),
        Item(_l("Sales reports"), "pages.sales_report", ("/reports/sales",), reads("deal")),
    )),
    Group("processes", _l("Processes"), (
        Item(_l("Processes"), "editor.process_list", ("/processes",)),
        Item(_l("Process analytics"), "pages.process_analytics", ("/reports/processes",),
             reads("deal")),
    )),
    Group("admin", _l("Admin"), (
        Item(_l("Users"), "admin.users", ("/admin/users",), _admin),
        Item(_l("Departments"), "admin.departments", ("/admin/departments",), _admin),
        Item(_l("Roles and rights"), "admin.roles", ("/admin/roles",), _admin),
        Item(_l("Failed logins"), "admin.failed_logins", ("/admin/logins",), _admin),
        Item(_l("Our requisites"), "admin.requisites", ("/admin/requisites",), _admin),
        Item(_l("Timers"), "timers.timers_page", ("/admin/timers",), _admin),
        Item(_l("1C exchange"), "exchange1c.exchange_sessions", ("/admin/exchange-1c",), _admin),
    )),
)


@dataclass
class ShownGroup:
    key: str
    label: str
    links: list[tuple[str, str, bool]]  # label, url, current
    current: bool


def _current_item(path: str) -> Item | None:
    """The item whose prefix matches most of ``path`` (``/deals/kanban`` over ``/deals``)."""
    best, length = None, -1
    for group in MENU:
        for item in group.items:
            for prefix in item.prefixes:
                if (path == prefix or path.startswith(prefix.rstrip("/") + "/")) \
                        and len(prefix) > length:
                    best, length = item, len(prefix)
    return best


def menu_for(actor: Any, path: str) -> list[ShownGroup]:
    """The groups and links ``actor`` may open, with the current page marked."""
    current = _current_item(path)
    out = []
    for group in MENU:
        links = [(str(i.label), i.url(), i is current) for i in group.items if i.shown(actor)]
        if links:
            out.append(ShownGroup(group.key, str(group.label), links,
                                  any(c for _l, _u, c in links)))
    return out
