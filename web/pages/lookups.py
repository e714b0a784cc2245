"""Reference data the pages need for selects and names, read once per request.

Records offered in selects come through ``list_records`` so they respect the actor's rights;
users, departments and pipelines are organisation data every signed-in user may see.
"""
from __future__ import annotations

from typing import Any

from flask import g
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from crm_models.entities import Pipeline, Stage
from crm_models.org import Department, User
from crm_models.permissions import Actor
from crm_models.services.records import list_records

from ..database import get_db

#: The most records a select offers; beyond that the list pages' search is the way.
SELECT_LIMIT = 500


def users() -> dict[int, User]:
    """Every user by id (names for history and lists), cached for the request."""
    if "lookup_users" not in g:
        g.lookup_users = {u.id: u for u in get_db().scalars(select(User).order_by(User.full_name))}
    return g.lookup_users  # type: ignore[no-any-return]


def active_users() -> list[User]:
    return [u for u in users().values() if u.active]


def departments() -> list[Department]:
    return list(get_db().scalars(select(Department).order_by(Department.name)))


def pipelines() -> list[Pipeline]:
    if "lookup_pipelines" not in g:
        g.lookup_pipelines = list(get_db().scalars(
            select(Pipeline).options(selectinload(Pipeline.stages))
            .order_by(Pipeline.sort, Pipeline.id)))
    return g.lookup_pipelines  # type: ignore[no-any-return]


def stages_by_code() -> dict[str, Stage]:
    return {s.code: s for p in pipelines() for s in p.stages}


def readable(actor: Actor, entity: str, sort: str = "title") -> list[Any]:
    """Up to ``SELECT_LIMIT`` records of ``entity`` the actor may read, for a select."""
    if actor.level(entity, "read") == 0:
        return []
    return list_records(get_db(), actor, entity, sort=sort, per_page=SELECT_LIMIT,
                        with_total=False).items
