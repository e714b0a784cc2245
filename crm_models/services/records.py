"""The generic machinery behind every CRM write and read.

Each public service function (``create_deal``, ``update_lead`` …) is a thin, named wrapper
around these. A write here always: checks the actor's rights, validates every field (raising
``ValidationFailed`` naming all bad fields at once), changes the row, and records one audit
event plus one outbox event per change — all in the caller's transaction, written (with
Core: ``rows.insert_record``, ``rows.update_record``, ``rows.insert_outbox``), not
committed. The caller commits (or rolls back, and then nothing of it exists).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy import delete as sa_delete
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from strictnum import NumberError, parse_int

from .. import dedup
from ..activity import Activity, Comment
from ..catalog import ProductRow
from ..db import MAX_ROW_ID, utcnow
from ..entities import ENTITY_MODELS, Contact, Deal, Pipeline, Stage, deal_contact
from ..errors import NotFound, PermissionDenied, ValidationFailed
from ..fields import SCHEMAS, Field, _coerce, clean, field_map
from ..org import PermLevel
from ..permissions import Actor
from ..serialize import diff, json_value, to_dict
from . import keyset, rows

MAX_PER_PAGE = 500
MAX_PAGE = 1_000_000
#: Anything outside cannot name a row (and would overflow an INTEGER on PostgreSQL).
MAX_ID = MAX_ROW_ID
_FIELDS = {entity: field_map(entity) for entity in SCHEMAS}


def model_for(entity: str) -> Any:
    try:
        return ENTITY_MODELS[entity]
    except (KeyError, TypeError):  # TypeError: an unhashable value from a JSON body
        raise NotFound(f"Unknown entity type '{str(entity)[:40]}'") from None


#: ``session.info`` key: while a caller has put a list there, ``record_event`` appends
#: (entity, id, actor label) for each update that changed a responsible (the record's row is
#: locked by the update): who last set it is then known without reading the audit trail back.
RESPONSIBLE_WRITES = "marshrut_responsible_writes"


def record_event(session: Session, actor: Actor, *, entity: str, entity_id: int, action: str,
                 event_type: str | None, changes: dict[str, Any] | None = None,
                 payload: dict[str, Any] | None = None,
                 responsible_id: int | None = None) -> None:
    """One audit event, and (when ``event_type`` is given) one outbox event, in this transaction.

    Both rows are written at once with plain INSERTs (the ORM's unit of work would cost
    several times the statement); the session's ``rows.OUTBOX_INSERTED`` listeners hear of
    the outbox event (the dispatcher, the notifier and webhook delivery)."""
    writes = session.info.get(RESPONSIBLE_WRITES)
    if writes is not None and action == "updated" and changes and "responsible_id" in changes:
        writes.append((entity, entity_id, actor.label))
    rows.insert_audit(session, {
        "actor_user_id": actor.user_id, "actor_label": actor.label, "entity_type": entity,
        "entity_id": entity_id, "action": action, "changes": changes or {},
        "responsible_id": responsible_id})
    if event_type:
        rows.insert_outbox(session, {
            "created_at": utcnow(), "event_type": event_type, "entity_type": entity,
            "entity_id": entity_id, "payload": payload or {}, "actor_user_id": actor.user_id,
            "actor_label": actor.label, "dispatched_at": None, "attempts": 0,
            "last_error": ""})


def load(session: Session, actor: Actor, entity: str, record_id: Any, action: str = "read",
         *, lock: bool = False) -> Any:
    """The record, if it exists and the actor may ``action`` it; NotFound hides what they can't
    read. With ``lock`` its row stays locked until the transaction ends and the session's copy
    of it is made current first (see ``rows.lock_record``), so a change is computed from (and
    overwrites) what the database holds, not what this session read before."""
    model = model_for(entity)
    if isinstance(record_id, bool) or not isinstance(record_id, int) or not (
            0 < record_id <= MAX_ID):
        raise NotFound(f"No {entity} with id {str(record_id)[:40]!r}")
    if lock:
        record = rows.lock_record(session, model, record_id)
    else:
        record = rows.read_record(session, model, record_id)
    if record is None or not actor.allows_record(entity, "read", record.responsible_id,
                                                 record.opened):
        raise NotFound(f"No {entity} with id {record_id}")
    if action != "read":
        actor.require(entity, action, record)
    return record


def _search_text(entity: str, record: Any) -> str:
    parts: list[str] = []
    for name in ("title", "first_name", "last_name", "company_title", "position", "industry"):
        v = getattr(record, name, None)
        if v:
            parts.append(v)
    for name in ("phones", "emails"):
        for item in getattr(record, name, None) or []:
            parts.append(item["value"])
            if name == "phones":
                parts.append("".join(ch for ch in item["value"] if "0" <= ch <= "9"))
    return " ".join(parts).casefold()


def _check_refs(session: Session, actor: Actor, entity: str, data: dict[str, Any],
                record: Any | None = None,
                vouched: Mapping[str, Collection[int]] | None = None) -> dict[str, str]:
    """Referenced users and records must exist (users also be active), and a record newly
    linked must be one the actor may read: a form offers only those, and no other path may
    link what its user cannot see. A record that cannot be read is reported exactly like one
    that does not exist (its existence is not told). Links a record already has (``record``,
    on update) are not re-checked, so someone who cannot read the company that a colleague
    linked can still edit the rest; nor are ``vouched`` ones (entity → ids: what a lead
    conversion carries over from the lead and the records it just made). Asked of the database, not the session's identity map,
    which may still hold a row another session deleted or a user another session deactivated
    (the insert would then fail on its foreign key)."""
    errors: dict[str, str] = {}
    fields = _FIELDS[entity]
    vouched = vouched or {}
    for name, value in data.items():
        f = fields[name]
        if f.kind == "user" and value is not None:
            if not rows.user_active(session, value):
                errors[name] = f"no active user with id {value}"
        elif f.kind == "ref" and value is not None and not f.readonly:
            model = model_for(f.ref)
            if not rows.record_exists(session, model, value):
                errors[name] = f"no {f.ref} with id {value}"
            elif (record is None or getattr(record, name) != value) \
                    and value not in vouched.get(f.ref, ()) \
                    and not _readable_ids(session, actor, model, [value]):
                errors[name] = f"no {f.ref} with id {value}"
        elif f.kind == "refs" and value:
            model = model_for(f.ref)
            found = rows.existing_ids(session, model, value)
            missing = [v for v in value if v not in found]
            if not missing:
                linked = {c.id for c in getattr(record, name.removesuffix("_ids") + "s")} \
                    if record is not None else set()
                new = [v for v in value if v not in linked and v not in vouched.get(f.ref, ())]
                readable = _readable_ids(session, actor, model, new) if new else set()
                missing = [v for v in new if v not in readable]
            if missing:
                errors[name] = f"no {f.ref} with id {missing[0]}"
    return errors


def _readable_ids(session: Session, actor: Actor, model: Any, ids: list[int]) -> set[int]:
    """Those of ``ids`` the actor may read (no query for an actor who reads them all, such
    as a process's system actor)."""
    if actor.level(model.entity_type, "read") == PermLevel.ALL:
        return set(ids)
    return set(session.scalars(select(model.id).where(model.id.in_(ids),
                                                      actor.scope(model, "read"))))


def _resolve_stage(session: Session, deal: Deal | None, data: dict[str, Any], *,
                   first: tuple[int, bool, Stage | None] | None = None) -> Stage | None:
    """Turn ``pipeline_id``/``stage`` into a Stage of that pipeline (the first stage by default)."""
    if "stage" not in data and "pipeline_id" not in data and deal is not None:
        return None
    pipeline_id = data.get("pipeline_id")
    if pipeline_id is None:
        pipeline_id = deal.pipeline_id if deal is not None else 0
    code = data.get("stage")
    # The usual cases in one query each; a stage's pipeline exists (foreign key).
    if code:
        stage = rows.stage_by_code(session, code)
        if stage is not None and stage.pipeline_id == pipeline_id:
            return stage
    elif deal is None or deal.pipeline_id != pipeline_id:
        if first is not None and first[0] == pipeline_id:
            exists, stage = first[1], first[2]
        else:
            exists, stage = rows.first_stage(session, pipeline_id)
        if not exists:
            raise ValidationFailed({"pipeline_id": f"no pipeline with id {pipeline_id}"})
        if stage is None:
            raise ValidationFailed({"pipeline_id": "this pipeline has no stages"})
        return stage
    # The rest, checked in this order: the pipeline, then the stage.
    pipeline = session.get(Pipeline, pipeline_id)
    if pipeline is None:
        raise ValidationFailed({"pipeline_id": f"no pipeline with id {pipeline_id}"})
    if not code:
        return None  # the deal stays in its stage of its pipeline
    raise ValidationFailed({"stage": f"no stage '{code[:50]}' in pipeline {pipeline.id}"})


def _contacts(session: Session, ids: list[int]) -> list[Contact]:
    """The contacts with these ids (which exist: ``_check_refs``), in id order; those the
    session holds are not read again."""
    held = {i: session.identity_map.get(session.identity_key(Contact, i)) for i in ids}
    missing = [i for i, contact in held.items() if contact is None]
    if missing:
        held.update((c.id, c) for c in session.scalars(
            select(Contact).where(Contact.id.in_(missing))))
    return [held[i] for i in sorted(held) if held[i] is not None]


def _values(session: Session, entity: str, record: Any, data: dict[str, Any], *,
            first: tuple[int, bool, Stage | None] | None = None) -> dict[str, Any]:
    """The attributes the clean ``data`` sets on ``record`` (a deal's stage with its
    ``stage_id`` and ``pipeline_id``; its contacts as objects). The stage is resolved first:
    a bad stage raises before anything is set. ``first``: (pipeline id, whether it exists,
    its first stage) already read in this transaction (``rows.deal_checks``)."""
    stage = _resolve_stage(session, record if record.id else None, data, first=first) \
        if entity == "deal" else None
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name in ("stage", "pipeline_id"):
            continue
        if name == "contact_ids":
            values["contacts"] = _contacts(session, value) if value else []
            continue
        values[name] = value
    if stage is not None:
        values.update(stage=stage, stage_id=stage.id, pipeline_id=stage.pipeline_id)
    return values


def create(session: Session, actor: Actor, entity: str, data: dict[str, Any], *,
           extra: dict[str, Any] | None = None,
           vouched: Mapping[str, Collection[int]] | None = None) -> Any:
    """Create a record of ``entity`` from API-shaped ``data``; see the module docstring.
    ``vouched``: records (entity → ids) it may link to without the actor reading them."""
    actor.require(entity, "add")
    values = clean(entity, data, partial=False)
    values.setdefault("responsible_id", actor.user_id)
    if values["responsible_id"] is None:
        raise ValidationFailed({"responsible_id": "is required"})
    first: tuple[int, bool, Stage | None] | None = None
    if entity == "deal" and "pipeline_id" not in values and "stage" not in values:
        # The usual new deal (default pipeline, first stage): its responsible and its stage
        # in one select; ``_check_refs`` then knows the user is active without asking again.
        found = rows.deal_checks(session, values["responsible_id"], 0)
        if found is not None:
            active, exists, stage = found
            if active:
                rows.note_active_user(session, values["responsible_id"])
            first = (0, exists, stage)
    errors = _check_refs(session, actor, entity, values, vouched=vouched)
    if errors:
        raise ValidationFailed(errors)
    opened = values.get("opened", True)
    if not actor.allows_record(entity, "add", values["responsible_id"], opened):
        raise PermissionDenied(
            f"You may not add a {entity} with responsible user {values['responsible_id']}")
    model = model_for(entity)
    record = model(created_by_id=actor.user_id, **(extra or {}))
    record.opened = opened
    if entity == "deal":
        if "pipeline_id" not in values and "stage" not in values:
            values["pipeline_id"] = 0
        # A new deal has the contacts it is given; saying so spares reading them back.
        values.setdefault("contact_ids", [])
    # As loaded values (no change events): ``rows.insert_record`` writes what the object holds.
    for name, value in _values(session, entity, record, values, first=first).items():
        set_committed_value(record, name, value)
    set_committed_value(record, "search_text", _search_text(entity, record))
    rows.insert_record(session, record)
    dedup.refresh_keys(session, entity, record, new=True)
    fields = to_dict(record)
    record_event(session, actor, entity=entity, entity_id=record.id, action="created",
                 event_type=f"{entity}.created", changes={k: [None, v] for k, v in fields.items()
                                                           if v not in (None, "", [])},
                 payload={"fields": fields}, responsible_id=record.responsible_id)
    return record


def update(session: Session, actor: Actor, entity: str, record_id: int, data: dict[str, Any],
           *, allow_readonly: bool = False) -> Any:
    """Change the given fields; emits ``<entity>.updated`` with the changed fields (and
    ``deal.stage_changed`` when a deal's stage moved). Nothing changed → no event."""
    record = load(session, actor, entity, record_id, "update", lock=True)
    values = clean(entity, data, partial=True, allow_readonly=allow_readonly)
    if entity == "lead" and values.get("status") == "CONVERTED" and not allow_readonly:
        raise ValidationFailed({"status": "a lead becomes CONVERTED only by converting it"})
    errors = _check_refs(session, actor, entity, values, record)
    if errors:
        raise ValidationFailed(errors)
    before = to_dict(record)
    wanted = _values(session, entity, record, values)
    old_contacts = [c.id for c in record.contacts] if "contacts" in wanted else None
    # Set as loaded values, written below with Core (``rows.update_record``): the session
    # holds the record as it would after a flush, and a rollback expires it.
    columns = rows.set_loaded(record, wanted)
    columns.update(rows.set_loaded(record, {"search_text": _search_text(entity, record)}))
    after = to_dict(record)
    # Fields of the schema only: derived values (stage_semantics, full_name) are not changes.
    fields = _FIELDS[entity]
    changes = {k: v for k, v in diff(before, after).items() if k in fields}
    if changes:
        extra: dict[str, Any] = {"updated_at": utcnow()}
        if "amount" in changes and getattr(record, "amount_from_rows", False):
            extra["amount_from_rows"] = False  # set by hand now (the rows service sets it back)
        columns.update(rows.set_loaded(record, extra))
    contacts = (old_contacts, [c.id for c in wanted["contacts"]]) \
        if old_contacts is not None and "contact_ids" in changes else None
    # No change of a field may still bring a column up to date (the search text).
    if columns or contacts:
        rows.update_record(session, record, columns, contacts=contacts)
    rows.expire_stale_references(session, record)
    if not changes:
        return record
    if changes.keys() & {"phones", "emails", "inn"}:
        dedup.refresh_keys(session, entity, record)
    # The row has its final values: the payload is complete.
    after["updated_at"] = json_value(record.updated_at)
    record_event(session, actor, entity=entity, entity_id=record.id, action="updated",
                 event_type=f"{entity}.updated", changes=changes,
                 payload={"changed": changes, "fields": after},
                 responsible_id=record.responsible_id)
    if entity == "deal" and "stage" in changes:
        old, new = changes["stage"]
        record_event(session, actor, entity=entity, entity_id=record.id, action="stage_changed",
                     event_type="deal.stage_changed", changes={"stage": [old, new]},
                     payload={"from": old, "to": new, "semantics": record.stage.semantics,
                              "fields": after},
                     responsible_id=record.responsible_id)
    return record


#: Columns (with their relationship, if any) that point at each entity. Deleting a record unlinks
#: them through the ORM: the database would null them too (ON DELETE SET NULL), but objects
#: already loaded in the session would keep the dead id, and history would not show the change.
REFERENCES: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "company": (("contact", "company_id", "company"), ("deal", "company_id", "company"),
                ("lead", "company_id", "company")),
    "contact": (("lead", "contact_id", "contact"),),
    "lead": (("deal", "lead_id", None), ("contact", "lead_id", None),
             ("company", "lead_id", None)),
    "deal": (("lead", "deal_id", None),),
}


