"""Which CRM records a scheduled start runs for: the engine's ``EntitySelector`` port.

A timer start event with ``marshrut:select`` starts one instance per selected record (e.g.
"open deals nobody has touched for 7 days", every weekday at 9:00). Selection reads through
``crm_models.services.records.query`` as the system actor, so the list filters mean exactly
what they mean on the CRM's list pages and in the API (``stage__in``, ``amount__gte`` …).

"Touched" is anything on the record's audit trail — a change, a comment, an activity planned
— or its ``updated_at``. A process that plans a follow-up activity therefore touches the
record too: the same deal is picked again only after another idle week, not every morning.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from crm_models.activity import AuditEvent
from crm_models.entities import Deal, Lead, LeadStatus, Stage, StageSemantics
from crm_models.errors import CrmError
from crm_models.permissions import system_actor
from crm_models.services import records
from engine.ports import SelectionSpec, StartRequest

from .snapshot import ENTITY_TYPES, SnapshotError, entity_snapshot, event_data

#: A scheduled start never runs for more records than this at once (a runaway filter).
MAX_RECORDS = 5000
_CLOSED_LEADS = (LeadStatus.CONVERTED.value, LeadStatus.JUNK.value)


class CrmSelector:
    """Selects CRM records for scheduled starts (see the module docstring)."""

    def __init__(self, *, max_records: int = MAX_RECORDS) -> None:
        self.max_records = max_records

    def validate(self, session: Session | None, spec: SelectionSpec) -> str | None:
        if spec.entity not in ENTITY_TYPES:
            return (f"unknown entity '{spec.entity}'; use one of "
                    + ", ".join(ENTITY_TYPES))
        if session is not None:
            try:
                self._query(session, spec, dt.datetime.now(dt.UTC))
            except CrmError as exc:
                return "; ".join(f"filter {k}: {v}" for k, v in sorted(exc.fields.items())) \
                    or exc.message
        return None

    def select(self, session: Session, spec: SelectionSpec,
               now: dt.datetime) -> list[StartRequest]:
        model = records.model_for(spec.entity)
        ids = session.scalars(self._query(session, spec, now).with_only_columns(model.id)
                              .order_by(model.id).limit(self.max_records)).all()
        out = []
        for record_id in ids:
            try:
                snapshot = entity_snapshot(session, spec.entity, record_id)
            except SnapshotError:
                continue  # deleted meanwhile
            event = event_data(None, spec.entity, record_id) | {"type": "schedule"}
            out.append(StartRequest(data={spec.entity: snapshot, "event": event},
                                    entity_type=spec.entity, entity_id=record_id))
        return out

    def _query(self, session: Session, spec: SelectionSpec, now: dt.datetime) -> Any:
        """The records' SELECT; raises ``CrmError`` (naming the filter) for a bad filter."""
        model = records.model_for(spec.entity)
        stmt = records.query(session, system_actor("schedule"), spec.entity,
                             filters=dict(spec.filters))
        if spec.open_only and model is Deal:
            stmt = stmt.where(Deal.stage_id.in_(select(Stage.id).where(
                Stage.semantics == StageSemantics.PROCESS.value)))
        elif spec.open_only and model is Lead:
            stmt = stmt.where(Lead.status.not_in(_CLOSED_LEADS))
        if spec.idle_days:
            # Idle for ``idle_days`` or more: a record last touched exactly that long ago is
            # selected (a weekly run on the same weekday picks it up, not a day later).
            since = now - dt.timedelta(days=spec.idle_days)
            touched = exists().where(and_(AuditEvent.entity_type == spec.entity,
                                          AuditEvent.entity_id == model.id,
                                          AuditEvent.at > since))
            stmt = stmt.where(model.updated_at <= since, ~touched)
        return stmt
