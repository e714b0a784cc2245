"""Assemble the engine with the CRM bridge: ``build_engine()`` — no Flask, no globals.

The web app (``web/automation.py``), the CLI and the benchmark all build their engine here, so
every one of them runs the same operations and assignment rules.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import func, literal_column, select, union_all
from sqlalchemy.orm import Session

from engine.calendar import BusinessCalendar
from engine.executor import DEFAULT_DATA_LIMIT
from engine.ports import Clock
from engine.runtime import Engine
from engine.services import ServiceRegistry
from engine.store import ProcessTask, TaskStatus
from integrations.bpmn_webhook import register_webhook_operation
from integrations.url_guard import UrlGuard

from .assignment import CrmAssigner
from .condition_types import CrmConditionTypes
from .operations import register_crm_operations
from .selection import CrmSelector


def open_task_counts(session: Session, user_ids: Sequence[int]) -> Mapping[int, int]:
    """Open (or claimed) user tasks per user: assigned to them, or claimed by them.

    Two counts over the inbox's partial indexes (open tasks by assignee, claimed tasks by
    claimer), so finished tasks — nearly all rows — are never read."""
    if not user_ids:
        return {}
    task = ProcessTask
    is_open = task.status == literal_column(f"'{TaskStatus.OPEN}'")
    is_claimed = task.status == literal_column(f"'{TaskStatus.CLAIMED}'")
    assigned = (select(task.assignee_id.label("uid"), func.count().label("n"))
                .where(is_open, task.assignee_id.in_(user_ids)).group_by(task.assignee_id))
    claimed = (select(task.claimed_by.label("uid"), func.count().label("n"))
               .where(is_claimed, task.claimed_by.in_(user_ids)).group_by(task.claimed_by))
    counts: dict[int, int] = {}
    for uid, n in session.execute(union_all(assigned, claimed)):
        if uid is not None:
            counts[uid] = counts.get(uid, 0) + n
    return counts


def build_engine(*, clock: Clock | None = None,
                 retry_delays: Sequence[float] = (1.0, 5.0),
                 calendar: BusinessCalendar | None = None,
                 url_guard: UrlGuard | None = None,
                 data_limit: int | None = DEFAULT_DATA_LIMIT,
                 conditions: CrmConditionTypes | None = None) -> Engine:
    """An ``Engine`` with every CRM service operation (and ``webhook.call``), the CRM's
    assignment rules, and CRM record selection for scheduled starts; ``calendar`` is the
    working time of business-hours timers (default Mon–Fri 9–18 Europe/Moscow);
    ``url_guard`` the outgoing-URL guard of ``webhook.call`` (default: nothing allow-listed);
    ``data_limit`` the bytes an instance's data may reach (``INSTANCE_DATA_LIMIT_BYTES``);
    ``conditions`` the type checks of gateway conditions (default: English messages)."""
    registry = ServiceRegistry()
    register_crm_operations(registry, clock)
    from .mail_operations import mail_operations

    for op in mail_operations():
        registry.register(op)
    register_webhook_operation(registry, url_guard)
    return Engine(registry=registry, assigner=CrmAssigner(open_tasks=open_task_counts),
                  clock=clock, retry_delays=retry_delays, calendar=calendar,
                  selector=CrmSelector(), data_limit=data_limit,
                  conditions=conditions or CrmConditionTypes())