def _unlink(session: Session, actor: Actor, entity: str, record: Any) -> None:
    """Detach every record pointing at ``record``; each gets an audit entry (no outbox event:
    an unlink is a consequence of the delete, not a change anyone made to that record)."""
    for ref_entity, column, relation in REFERENCES[entity]:
        model = model_for(ref_entity)
        for other in session.scalars(select(model).where(getattr(model, column) == record.id)):
            setattr(other, column, None)
            if relation is not None:
                setattr(other, relation, None)
            record_event(session, actor, entity=ref_entity, entity_id=other.id,
                         action="unlinked", event_type=None, changes={column: [record.id, None]},
                         responsible_id=other.responsible_id)
    if entity == "contact":
        for deal in session.scalars(select(Deal).where(Deal.contacts.any(Contact.id == record.id))):
            before = [c.id for c in deal.contacts]
            deal.contacts.remove(record)
            record_event(session, actor, entity="deal", entity_id=deal.id, action="unlinked",
                         event_type=None,
                         changes={"contact_ids": [before, [c.id for c in deal.contacts]]},
                         responsible_id=deal.responsible_id)


def delete(session: Session, actor: Actor, entity: str, record_id: int) -> None:
    """Delete the record with its timeline (activities, comments) and unlink what points at it;
    emits ``<entity>.deleted``. All or nothing, even if the caller goes on after an error."""
    record = load(session, actor, entity, record_id, "delete", lock=True)
    fields = to_dict(record)
    with session.begin_nested():
        _unlink(session, actor, entity, record)
        # The timeline hangs on (entity_type, entity_id) without a foreign key; SQLite may hand
        # the id to the next new record, which must not inherit it.
        for model in (Activity, Comment, ProductRow):
            session.execute(sa_delete(model).where(model.entity_type == entity,
                                                   model.entity_id == record_id))
        session.delete(record)
        dedup.drop_keys(session, entity, record_id)
        session.flush()
    record_event(session, actor, entity=entity, entity_id=record_id, action="deleted",
                 event_type=f"{entity}.deleted", changes={}, payload={"fields": fields},
                 responsible_id=fields["responsible_id"])


