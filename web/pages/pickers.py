"""Record pickers of the forms: a company or contacts found by typing, created on the spot.

A picker (``macros.picker``) shows the chosen records as ticked boxes (radio buttons for one
company), a search box and a few records to choose from. The search asks
``GET /pickers/<entity>?field=…&q=…`` for matching records the user may read (htmx swaps
them in); "create" posts ``/pickers/<entity>/new`` and the new record comes back ticked. Both
answer with the options fragment. Without JavaScript the first records are there to tick.
Creating goes through the same services (rights, validation, audit, outbox) as the full forms.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort, render_template, request
from flask_babel import gettext as _

from crm_models.entities import ENTITY_MODELS
from crm_models.errors import CrmError, PermissionDenied
from crm_models.permissions import Actor
from crm_models.services import create_company, create_contact
from crm_models.services.records import list_records

from ..auth import require_actor
from ..database import get_db
from . import bp
from .messages import translate, translate_fields

#: How many records a picker offers at once.
OPTIONS = 12
#: The form field each picker fills, by the entity it picks.
FIELDS = {"company_id": "company", "contact_ids": "contact"}


@dataclass
class Option:
    id: int
    label: str
    note: str = ""
    checked: bool = False


def option(entity: str, record: Any, checked: bool = False) -> Option:
    if entity == "contact":
        return Option(record.id, record.full_name or f"#{record.id}",
                      record.company.title if record.company is not None else "", checked)
    return Option(record.id, record.title or f"#{record.id}", "", checked)


def search(actor: Actor, entity: str, q: str = "", exclude: set[str] | None = None
           ) -> list[Option]:
    """Records of ``entity`` the actor may read matching ``q`` (all when empty)."""
    if actor.level(entity, "read") == 0:
        return []
    sort = "last_name" if entity == "contact" else "title"
    rows = list_records(get_db(), actor, entity, search=q[:200] or None, sort=sort,
                        per_page=OPTIONS + len(exclude or ()), with_total=False).items
    return [option(entity, r) for r in rows if str(r.id) not in (exclude or set())][:OPTIONS]


def chosen(actor: Actor, entity: str, ids: list[str]) -> list[Option]:
    """The chosen records as options: names of readable ones, the bare id of others."""
    out = []
    for raw in ids:
        record = get_db().get(ENTITY_MODELS[entity], int(raw)) if raw.isdigit() else None
        if record is not None and actor.allows_record(entity, "read", record.responsible_id,
                                                      record.opened):
            out.append(option(entity, record, checked=True))
        else:
            out.append(Option(int(raw) if raw.isdigit() else 0, f"#{raw}", checked=True))
    return out


def picker_context(actor: Actor, field: str, values: list[str]) -> dict[str, Any]:
    entity = FIELDS[field]
    picked = chosen(actor, entity, [v for v in values if v])
    return {"field": field, "entity": entity, "chosen": picked,
            "options": search(actor, entity, exclude={str(o.id) for o in picked}),
            "can_create": bool(actor.level(entity, "add")), "multiple": field == "contact_ids"}


def _field() -> tuple[str, str]:
    field = request.args.get("field", "")
    if field not in FIELDS or FIELDS[field] != request.view_args["entity"]:  # type: ignore[index]
        abort(404)
    return field, FIELDS[field]


def _fragment(field: str, entity: str, options: list[Option], q: str, *, error: str = "",
              created: str = "") -> str:
    actor = require_actor()
    return render_template("records/_picker_options.html", field=field, entity=entity,
                           options=options, q=q, error=error, created=created,
                           can_create=bool(actor.level(entity, "add")),
                           multiple=field == "contact_ids")


@bp.get("/pickers/<any(company, contact):entity>")
def picker_search(entity: str) -> str:
    actor = require_actor()
    field, entity = _field()
    q = request.args.get("q", "").strip()
    return _fragment(field, entity, search(actor, entity, q, set(request.args.getlist(field))),
                     q)


def _new_fields(entity: str, q: str, actor: Actor) -> dict[str, Any]:
    if entity == "company":
        return {"title": q, "responsible_id": actor.user_id}
    first, _sep, last = q.partition(" ")
    names = {"first_name": first, "last_name": last.strip()} if last.strip() else \
        {"last_name": first}
    return {**names, "responsible_id": actor.user_id}


@bp.post("/pickers/<any(company, contact):entity>/new")
def picker_create(entity: str) -> Any:
    actor = require_actor()
    field, entity = _field()
    q = request.form.get("q", "").strip()
    db = get_db()
    create = create_company if entity == "company" else create_contact
    try:
        record = create(db, actor, **_new_fields(entity, q, actor))
        db.flush()
        made = option(entity, record, checked=True)
        db.commit()
    except PermissionDenied as exc:
        db.rollback()
        return _fragment(field, entity, [], q,
                         error=_("Not allowed: %(reason)s", reason=translate(exc.message)))
    except CrmError as exc:
        db.rollback()
        errors = translate_fields(exc.fields) or {"": translate(exc.message)}
        return _fragment(field, entity, [], q, error="; ".join(errors.values()))
    return _fragment(field, entity, [made], "", created=made.label)
