"""What each CRM entity's pages show: list columns, filters, and the service functions behind them.

A lookup table rather than four copies of the same views: ``records.py`` and ``listing.py``
serve every entity from this description.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import abort
from flask_babel import lazy_gettext as _l

from crm_models import services


@dataclass(frozen=True)
class Filter:
    """One list filter: the query parameter, the ``list_records`` filter key, the widget."""

    param: str
    key: str
    widget: str  # users, choices, stages, pipelines, yesno, companies, text, date_from, date_to


@dataclass(frozen=True)
class EntityPage:
    entity: str
    plural: str
    title: Any  # lazy string: the list's heading
    single: Any  # lazy string: "lead"
    new_label: Any
    columns: tuple[str, ...]
    filters: tuple[Filter, ...]
    create: Callable[..., Any]
    update: Callable[..., Any]
    delete: Callable[..., None]
    default_sort: str = "-id"


COMMON_FILTERS = (
    Filter("responsible_id", "responsible_id", "users"),
    Filter("opened", "opened", "yesno"),
    Filter("created_from", "created_at__gte", "date_from"),
    Filter("created_to", "created_at__lt", "date_to"),
)

PAGES: dict[str, EntityPage] = {
    "leads": EntityPage(
        "lead", "leads", _l("Leads"), _l("lead"), _l("New lead"),
        ("title", "status", "source", "amount", "responsible_id", "created_at"),
        (Filter("status", "status", "choices"), Filter("source", "source", "choices"),
         *COMMON_FILTERS),
        services.create_lead, services.update_lead, services.delete_lead),
    "deals": EntityPage(
        "deal", "deals", _l("Deals"), _l("deal"), _l("New deal"),
        ("title", "stage", "amount", "company_id", "responsible_id", "close_date"),
        (Filter("pipeline_id", "pipeline_id", "pipelines"), Filter("stage", "stage", "stages"),
         Filter("source", "source", "choices"), Filter("company_id", "company_id", "companies"),
         *COMMON_FILTERS),
        services.create_deal, services.update_deal, services.delete_deal),
    "contacts": EntityPage(
        "contact", "contacts", _l("Contacts"), _l("contact"), _l("New contact"),
        ("last_name", "position", "company_id", "phones", "emails", "responsible_id"),
        (Filter("company_id", "company_id", "companies"), *COMMON_FILTERS),
        services.create_contact, services.update_contact, services.delete_contact,
        default_sort="last_name"),
    "companies": EntityPage(
        "company", "companies", _l("Companies"), _l("company"), _l("New company"),
        ("title", "industry", "phones", "emails", "responsible_id", "created_at"),
        (Filter("industry", "industry__contains", "text"), *COMMON_FILTERS),
        services.create_company, services.update_company, services.delete_company,
        default_sort="title"),
}
BY_ENTITY = {p.entity: p for p in PAGES.values()}
PLURALS = "any(" + ",".join(PAGES) + ")"


def page_for(plural: str) -> EntityPage:
    try:
        return PAGES[plural]
    except KeyError:
        abort(404)