# --- reading ---------------------------------------------------------------------------------

FILTER_OPS = {
    "eq": lambda c, v: c == v, "ne": lambda c, v: c != v, "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v, "lt": lambda c, v: c < v, "lte": lambda c, v: c <= v,
    "in": lambda c, v: c.in_(v), "contains": None,
    # NOT IN keeps empty values: a deal without a company is "not in companies 1, 2".
    "nin": lambda c, v: or_(c.is_(None), c.not_in(v)),
}
SORTABLE_EXTRA = ("id", "created_at", "updated_at")


@dataclass
class Page:
    items: list[Any]
    total: int
    page: int
    per_page: int
    #: a cursor for the page after this one (``list_records(after=...)``); None on the last
    next: str | None = None

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _filter_values(entity: str, name: str, values: list[Any]) -> list[Any]:
    """Coerce filter values to the column's type; ValueError with a message for the user."""
    if name == "id":
        out = []
        for v in values:
            try:
                out.append(parse_int(v, minimum=-MAX_ID, maximum=MAX_ID, signed=True))
            except NumberError:
                raise ValueError("must be a whole number") from None
        return out
    if name in ("created_at", "updated_at"):
        out = []
        for v in values:
            try:
                if not isinstance(v, (str, dt.date)) or len(str(v)) > 40:
                    raise ValueError
                when = dt.datetime.fromisoformat(str(v))
                # Naive means UTC; year-1/9999 edges overflow when shifted to UTC.
                out.append(when.replace(tzinfo=dt.UTC) if when.tzinfo is None
                           else when.astimezone(dt.UTC))
            except (ValueError, OverflowError):
                raise ValueError("must be an ISO 8601 date-time") from None
        return out
    f = field_map(entity)[name]
    if f.kind == "inn":  # any text may be looked for; what is not an ИНН finds nothing
        return [str(v).strip()[:f.max_length] if v is not None else "" for v in values]
    if f.kind == "refs":  # "deals with any of these contacts": each value is one id
        return [_coerce(Field(name, "ref", "", ""), v) for v in values]
    return [_coerce(f, v) for v in values]


