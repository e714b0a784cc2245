"""What the engine needs from the outside world, as protocols (implemented in ``automation``).

Nothing here knows about the CRM; the engine calls these with plain JSON data.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

#: Namespace of our BPMN extension attributes and elements (written by the editor).
MARSHRUT_NS = "http://marshrut.dev/schema/bpmn/1.0"


@dataclass(frozen=True)
class AssignmentSpec:
    """A user task's assignment as drawn: ``kind`` is one of user, role, department_head,
    responsible_department_head, responsible, round_robin, least_loaded; ``target`` names the
    user / role code / department; ``out_of_office`` is "deputy" (default) or "skip"."""

    kind: str
    target: str = ""
    out_of_office: str = "deputy"


@dataclass(frozen=True)
class Assignment:
    """Who gets a task: one assignee, or candidates of whom one claims it."""

    assignee_id: int | None
    candidate_ids: tuple[int, ...] = ()
    note: str = ""  # e.g. "deputy of X (out of office)"


@dataclass(frozen=True)
class ProcessContext:
    """Who is acting when a service task runs: for audit records and permissions."""

    definition_key: str
    definition_version: int
    instance_id: int
    element_id: str
    entity_type: str | None = None
    entity_id: int | None = None

    @property
    def label(self) -> str:
        return (f"process {self.definition_key} v{self.definition_version}, "
                f"instance {self.instance_id}")


@dataclass(frozen=True)
class ParamSpec:
    """One typed parameter of a service operation (for validation and the editor)."""

    name: str
    type: str  # string, integer, decimal, boolean, user, role, department, stage, duration, json
    required: bool = True
    description: str = ""
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class OperationSpec:
    name: str  # e.g. "crm.assign_responsible"
    title: str
    params: tuple[ParamSpec, ...] = ()
    description: str = ""
    retryable: bool = True


class ServiceOperation(Protocol):
    """An operation may also define ``check_param(name, value) -> str | None``: a further
    check of a literal parameter at deploy time (a problem, or None), e.g. a URL it would
    refuse to call (``ServiceRegistry.check_params`` asks it when present)."""

    spec: OperationSpec

    def __call__(self, session: Session, ctx: ProcessContext,
                 params: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
        """Do the work; return data to merge into the task data (JSON values only).
        Raise ``engine.errors.ServiceCallError(retryable=...)`` on failure."""
        ...


class Assigner(Protocol):
    def resolve(self, session: Session, spec: AssignmentSpec, data: Mapping[str, Any],
                now: dt.datetime) -> Assignment:
        """Who gets the task, given the instance data (``data['deal']['responsible']`` …)."""
        ...

    def validate(self, session: Session, spec: AssignmentSpec) -> str | None:
        """An error message if the spec can never resolve (unknown role, user …), else None."""
        ...


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


@dataclass
class StartRequest:
    """Start data: the JSON snapshot of the entity (``{"deal": {...}, "event": {...}}``)."""

    data: dict[str, Any]
    entity_type: str | None = None
    entity_id: int | None = None
    event_id: int | None = None  # outbox event that caused it: (event, definition) is unique
    started_by: int | None = None
    message: str | None = None  # the message start event to trigger, e.g. "deal.created"
    extra: dict[str, Any] = field(default_factory=dict)
    timer: str | None = None  # or the timer start event (element id) whose schedule fired
    signal: str | None = None  # or the signal of the signal start event (a broadcast)


@dataclass(frozen=True)
class SelectionSpec:
    """Which CRM records a scheduled start runs for: one instance per record.

    ``entity``: deal, lead, contact or company. ``idle_days``: only records nobody has touched
    (changed, commented, planned an activity on …) for that many days. ``open_only``: deals in
    a stage that is neither won nor lost, leads not converted or junk. ``filters``: the CRM
    list filters (``stage__in`` = "NEW,PREPARATION", ``amount__gte`` = "1000000" …).
    """

    entity: str
    idle_days: int | None = None
    open_only: bool = True
    filters: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "idle_days": self.idle_days,
                "open_only": self.open_only, "filters": [list(f) for f in self.filters]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SelectionSpec:
        return cls(d["entity"], d.get("idle_days"), bool(d.get("open_only", True)),
                   tuple((str(k), str(v)) for k, v in d.get("filters", ())))


class EntitySelector(Protocol):
    def select(self, session: Session, spec: SelectionSpec,
               now: dt.datetime) -> list[StartRequest]:
        """Start requests (entity, start data) for every record ``spec`` selects at ``now``."""
        ...

    def validate(self, session: Session | None, spec: SelectionSpec) -> str | None:
        """An error message if ``spec`` can never select (unknown entity, bad filter)."""
        ...


class ConditionChecker(Protocol):
    def check(self, expression: str) -> list[str]:
        """Problems of a gateway condition that the sandbox cannot see: a record field compared
        with a value of the wrong type (``deal.company_id == 'ООО «Вектор»'``). [] if none."""
        ...
