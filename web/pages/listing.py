"""Record lists: filters, full-text search, sorting by column, pagination with counts.

Everything comes from ``list_records`` with the signed-in actor, so a list shows only rows
the user may read, and its counts are counts of those rows. An htmx request for ``#results``
gets only the table, which is how the filter form updates the list as the user types.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from flask import render_template, request, url_for

from crm_models.errors import ValidationFailed
from crm_models.fields import field_map
from crm_models.services.records import Page, list_records
from strictnum import int_or_none

from ..auth import require_actor
from ..database import get_db
from . import bp, lookups
from .entities import PLURALS, EntityPage, Filter, page_for
from .format import enum_label, stage_name
from .messages import translate_fields

PER_PAGE_CHOICES = (20, 50, 100)


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name, "")
    number = int_or_none(raw, minimum=0, maximum=10**8 - 1)
    return default if number is None else number


def _local_midnight(raw: str, *, next_day: bool) -> str:
    """A ``YYYY-MM-DD`` from the user as the UTC instant its day starts (or ends)."""
    day = dt.date.fromisoformat(raw)
    if next_day:
        day += dt.timedelta(days=1)
    actor = require_actor()
    start = dt.datetime.combine(day, dt.time(), zoneinfo.ZoneInfo(actor.timezone))
    return start.astimezone(dt.UTC).isoformat()


def read_filters(cfg: EntityPage) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """(filters for ``list_records``, the raw values to show again, errors per parameter)."""
    filters: dict[str, Any] = {}
    shown: dict[str, str] = {}
    errors: dict[str, str] = {}
    for flt in cfg.filters:
        raw = request.args.get(flt.param, "").strip()
        if not raw:
            continue
        shown[flt.param] = raw
        if flt.widget in ("date_from", "date_to"):
            try:
                filters[flt.key] = _local_midnight(raw, next_day=flt.widget == "date_to")
            except ValueError:
                errors[flt.param] = "must be a date YYYY-MM-DD"
        else:
            filters[flt.key] = raw
    return filters, shown, errors


def sort_link(cfg: EntityPage, sort: str, column: str) -> tuple[str, str]:
    """(URL that sorts by ``column``, current direction marker: "asc", "desc" or "")."""
    current = sort.lstrip("-")
    desc = sort.startswith("-")
    if current == column:
        new = column if desc else "-" + column
        state = "desc" if desc else "asc"
    else:
        new, state = column, ""
    args = request.args.to_dict()
    args.pop("after", None)  # a cursor belongs to its sort
    args.update(sort=new, page="1")
    return url_for("pages.record_list", plural=cfg.plural, **args), state


def page_link(cfg: EntityPage, page: int, after: str | None = None) -> str:
    """The URL of list page ``page``; with ``after`` (the shown page's ``next``) that page is
    read from where the shown one ends rather than by counting rows from the start."""
    args = request.args.to_dict()
    args.pop("after", None)
    args["page"] = str(page)
    if after:
        args["after"] = after
    return url_for("pages.record_list", plural=cfg.plural, **args)


def filter_options(cfg: EntityPage, flt: Filter) -> list[tuple[str, str]]:
    """The choices of a select filter as (value, label)."""
    actor = require_actor()
    if flt.widget == "users":
        return [(str(u.id), u.full_name) for u in lookups.active_users()]
    if flt.widget == "choices":
        f = field_map(cfg.entity)[flt.key]
        return [(c, enum_label(f.name, c)) for c in f.choices]
    if flt.widget == "pipelines":
        return [(str(p.id), p.name) for p in lookups.pipelines()]
    if flt.widget == "stages":
        many = len(lookups.pipelines()) > 1
        return [(s.code, f"{p.name}: {stage_name(s)}" if many else stage_name(s))
                for p in lookups.pipelines() for s in p.stages]
    if flt.widget == "companies":
        return [(str(c.id), c.title) for c in lookups.readable(actor, "company")]
    return []


@bp.get(f"/<{PLURALS}:plural>")
def record_list(plural: str) -> Any:
    cfg = page_for(plural)
    actor = require_actor()
    filters, shown, errors = read_filters(cfg)
    q = request.args.get("q", "").strip()
    sort = request.args.get("sort") or cfg.default_sort
    per_page = _int_arg("per_page", PER_PAGE_CHOICES[0])
    if per_page not in PER_PAGE_CHOICES:
        per_page = PER_PAGE_CHOICES[0]
    page = _int_arg("page", 1)
    # "Next" links carry the cursor of the page before them: the page number is then only
    # what the page shows, and the rows come from the index where that page ended.
    after = request.args.get("after") or None
    result = Page(items=[], total=0, page=1, per_page=per_page)
    status = 200
    if not errors:
        try:
            result = list_records(get_db(), actor, cfg.entity, filters=filters, search=q or None,
                                  sort=sort, page=1 if after else page, per_page=per_page,
                                  after=after)
            result.page = page
        except ValidationFailed as exc:
            errors = translate_fields(exc.fields)
    else:
        errors = translate_fields(errors)
    if errors:
        status = 400
    template = "records/list.html"
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "results":
        template = "records/_results.html"
    return render_template(template, cfg=cfg, page=result, q=q, sort=sort, shown=shown,
                           errors=errors, per_page=per_page, per_page_choices=PER_PAGE_CHOICES,
                           sort_link=sort_link, page_link=page_link,
                           filter_options=filter_options, users=lookups.users()), status