def _filter_clause(session: Session, entity: str, key: str, raw: Any) -> Any:
    """One list filter ``<field>[__<op>]=<value>`` as a WHERE clause; ValidationFailed names
    ``key`` for an unknown field or operator, or a value the field cannot hold."""
    model = model_for(entity)
    if not isinstance(key, str):
        raise ValidationFailed({str(key)[:60]: "is not a filter"})
    name, _, op = key.partition("__")
    op = op or "eq"
    fields = field_map(entity)
    if op not in FILTER_OPS:
        raise ValidationFailed({key[:60]: f"unknown operator '{op[:20]}'"})
    if name not in SORTABLE_EXTRA and (
            name not in fields or fields[name].kind in ("phones", "emails", "text")):
        raise ValidationFailed({key[:60]: f"cannot filter {entity} by this field"})
    if op == "contains":
        # Substring search only makes sense on text; lower() of a number fails on PostgreSQL.
        if name not in fields or fields[name].kind not in ("string", "enum"):
            raise ValidationFailed({key: "'contains' works on text fields only"})
        if not isinstance(raw, str) or len(raw) > 200 or "\x00" in raw:
            raise ValidationFailed({key: "must be text of at most 200 characters"})
        column = getattr(model, name)
        return func.lower(column).contains(raw.lower(), autoescape=True)
    listed = op in ("in", "nin")
    values = raw if listed else [raw]
    if listed and isinstance(raw, str):
        values = [v for v in raw.split(",") if v != ""]
    if not isinstance(values, list) or len(values) > 1000:
        raise ValidationFailed({key: "must be a list"})
    if listed and not values:
        raise ValidationFailed({key: "needs at least one value"})
    try:
        coerced = _filter_values(entity, name, values)
    except ValueError as exc:
        raise ValidationFailed({key: str(exc)}) from None
    if name == "stage":
        column = model.stage_id
        ids = dict(session.execute(select(Stage.code, Stage.id).where(Stage.code.in_(coerced)))
                   .all())
        coerced = [ids.get(c, -1) for c in coerced]
    elif name == "contact_ids":
        if op not in ("eq", "in"):
            raise ValidationFailed({key: "contacts can be filtered with = or 'in' only"})
        sub = select(deal_contact.c.deal_id).where(deal_contact.c.contact_id.in_(coerced))
        return model.id.in_(sub)
    else:
        column = getattr(model, name)
    if listed:
        return FILTER_OPS[op](column, coerced)
    if op in ("gt", "gte", "lt", "lte") and (
            coerced[0] is None or (name in fields and fields[name].kind == "bool")):
        # SQL cannot order against NULL or a boolean (SQLAlchemy raises on building it).
        raise ValidationFailed({key: "needs a value that can be ordered"})
    return FILTER_OPS[op](column, coerced[0])


