"""User-task actions of the ``Engine``: claim, unclaim, delegate, complete, inbox queries
(built in ``engine.inbox``).

Who may act: an open task — its assignee or one of its candidates; a claimed task — only the
claimer. Completing validates the data against the task's form, continues the process in the
same transaction, and is safe against a concurrent second completion (one wins, the other
gets ``Conflict``; see ``engine.persistence``).
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from . import progress
from .data import diff
from .errors import Conflict, EngineError, NotAllowed, NotFound, TaskNotReady
from .forms import clean_form_data
from .inbox import InboxPage, inbox_count, inbox_page, inbox_query, inbox_slice
from .persistence import add_history, conflicts_guarded, lock_instance, lock_task
from .store import ProcessTask, ProcessTaskCandidate, Status, TaskStatus

if TYPE_CHECKING:
    from .executor import InstanceRun
    from .ports import Clock


#: ``session.info`` key: callables ``(session, rows)`` that an instance run calls with the
#: task rows it has just inserted (dicts of ``process_task`` columns, ``id`` included). The
#: rows are written with Core, never flushed, so this is how a session-level observer (the
#: CRM's notifier, ``automation.notifications``) hears of them, in the same transaction.
TASKS_INSERTED = "marshrut.tasks_inserted"


def find_task(wf: Any, spiff_task_id: str) -> Any:
    """A task of the workflow or of one of its sub-processes (None if gone)."""
    try:
        return wf.get_task_from_id(UUID(spiff_task_id))
    except Exception:  # the library's TaskNotFoundException, or a malformed id
        return None


def may_act(row: ProcessTask, user_id: int) -> bool:
    if row.status == TaskStatus.CLAIMED:
        return row.claimed_by == user_id
    return user_id == row.assignee_id or user_id in (row.candidate_ids or [])


def candidate_rows(candidate_ids: Sequence[int]) -> list[ProcessTaskCandidate]:
    """The ``process_task_candidate`` rows of a new task (``ProcessTask(candidate_rows=…)``)."""
    return [ProcessTaskCandidate(user_id=u) for u in sorted(set(candidate_ids))]


def withdraw_candidates(session: Session, rows: Sequence[ProcessTask]) -> None:
    """Delete the candidate rows of tasks leaving the active states (completed, cancelled,
    withdrawn) or delegated to one user. Call it before changing ``candidate_ids``; tasks
    that never had candidates cost no statement."""
    ids = [r.id for r in rows if r.candidate_ids]
    if ids:
        session.execute(delete(ProcessTaskCandidate)
                        .where(ProcessTaskCandidate.task_id.in_(ids))
                        .execution_options(synchronize_session=False))


class TaskActions:
    """Mixed into ``Engine``; relies on its ``clock`` and ``_load``."""

    clock: Clock

    def _load(self, session: Session, instance: Any) -> InstanceRun:  # pragma: no cover
        raise NotImplementedError

    def task(self, session: Session, task_id: int) -> ProcessTask:
        row = session.get(ProcessTask, task_id)
        if row is None:
            raise NotFound(f"task {task_id} not found")
        return row

    def tasks(self, session: Session, *, instance_id: int | None = None,
              statuses: Sequence[str] | None = TaskStatus.ACTIVE) -> list[ProcessTask]:
        q = select(ProcessTask).order_by(ProcessTask.id)
        if instance_id is not None:
            q = q.where(ProcessTask.instance_id == instance_id)
        if statuses is not None:
            q = q.where(ProcessTask.status.in_(statuses))
        return list(session.scalars(q))

    def inbox(self, session: Session, user_id: int) -> list[ProcessTask]:
        """Open tasks the user may take (assigned or offered) and tasks they claimed, by
        (priority, due — none last —, id), all of them; see ``engine.inbox``. Lists a user
        pages through take ``inbox_page``."""
        return list(session.scalars(inbox_query(user_id)))

    def inbox_page(self, session: Session, user_id: int, *, limit: int,
                   after: str | None = None, scope: str = "all") -> InboxPage:
        """Up to ``limit`` inbox tasks after the cursor ``after`` and the next page's cursor;
        ``scope`` "mine" or "offered" takes one part. A malformed cursor raises
        ``BadCursor`` naming ``after``."""
        return inbox_page(session, user_id, limit=limit, after=after, scope=scope)

    def inbox_count(self, session: Session, user_id: int, *, scope: str = "all") -> int:
        return inbox_count(session, user_id, scope=scope)

    def inbox_slice(self, session: Session, user_id: int, *, offset: int,
                    limit: int) -> list[ProcessTask]:
        """Inbox tasks by offset, for Bitrix24's ``start``; see ``engine.inbox.inbox_slice``."""
        return inbox_slice(session, user_id, offset=offset, limit=limit)

    def claim(self, session: Session, task_id: int, user_id: int) -> ProcessTask:
        with conflicts_guarded():
            row = lock_task(session, task_id)
            if row.status == TaskStatus.CLAIMED and row.claimed_by == user_id:
                return row
            if row.status != TaskStatus.OPEN:
                raise Conflict(f"task {task_id} is already {row.status}"
                               + (f" by user {row.claimed_by}" if row.claimed_by else ""))
            if not may_act(row, user_id):
                raise NotAllowed(f"task {task_id} is not assigned or offered to you")
            row.status, row.claimed_by = TaskStatus.CLAIMED, user_id
            add_history(session, row.instance_id, self.clock.now(), "claimed", row.element_id,
                        f"'{row.name}' claimed by user {user_id}", user_id)
            session.flush()
        return row

    def unclaim(self, session: Session, task_id: int, user_id: int) -> ProcessTask:
        with conflicts_guarded():
            row = lock_task(session, task_id)
            if row.status != TaskStatus.CLAIMED:
                raise Conflict(f"task {task_id} is {row.status}, not claimed")
            if row.claimed_by != user_id:
                raise NotAllowed(f"task {task_id} was claimed by someone else")
            row.status, row.claimed_by = TaskStatus.OPEN, None
            add_history(session, row.instance_id, self.clock.now(), "unclaimed",
                        row.element_id, f"'{row.name}' released by user {user_id}", user_id)
            session.flush()
        return row

    def delegate(self, session: Session, task_id: int, from_user: int,
                 to_user: int) -> ProcessTask:
        """Hand the task to ``to_user`` alone; only someone who may act on it can do this."""
        with conflicts_guarded():
            row = lock_task(session, task_id)
            if row.status not in TaskStatus.ACTIVE:
                raise Conflict(f"task {task_id} is already {row.status}")
            if not may_act(row, from_user):
                raise NotAllowed(f"task {task_id} is not yours to delegate")
            if to_user == from_user:
                raise EngineError("a task cannot be delegated to yourself",
                                  fields={"to_user": "choose someone else"})
            withdraw_candidates(session, [row])
            row.assignee_id, row.candidate_ids, row.claimed_by = to_user, [], None
            row.status = TaskStatus.OPEN
            row.assignment_note = f"delegated by user {from_user}"
            add_history(session, row.instance_id, self.clock.now(), "delegated",
                        row.element_id, f"'{row.name}' delegated by user {from_user} to user "
                                        f"{to_user}", from_user)
            session.flush()
        return row

    def complete(self, session: Session, task_id: int, user_id: int,
                 data: Mapping[str, Any] | None = None) -> ProcessTask:
        """Finish a user task with form ``data`` and continue the process to its next wait."""
        with conflicts_guarded():
            instance_id = self.task(session, task_id).instance_id
            inst = lock_instance(session, instance_id)  # instance first, then task: no deadlock
            row = lock_task(session, task_id)
            if row.status not in TaskStatus.ACTIVE:
                raise Conflict(f"task {task_id} is already {row.status}")
            if not may_act(row, user_id):
                raise NotAllowed(f"task {task_id} is not assigned to you")
            if inst.status not in Status.OPEN:
                raise TaskNotReady(f"the process of task {task_id} is {inst.status}")
            clean = clean_form_data(row.form, data)
            run = self._load(session, inst)
            task = find_task(run.wf, row.spiff_task_id)
            if task is None or task.state != TaskState.READY:
                raise TaskNotReady(f"task {task_id} is not waiting for input")
            before = copy.deepcopy(task.data)
            task.set_data(**clean)
            task.run()
            withdraw_candidates(session, [row])
            row.status, row.completed_by, row.result = TaskStatus.COMPLETED, user_id, clean
            row.completed_at = run.now
            loop = progress.note(task)
            run.record("completed", row.element_id, f"'{row.name}' completed by user {user_id}"
                       + (f"; {loop}" if loop else ""), user_id, diff(before, task.data))
            run.advance()
            run.save()
            session.flush()
        return row
