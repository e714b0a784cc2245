"""Moving running instances to another version of their process (Camunda-style).

``migrate(engine, session, instance_ids, target, mapping, dry_run=True)`` returns one report
per instance::

    {"instance_id", "from_version", "to_version", "ok", "migrated",
     "moves": [{"from": "Review", "to": "Review_v2"}], "problems": ["…"]}

Every element where the instance stands (an open task, a waiting event, a service call) is
mapped to an element of the target version — by ``mapping`` (old id → new id), else to the
element with the same id, which must be of the same kind. Elements it already passed must
exist in the target too (or be mapped), because the workflow keeps its path. Inside an
embedded (or event) sub-process the same holds for its elements, against the sub-process
the target's (mapped) sub-process element holds. Instances that stand inside a call activity
or a loop are not moved (reported). A dry run
(the default) only reports; a real run moves each instance that can be moved, in its own
savepoint, resets the mapped tokens in the new version (open tasks keep their inbox rows,
timers are armed again), and writes the move into the instance's history.

The library does the re-pointing (``SpiffWorkflow.bpmn.util.diff``): tasks keep their ids
and data; only their specs change.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import CallActivity
from SpiffWorkflow.bpmn.util.diff import SpecDiff, WorkflowDiff, migrate_workflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from .errors import Conflict, EngineError, NotFound
from .executor import InstanceRun
from .persistence import conflicts_guarded, lock_instance
from .store import ProcessDefinition, ProcessTask, Status, TaskStatus

if TYPE_CHECKING:
    from .runtime import Engine

#: where an instance can stand
_STANDING = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR


class _Refused(Exception):
    pass


def migrate(engine: Engine, session: Session, instance_ids: Sequence[int],
            target: ProcessDefinition, mapping: Mapping[str, str] | None = None, *,
            dry_run: bool = True, user_id: int | None = None) -> list[dict[str, Any]]:
    mapping = dict(mapping or {})
    target_spec, _subs = engine.serializer.specs(
        lambda: engine._spec_entry(session, target, engine.serializer.version),
        cache_key=_cache_key(target))
    reports = []
    for instance_id in instance_ids:
        report: dict[str, Any] = {"instance_id": instance_id, "to_version": target.version,
                                  "ok": False, "migrated": False, "moves": [], "problems": []}
        try:
            with session.begin_nested(), conflicts_guarded():
                _one(engine, session, instance_id, target, target_spec, mapping, dry_run,
                     user_id, report)
        except _Refused:
            pass
        except OperationalError:
            raise
        except (EngineError, Conflict, NotFound) as exc:
            report["problems"].append(exc.message)
        reports.append(report)
    return reports


def _cache_key(d: ProcessDefinition) -> tuple[Any, ...]:
    return (d.id, d.key, d.version, d.deployed_at)


def _one(engine: Engine, session: Session, instance_id: int, target: ProcessDefinition,
         target_spec: Any, mapping: dict[str, str], dry_run: bool, user_id: int | None,
         report: dict[str, Any]) -> None:
    inst = lock_instance(session, instance_id)
    source = session.get(ProcessDefinition, inst.definition_id)
    report["from_version"] = source.version if source else None
    problems = report["problems"]
    if source is None or source.key != target.key:
        problems.append(f"instance {instance_id} is not an instance of {target.key}")
        raise _Refused
    if source.id == target.id:
        problems.append(f"instance {instance_id} already runs v{target.version}")
        raise _Refused
    if inst.status not in Status.OPEN:
        problems.append(f"instance {instance_id} is {inst.status}")
        raise _Refused
    run = engine._load(session, inst)
    wf = run.wf
    registry = engine.serializer._serializer.registry
    target_subs = engine.serializer.specs(
        lambda: engine._spec_entry(session, target, engine.serializer.version),
        cache_key=_cache_key(target))[1]
    # the process, then each sub-process it stands in (parents first): {workflow: diff}
    plans: list[tuple[Any, Any, WorkflowDiff]] = []
    aligned: dict[Any, Any] = {}  # task id -> its spec in the target
    for workflow in [wf, *wf.subprocesses.values()]:
        if workflow is wf:
            new_spec = target_spec
        else:
            new_spec = _sub_spec(wf, workflow, aligned, target_subs, target.version, problems)
            if new_spec is None:
                continue
        diff = WorkflowDiff(workflow, SpecDiff(registry, workflow.spec, new_spec))
        _align(workflow, new_spec, diff, mapping, target.version, report, aligned)
        plans.append((workflow, new_spec, diff))
    if problems:
        raise _Refused
    report["ok"] = True
    if dry_run:
        return
    rows = {r.spiff_task_id: r for r in session.scalars(select(ProcessTask).where(
        ProcessTask.instance_id == inst.id, ProcessTask.status.in_(TaskStatus.ACTIVE)))}
    for workflow, new_spec, diff in plans:
        migrate_workflow(diff, workflow, new_spec)
    wf.subprocess_specs = dict(target_subs)  # sub-processes started from now on
    inst.definition_id = target.id
    new_run = InstanceRun(engine, session, inst, target, wf)
    for task in wf.get_tasks(state=TaskState.READY):
        row = rows.get(str(task.id))
        if row is not None and row.element_id != task.task_spec.bpmn_id:
            row.element_id = task.task_spec.bpmn_id
            row.name = (task.task_spec.bpmn_name or row.element_id)[:300]
    moves = ", ".join(f"{m['from']} → {m['to']}" for m in report["moves"]) or "nothing open"
    new_run.record("migrated", None, f"moved from v{report['from_version']} to "
                                     f"v{target.version} ({moves})"
                   + (f" by user {user_id}" if user_id else ""), user_id)
    new_run.advance()
    new_run.save()
    session.flush()
    report["migrated"] = True
    del run


def _sub_spec(wf: Any, workflow: Any, aligned: dict[Any, Any], target_subs: dict[str, Any],
              version: int, problems: list[str]) -> Any:
    """The target's spec of a running sub-process: the one its (mapped) sub-process element
    names. Call activities run another process's version: not moved."""
    owner = _owner(wf, workflow)
    element = getattr(owner.task_spec, "bpmn_id", None) if owner is not None else None
    if owner is None or isinstance(owner.task_spec, CallActivity):
        problems.append(f"it stands inside the call activity {element or workflow.spec.name}; "
                        "instances inside call activities cannot be moved")
        return None
    new_owner = aligned.get(owner.id)
    if new_owner is None:
        return None  # the owner's own problem is reported already
    new_spec = target_subs.get(getattr(new_owner, "spec", None))
    if new_spec is None:
        problems.append(f"{element}: v{version} has no sub-process for it")
    return new_spec