def query(session: Session, actor: Actor, entity: str, *, filters: dict[str, Any] | None = None,
          search: str | None = None) -> Select[Any]:
    """A SELECT of the rows of ``entity`` the actor may read, narrowed by filters and search."""
    model = model_for(entity)
    conds = [actor.scope(model, "read")]
    for key, raw in (filters or {}).items():
        conds.append(_filter_clause(session, entity, key, raw))
    if search:
        if not isinstance(search, str) or len(search) > 200 or "\x00" in search:
            raise ValidationFailed({"q": "must be text of at most 200 characters"})
        conds.append(model.search_text.contains(search.strip().casefold(), autoescape=True))
    return select(model).where(and_(*conds))


def list_records(session: Session, actor: Actor, entity: str, *,
                 filters: dict[str, Any] | None = None, search: str | None = None,
                 sort: str | None = None, page: int = 1, per_page: int = 50,
                 with_total: bool = True, after: str | None = None) -> Page:
    """One page of the rows the actor may read. ``page`` counts from 1 (an offset: the
    database skips the rows before it); ``after`` — the ``next`` of the previous page —
    continues from where that page ended and costs the same on every page (see
    ``keyset``). ``total`` counts all matching rows (-1 without ``with_total``)."""
    model_for(entity)
    _check_paging(page, per_page)  # before the filters, as the page's errors always were
    if after is not None and page != 1:
        raise ValidationFailed({"page": "cannot be combined with 'after'"})
    stmt = query(session, actor, entity, filters=filters, search=search)
    page_stmt = page_query(stmt, entity, sort=sort, page=page, per_page=per_page,
                           after=after, lookahead=1)  # one more row: is there a next page?
    total = -1
    if with_total:
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = list(session.scalars(page_stmt))
    items, more = rows[:per_page], len(rows) > per_page
    return Page(items=items, total=total, page=page, per_page=per_page,
                next=next_cursor(entity, sort, items[-1]) if more else None)


