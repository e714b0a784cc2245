"""User tasks: who may claim/complete/delegate, form validation, inbox, concurrent completion."""
from __future__ import annotations

import threading

import pytest

from engine.errors import Conflict, InvalidTaskData, NotAllowed, NotFound, TaskNotReady
from engine.ports import StartRequest
from engine.store import ProcessHistory, ProcessTask, Status, TaskStatus

from .support import bpmn, deal


@pytest.fixture()
def approval(engine, db):
    """A waiting routing instance with its approval task (assigned to user 10)."""
    d = engine.deploy(db, bpmn("routing.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(), "deal", 7, message="deal.created"))
    [task] = engine.tasks(db, instance_id=inst.id)
    return inst, task


@pytest.fixture()
def review(engine, db):
    """A parallel review: legal (user 11) and finance (offered to users 11 and 12)."""
    d = engine.deploy(db, bpmn("parallel.bpmn"))
    inst = engine.start(db, d, StartRequest({}, started_by=3))
    finance, legal = sorted(engine.tasks(db, instance_id=inst.id), key=lambda t: t.element_id)
    return inst, legal, finance


def test_assignee_completes_and_the_process_continues(engine, db, approval, assign):
    inst, task = approval
    engine.complete(db, task.id, 10, {"decision": "approve", "comment": "fine"})
    assert (task.status, task.completed_by, task.result) == (
        TaskStatus.COMPLETED, 10, {"decision": "approve", "comment": "fine"})
    assert inst.status == Status.COMPLETED
    assert len(assign.calls) == 1


def test_only_the_assignee_may_complete(engine, db, approval):
    inst, task = approval
    with pytest.raises(NotAllowed):
        engine.complete(db, task.id, 11, {"decision": "approve"})
    with pytest.raises(NotFound):
        engine.complete(db, 999, 10, {})
    assert task.status == TaskStatus.OPEN and inst.status == Status.WAITING


def test_completing_twice_is_a_conflict(engine, db, approval):
    _, task = approval
    engine.complete(db, task.id, 10, {"decision": "reject"})
    with pytest.raises(Conflict, match="already completed"):
        engine.complete(db, task.id, 10, {"decision": "reject"})


@pytest.mark.parametrize("data,fields", [
    ({}, {"decision": "required"}),
    ({"decision": "maybe"}, {"decision": "must be one of: approve, reject"}),
    ({"decision": "approve", "deal": {"amount": 1}}, {"deal": "not a field of this form"}),
    ({"decision": "approve", "comment": 5}, {"comment": "must be text"}),
    ({"decision": ["approve"]}, {"decision": "must be one of: approve, reject"}),
])
def test_form_data_is_validated_against_the_form(engine, db, approval, data, fields):
    _, task = approval
    with pytest.raises(InvalidTaskData) as info:
        engine.complete(db, task.id, 10, data)
    assert info.value.fields == fields
    assert task.status == TaskStatus.OPEN


def test_typed_form_fields_are_converted(engine, db, review):
    _, legal, finance = review
    with pytest.raises(InvalidTaskData) as info:
        engine.complete(db, finance.id, 12, {"limit": "12 abc"})
    assert info.value.fields == {"limit": "must be a number"}
    for digits in ("\u0661\u0662", "\u00b2", "1e3"):  # ASCII digits only, no exponent
        with pytest.raises(InvalidTaskData) as info:
            engine.complete(db, finance.id, 12, {"limit": digits})
        assert info.value.fields == {"limit": "must be a number"}
    with pytest.raises(InvalidTaskData) as info:
        engine.complete(db, legal.id, 11, {"legal_ok": "perhaps"})
    assert info.value.fields == {"legal_ok": "must be true or false"}
    engine.complete(db, legal.id, 11, {"legal_ok": "on"})
    engine.complete(db, finance.id, 12, {"limit": "1 000,5"})
    assert (legal.result, finance.result) == ({"legal_ok": True}, {"limit": "1000.5"})


def test_candidates_claim_and_only_the_claimer_completes(engine, db, review):
    _, _, finance = review
    assert finance.assignee_id is None and finance.candidate_ids == [11, 12]
    with pytest.raises(NotAllowed):
        engine.claim(db, finance.id, 13)
    engine.claim(db, finance.id, 12)
    assert (finance.status, finance.claimed_by) == (TaskStatus.CLAIMED, 12)
    with pytest.raises(Conflict, match="already claimed by user 12"):
        engine.claim(db, finance.id, 11)
    with pytest.raises(NotAllowed):
        engine.complete(db, finance.id, 11, {"limit": "1"})
    with pytest.raises(NotAllowed):
        engine.unclaim(db, finance.id, 11)
    engine.unclaim(db, finance.id, 12)
    engine.complete(db, finance.id, 11, {"limit": "1"})
    assert finance.completed_by == 11


def test_inbox_shows_assigned_offered_and_claimed_tasks(engine, db, review):
    _, legal, finance = review
    assert [t.id for t in engine.inbox(db, 11)] == sorted([legal.id, finance.id])
    assert [t.id for t in engine.inbox(db, 12)] == [finance.id]
    engine.claim(db, finance.id, 12)
    assert [t.id for t in engine.inbox(db, 11)] == [legal.id]
    assert [t.id for t in engine.inbox(db, 12)] == [finance.id]
    assert engine.inbox(db, 99) == []


def test_delegation_hands_the_task_to_one_person(engine, db, approval):
    inst, task = approval
    with pytest.raises(NotAllowed):
        engine.delegate(db, task.id, 11, 12)
    engine.delegate(db, task.id, 10, 12)
    assert (task.assignee_id, task.candidate_ids, task.status) == (12, [], TaskStatus.OPEN)
    with pytest.raises(NotAllowed):
        engine.complete(db, task.id, 10, {"decision": "approve"})
    engine.complete(db, task.id, 12, {"decision": "reject"})
    messages = [h.message for h in engine.history(db, inst.id)]
    assert "'Approve the deal' delegated by user 10 to user 12" in messages


def test_out_of_office_assignee_is_replaced_by_the_deputy(engine, db, assigner):
    assigner.away.add(10)
    d = engine.deploy(db, bpmn("routing.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(), message="deal.created"))
    [task] = engine.tasks(db, instance_id=inst.id)
    assert (task.assignee_id, task.assignment_note) == (13, "deputy of user 10 (out of office)")
    assert any("deputy of user 10" in h.message for h in engine.history(db, inst.id))


def test_unassignable_task_is_an_incident_until_retried(engine, db, assigner):
    assigner.roles["sales_manager"] = []
    d = engine.deploy(db, bpmn("parallel.bpmn"))
    inst = engine.start(db, d, StartRequest({}))
    assert inst.status == Status.INCIDENT and inst.incident_element_id == "Task_finance"
    assert "nobody to assign task Task_finance to (role sales_manager)" in inst.incident_message
    assert [t.element_id for t in engine.tasks(db, instance_id=inst.id)] == ["Task_legal"]
    assigner.roles["sales_manager"] = [12]
    engine.retry(db, inst.id, user_id=1)
    assert inst.status == Status.WAITING and inst.incident_element_id is None
    assert sorted(t.element_id for t in engine.tasks(db, instance_id=inst.id)) == [
        "Task_finance", "Task_legal"]


def test_cancel_withdraws_open_tasks(engine, db, approval):
    inst, task = approval
    engine.cancel(db, inst.id, user_id=1, reason="duplicate")
    assert (inst.status, task.status) == (Status.CANCELLED, TaskStatus.CANCELLED)
    with pytest.raises(Conflict):
        engine.complete(db, task.id, 10, {"decision": "approve"})
    with pytest.raises(Conflict):
        engine.cancel(db, inst.id)
    assert "cancelled by user 1: duplicate" in [h.message for h in engine.history(db, inst.id)]


def test_event_gateway_withdraws_nothing_but_stale_tasks_are_cancelled(engine, db, review):
    inst, legal, finance = review
    engine.cancel(db, inst.id)
    assert {legal.status, finance.status} == {TaskStatus.CANCELLED}
    with pytest.raises(Conflict):
        engine.claim(db, finance.id, 11)


def test_task_of_an_incident_instance_is_not_ready_if_its_state_moved_on(engine, db, approval):
    inst, task = approval
    inst.status = Status.COMPLETED  # e.g. finished by an admin elsewhere
    with pytest.raises(TaskNotReady):
        engine.complete(db, task.id, 10, {"decision": "approve"})


# ---------------------------------------------------------------- concurrency

def _race(n, action):
    """Run ``action(i)`` in ``n`` threads released at once; collect "ok"/"conflict"."""
    barrier = threading.Barrier(n)
    results: list[str] = []

    def worker(i: int) -> None:
        try:
            action(i, barrier)
            results.append("ok")
        except Conflict:
            results.append("conflict")
        except Exception as exc:  # anything else is a bug the assertion will show
            results.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return sorted(results)


def test_two_concurrent_completions_one_wins_one_conflicts(engine, db, approval, sessions):
    inst, task = approval
    db.commit()

    def complete(i, barrier):
        s = sessions()
        try:
            s.get(ProcessTask, task.id)  # both have read the open task before either writes
            barrier.wait()
            engine.complete(s, task.id, 10, {"decision": "approve" if i else "reject"})
            s.commit()
        except BaseException:
            s.rollback()
            raise

    assert _race(2, complete) == ["conflict", "ok"]
    check = sessions()
    row = check.get(ProcessTask, task.id)
    assert row.status == TaskStatus.COMPLETED
    completions = [h for h in check.query(ProcessHistory).filter_by(instance_id=inst.id)
                   if h.event == "completed"]
    assert len(completions) == 1
    assert engine.instance(check, inst.id).status == Status.COMPLETED


def test_two_concurrent_claims_one_wins(engine, db, review, sessions):
    _, _, finance = review
    db.commit()

    def claim(i, barrier):
        s = sessions()
        try:
            s.get(ProcessTask, finance.id)
            barrier.wait()
            engine.claim(s, finance.id, 11 + i)
            s.commit()
        except BaseException:
            s.rollback()
            raise

    assert _race(2, claim) == ["conflict", "ok"]
    assert sessions().get(ProcessTask, finance.id).claimed_by in (11, 12)
