"""The engine's tables, in their own declarative base (``engine`` must not import ``crm_models``).

* ``process_definition`` — one row per deployed version of a process key; holds the BPMN and
  DMN sources and the parsed spec, serialized once (instances never embed it).
* ``process_instance`` — one running/finished process; its workflow state without the spec,
  an optimistic-lock ``version`` and the current incident, if any.
* ``process_task`` — the user tasks: the inbox reads only this table (and the next), never
  workflow state. Partial indexes cover what the inbox asks of the active rows only (open by
  assignee, claimed by claimer), so its cost follows a user's open tasks, not the history.
* ``process_task_candidate`` — (user, task) for each candidate of an *active* task, so "tasks
  offered to me" is an index lookup rather than a scan of every row's ``candidate_ids`` JSON
  (which stays the record of who was offered the task, for display and history).
* ``process_history`` — what happened, element by element, with who and what changed.
* ``timer`` — every due time the engine waits for: timers of waiting instances (boundary and
  intermediate events) and the next occurrence of each active schedule (timer start events).
  The scheduler reads only due rows of this table (``engine.timer_service``).

User ids are plain integers (no foreign keys into the CRM's tables, which the engine does not
know); the CRM bridge resolves them.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, WriteOnlyMapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Same naming convention as crm_models.db so Alembic names constraints alike everywhere.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class EngineBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores naive UTC, returns aware UTC, on every backend alike (as crm_models.db's)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


class Status:
    """Instance statuses."""

    RUNNING = "running"        # only inside the transaction that is advancing it
    WAITING = "waiting"        # on user tasks, messages or a service-call retry
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    INCIDENT = "incident"      # stopped on an error until an admin retries or cancels
    OPEN = (RUNNING, WAITING, INCIDENT)


class TaskStatus:
    OPEN = "open"
    CLAIMED = "claimed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ACTIVE = (OPEN, CLAIMED)


class ProcessDefinition(EngineBase):
    __tablename__ = "process_definition"
    __table_args__ = (UniqueConstraint("key", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), index=True)  # the bpmn:process id
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(300))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    dmn_xml: Mapped[list[str]] = mapped_column(JSON)
    #: {serializer version: {"spec": ..., "subprocess_specs": ...}} — normally one entry
    specs: Mapped[dict[str, Any]] = mapped_column(JSON)
    triggers: Mapped[list[str]] = mapped_column(JSON)  # message names of its start events
    manual_start: Mapped[bool] = mapped_column(Boolean)  # has a none start event
    variables: Mapped[dict[str, Any]] = mapped_column(JSON)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    #: timer start events: [{"element_id", "kind", "expression", "timezone",
    #: "business_hours", "select": {"entity", "idle_days", "open_only", "filters"} | None}]
    schedules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: message names its running instances can catch mid-process (intermediate/boundary
    #: catch events, receive tasks, event sub-processes), "*" when a conditional event is
    #: re-evaluated on every event of the record; None when nothing (``engine.correlation``)
    catches: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), default=None)
    #: signal names its signal start events react to: a signal thrown anywhere starts one
    #: instance per broadcast (``engine.correlation``); None when it has none
    signal_starts: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True),
                                                           default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    deployed_by: Mapped[int | None] = mapped_column(Integer)
    deployed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<ProcessDefinition {self.key} v{self.version}{' active' if self.active else ''}>"


class ProcessInstance(EngineBase):
    __tablename__ = "process_instance"
    __table_args__ = (
        UniqueConstraint("event_id", "definition_id"),
        Index("ix_process_instance_entity", "entity_type", "entity_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition_id: Mapped[int] = mapped_column(
        ForeignKey("process_definition.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    entity_type: Mapped[str | None] = mapped_column(String(20))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    event_id: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    serializer_version: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer)
    waiting: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # what it waits for
    started_by: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    incident_element_id: Mapped[str | None] = mapped_column(String(200))
    incident_message: Mapped[str | None] = mapped_column(Text)
    incident_attempts: Mapped[int] = mapped_column(Integer, default=0)
    incident_retry_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)

    __mapper_args__ = {"version_id_col": version}

    def __repr__(self) -> str:
        return f"<ProcessInstance {self.id} {self.status}>"


def _where_status(status: str) -> dict[str, Any]:
    """A partial index's predicate, on both databases (the inbox's queries repeat it
    literally, so both planners can prove the index applies)."""
    clause = text(f"status = '{status}'")
    return {"sqlite_where": clause, "postgresql_where": clause}


class ProcessTask(EngineBase):
    __tablename__ = "process_task"
    __table_args__ = (
        Index("ix_process_task_open_assignee", "assignee_id", "priority", "due_at", "id",
              **_where_status("open")),
        Index("ix_process_task_claimed", "claimed_by", **_where_status("claimed")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(
        ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    spiff_task_id: Mapped[str] = mapped_column(String(36), unique=True)
    element_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(300))
    instructions: Mapped[str] = mapped_column(Text)
    form: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    assignee_id: Mapped[int | None] = mapped_column(Integer, index=True)
    candidate_ids: Mapped[list[int]] = mapped_column(JSON)
    claimed_by: Mapped[int | None] = mapped_column(Integer, index=True)
    assignment_note: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20), index=True)
    priority: Mapped[int] = mapped_column(Integer)  # 1 high, 2 normal, 3 low
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    completed_by: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    entity_type: Mapped[str | None] = mapped_column(String(20))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    definition_key: Mapped[str] = mapped_column(String(200))
    #: written with a new task (by ``InstanceRun.write_tasks`` with Core, or
    #: ``ProcessTask(candidate_rows=[...])``) and deleted by
    #: ``engine.candidates.withdraw``; never loaded through the ORM
    candidate_rows: WriteOnlyMapped[ProcessTaskCandidate] = relationship(passive_deletes=True)

    def __repr__(self) -> str:
        return f"<ProcessTask {self.id} {self.element_id} {self.status}>"


class ProcessTaskCandidate(EngineBase):
    """One candidate of an active task (see the module docstring). Rows exist from the task's
    creation until it is completed, cancelled or delegated to one user; claiming keeps them
    (an unclaimed task goes back to its candidates), so readers also check the task's status.
    """

    __tablename__ = "process_task_candidate"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(
        ForeignKey("process_task.id", ondelete="CASCADE"), primary_key=True, index=True)

    def __repr__(self) -> str:
        return f"<ProcessTaskCandidate task {self.task_id} user {self.user_id}>"


class ProcessHistory(EngineBase):
    __tablename__ = "process_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(
        ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    event: Mapped[str] = mapped_column(String(30))
    element_id: Mapped[str | None] = mapped_column(String(200))
    user_id: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    def __repr__(self) -> str:
        return f"<ProcessHistory {self.instance_id} {self.event} {self.element_id}>"


class TimerStatus:
    PENDING = "pending"      # waiting for its due time (and claimable once due)
    FIRED = "fired"
    CANCELLED = "cancelled"  # its task finished first, the instance ended, the schedule stopped
    FAILED = "failed"        # firing failed too often; shown to admins


class TimerKind:
    START = "start"          # the next occurrence of a schedule: starts instances
    BOUNDARY = "boundary"    # a timer attached to a user task
    CATCH = "catch"          # an intermediate timer event (also inside an event-based gateway)
    EVENT_SUBPROCESS = "event_subprocess"  # the timer start of an event sub-process


class Timer(EngineBase):
    """One due time (see the module docstring).

    Claiming: a worker sets ``locked_by``/``locked_until`` (a lease) on due pending rows with
    ``FOR UPDATE SKIP LOCKED``; a crashed worker's rows become claimable when the lease ends.
    ``schedule_key`` — "<definition id>:<element>:<due, UTC ISO>" for schedule occurrences, NULL
    for instance timers — is unique, so one occurrence of a schedule exists (and fires) once.
    """

    __tablename__ = "timer"
    __table_args__ = (Index("ix_timer_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    definition_id: Mapped[int] = mapped_column(
        ForeignKey("process_definition.id", ondelete="CASCADE"), index=True)
    element_id: Mapped[str] = mapped_column(String(200))
    instance_id: Mapped[int | None] = mapped_column(
        ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    spiff_task_id: Mapped[str | None] = mapped_column(String(36))
    expression: Mapped[str] = mapped_column(String(300))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    sequence: Mapped[int] = mapped_column(Integer, default=0)  # occurrence of a schedule
    schedule_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_by: Mapped[str | None] = mapped_column(String(100))
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    fired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    fired_by: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)  # what the fire did, or why it failed

    def __repr__(self) -> str:
        return f"<Timer {self.id} {self.kind} {self.element_id} {self.status} {self.due_at}>"


#: Short names used in the brief and by the bridge.
Definition = ProcessDefinition
Instance = ProcessInstance