def _sort_column(entity: str, sort: str | None) -> tuple[str, Any, bool]:
    """(the sort as given, or the default; its column; descending?)"""
    sort = sort or "-id"
    if not isinstance(sort, str):
        raise ValidationFailed({"sort": "must be a field name, '-' in front for descending"})
    model = model_for(entity)
    desc = sort.startswith("-")
    name = sort.lstrip("-")
    sortable = {f.name for f in SCHEMAS[entity] if f.kind not in ("refs", "phones", "emails")}
    if name not in sortable and name not in SORTABLE_EXTRA:
        raise ValidationFailed({"sort": f"cannot sort {entity} by '{name[:40]}'"})
    return sort, model.stage_id if name == "stage" else getattr(model, name), desc


def next_cursor(entity: str, sort: str | None, record: Any) -> str:
    """The cursor of the page that follows ``record`` in a list sorted by ``sort``."""
    sort, column, _ = _sort_column(entity, sort)
    return keyset.encode(sort, getattr(record, column.key), record.id)


def _check_paging(page: Any, per_page: Any) -> None:
    if isinstance(page, bool) or not isinstance(page, int) or not 1 <= page <= MAX_PAGE:
        raise ValidationFailed({"page": f"must be a whole number from 1 to {MAX_PAGE}"})
    if isinstance(per_page, bool) or not isinstance(per_page, int) or not (
            1 <= per_page <= MAX_PER_PAGE):
        raise ValidationFailed({"per_page": f"must be between 1 and {MAX_PER_PAGE}"})