def _owner(wf: Any, workflow: Any) -> Any:
    """The sub-process task that runs ``workflow`` (the sub-workflow's id is that task's)."""
    sp_id = next((k for k, sp in wf.subprocesses.items() if sp is workflow), None)
    for candidate in [wf, *wf.subprocesses.values()]:
        task = candidate.tasks.get(sp_id)
        if task is not None and task.workflow is candidate and candidate is not workflow:
            return task
    return None


def _align(workflow: Any, new_spec: Any, diff: WorkflowDiff, mapping: dict[str, str],
           version: int, report: dict[str, Any], aligned: dict[Any, Any]) -> None:
    """Map where ``workflow`` stands (and what it passed) onto ``new_spec``; problems into
    the report."""
    problems = report["problems"]
    standing = [t for t in workflow.get_tasks(state=_STANDING, skip_subprocesses=True)
                if getattr(t.task_spec, "bpmn_id", None)]
    for task in standing:
        if isinstance(task.task_spec, LoopTask) or isinstance(
                getattr(task.parent, "task_spec", None), LoopTask):
            problems.append(f"it stands in the loop {task.task_spec.bpmn_id}; loops cannot "
                            "be moved yet")
            raise _Refused
    moved_ids = {t.id for t in standing}
    for task in standing:
        old = task.task_spec.bpmn_id
        new = mapping.get(old, old)
        candidate = new_spec.task_specs.get(new)
        if candidate is None:
            problems.append(f"{old}: v{version} has no element {new}; map it to one")
        elif type(candidate) is not type(task.task_spec):
            problems.append(f"{old} ({_kind(task.task_spec)}) cannot become {new} "
                            f"({_kind(candidate)})")
        else:
            diff.alignment[task] = candidate
            aligned[task.id] = candidate
            report["moves"].append({"from": old, "to": new})
    for task in diff.removed:
        if task.id in moved_ids or any(task.is_descendant_of(t) for t in standing):
            continue  # predicted beyond where it stands: dropped and predicted anew
        old = getattr(task.task_spec, "bpmn_id", None) or task.task_spec.name
        new = mapping.get(old)
        candidate = new_spec.task_specs.get(new) if new else None
        if candidate is None:
            problems.append(f"{old} (already passed) is not in v{version}; map it")
        else:
            diff.alignment[task] = candidate


def _kind(spec: Any) -> str:
    return type(spec).__name__