def page_query(stmt: Select[Any], entity: str, *, sort: str | None = None, page: int = 1,
               per_page: int = 50, after: str | None = None,
               lookahead: int = 0) -> Select[Any]:
    """One page of ``stmt`` (a ``query``) in the order ``sort`` ("-field" descending, then by
    id the same way), from ``page`` or from the cursor ``after``, plus ``lookahead`` rows of
    the next; ValidationFailed names a bad ``page``, ``per_page``, ``sort`` or ``after``."""
    model = model_for(entity)
    _check_paging(page, per_page)
    sort, column, desc = _sort_column(entity, sort)
    if after is not None:
        value, last_id = keyset.decode(after, sort, column)
        stmt = stmt.where(keyset.after(column, model.id, desc=desc, value=value,
                                       record_id=last_id))
    # Empty values last in both directions and on both backends (their defaults differ).
    # A column that cannot be empty is left plain, so that an index on it (scanned either
    # way) gives the order and the first page reads only its rows.
    ordered = column.desc() if desc else column.asc()
    order = [ordered.nulls_last() if column.nullable else ordered,
             model.id.desc() if desc else model.id.asc()]
    opts = []
    if entity == "deal":
        opts = [selectinload(Deal.stage), selectinload(Deal.contacts)]
    return (stmt.options(*opts).order_by(*order)
            .limit(per_page + lookahead).offset((page - 1) * per_page))


def count(session: Session, actor: Actor, entity: str, **kw: Any) -> int:
    stmt = query(session, actor, entity, **kw)
    return session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
