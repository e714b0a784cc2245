"""Who gets a user task: every assignment kind, out-of-office rules, rotation, load, validation."""
from __future__ import annotations

import datetime as dt
import gc
import weakref

import pytest
from sqlalchemy import event

from automation.assignment import AssignmentFailed, CrmAssigner, find_user
from crm_models.services.org import grant_role, save_department, save_role, update_user
from engine.ports import AssignmentSpec
from tests.factories import SYSTEM, make_user, role

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
A = CrmAssigner()


def away(db, user, deputy=None):
    fields = {"out_of_office_from": (NOW - dt.timedelta(days=1)).isoformat(),
              "out_of_office_until": (NOW + dt.timedelta(days=1)).isoformat()}
    if deputy is not None:
        fields["deputy_id"] = deputy.id
    update_user(db, SYSTEM, user.id, **fields)


def deal_data(user):
    return {"deal": {"id": 1, "responsible_id": user.id}, "event": {"type": "deal.created"}}


def resolve(db, kind, target="", ooo="deputy", data=None):
    return A.resolve(db, AssignmentSpec(kind, target, ooo), data or {}, NOW)


def test_user_by_email_or_id(db, org):
    assert resolve(db, "user", "M1@test.local").assignee_id == org.m1.id
    assert resolve(db, "user", str(org.m2.id)).assignee_id == org.m2.id


def test_role_members_are_candidates(db, org):
    got = resolve(db, "role", "manager")
    assert got.assignee_id is None
    # direct grants: corporate, m1, m2, outsider (make_user grants "manager" by default)
    assert set(got.candidate_ids) == {org.corporate.id, org.m1.id, org.m2.id, org.outsider.id}


def test_role_granted_to_a_department_reaches_its_subdepartments(db, org):
    r = save_role(db, SYSTEM, name="Key accounts")
    grant_role(db, SYSTEM, r.id, department_id=org.sales_id)
    got = resolve(db, "role", "key accounts")
    assert set(got.candidate_ids) == {org.head.id, org.corporate.id, org.m1.id, org.m2.id}


def test_department_head_by_name_and_responsible_department_head(db, org):
    assert resolve(db, "department_head", "sales").assignee_id == org.head.id
    assert resolve(db, "responsible_department_head",
                   data=deal_data(org.m1)).assignee_id == org.head.id
    # the corporate manager heads Corporate: their own head is the one above
    assert resolve(db, "responsible_department_head",
                   data=deal_data(org.corporate)).assignee_id == org.head.id


def test_responsible(db, org):
    assert resolve(db, "responsible", data=deal_data(org.m2)).assignee_id == org.m2.id
    with pytest.raises(AssignmentFailed, match="no responsible"):
        resolve(db, "responsible", data={"event": {}})


def test_out_of_office_goes_to_the_deputy(db, org):
    away(db, org.m1, deputy=org.m2)
    got = resolve(db, "user", "m1@test.local")
    assert got.assignee_id == org.m2.id and "deputy of Manager One" in got.note


def test_deputy_chain_skips_a_deputy_who_is_away_too(db, org):
    away(db, org.m2, deputy=org.corporate)
    away(db, org.m1, deputy=org.m2)
    assert resolve(db, "user", "m1@test.local").assignee_id == org.corporate.id


def test_without_an_available_deputy_the_task_stays(db, org):
    away(db, org.m1)
    got = resolve(db, "user", "m1@test.local")
    assert got.assignee_id == org.m1.id and "no available deputy" in got.note


def test_out_of_office_skip_passes_to_the_head(db, org):
    away(db, org.m1, deputy=org.m2)
    got = resolve(db, "user", "m1@test.local", ooo="skip")
    assert got.assignee_id == org.head.id and "passed to Head of Sales" in got.note


def test_out_of_office_is_bounded_by_its_period(db, org):
    away(db, org.m1, deputy=org.m2)
    later = NOW + dt.timedelta(days=2)
    got = A.resolve(db, AssignmentSpec("user", "m1@test.local"), {}, later)
    assert got.assignee_id == org.m1.id


def test_pools_skip_or_replace_members_who_are_away(db, org):
    away(db, org.m1, deputy=org.head)
    skipped = resolve(db, "role", "manager", ooo="skip").candidate_ids
    assert org.m1.id not in skipped and org.head.id not in skipped
    replaced = resolve(db, "role", "manager", ooo="deputy").candidate_ids
    assert org.m1.id not in replaced and org.head.id in replaced


def test_round_robin_rotates_and_persists(app, db, org):
    members = sorted([org.corporate.id, org.m1.id, org.m2.id, org.outsider.id])
    got = [resolve(db, "round_robin", "manager").assignee_id for _ in range(3)]
    db.commit()
    with app.extensions["db_sessionmaker"]() as other:  # the cursor lives in the database
        got += [A.resolve(other, AssignmentSpec("round_robin", "manager"), {}, NOW).assignee_id
                for _ in range(3)]
        other.commit()
    assert got == members[:3] + [members[3], members[0], members[1]]


def test_round_robin_skips_members_who_are_away(db, org):
    away(db, org.corporate)
    got = {resolve(db, "round_robin", "manager", ooo="skip").assignee_id for _ in range(6)}
    assert got == {org.m1.id, org.m2.id, org.outsider.id}


def test_least_loaded_takes_the_fewest_open_tasks(db, org):
    counts = {org.corporate.id: 3, org.m1.id: 1, org.m2.id: 0, org.outsider.id: 0}
    assigner = CrmAssigner(open_tasks=lambda _s, ids: {i: counts[i] for i in ids})
    got = assigner.resolve(db, AssignmentSpec("least_loaded", "manager"), {}, NOW)
    assert got.assignee_id == min(org.m2.id, org.outsider.id)
    counts[org.m2.id] = counts[org.outsider.id] = 5
    assert assigner.resolve(db, AssignmentSpec("least_loaded", "manager"), {},
                            NOW).assignee_id == org.m1.id


def test_inactive_users_never_get_tasks(db, org):
    update_user(db, SYSTEM, org.m1.id, active=False)
    assert org.m1.id not in resolve(db, "role", "manager").candidate_ids
    with pytest.raises(AssignmentFailed, match="deactivated"):
        resolve(db, "user", "m1@test.local")


def test_empty_pools_and_headless_departments_fail_clearly(db, org):
    save_role(db, SYSTEM, name="Nobody")
    with pytest.raises(AssignmentFailed, match="no active members"):
        resolve(db, "role", "Nobody")
    dep = save_department(db, SYSTEM, name="Headless")
    assert dep.head_id is None
    with pytest.raises(AssignmentFailed, match="has no head"):
        resolve(db, "department_head", "Headless")
    for u in (org.corporate, org.m1, org.m2, org.outsider):
        away(db, u)
    with pytest.raises(AssignmentFailed, match="out of office"):
        resolve(db, "round_robin", "manager", ooo="skip")


@pytest.mark.parametrize("spec, message", [
    (AssignmentSpec("user", "ghost@test.local"), "no user 'ghost@test.local'"),
    (AssignmentSpec("user", ""), "needs a user's e-mail"),
    (AssignmentSpec("role", "wizards"), "no role 'wizards'"),
    (AssignmentSpec("round_robin", "wizards"), "no role 'wizards'"),
    (AssignmentSpec("least_loaded", ""), "needs a role"),
    (AssignmentSpec("department_head", "Marketing"), "no department 'Marketing'"),
    (AssignmentSpec("boss"), "unknown assignment 'boss'"),
    (AssignmentSpec("responsible", "", "vanish"), "unknown out-of-office rule 'vanish'"),
])
def test_validate_names_what_is_wrong(db, org, spec, message):
    assert message in (A.validate(db, spec) or "")
    with pytest.raises(AssignmentFailed):
        A.resolve(db, spec, {}, NOW)


def test_validate_accepts_resolvable_specs(db, org):
    for spec in (AssignmentSpec("user", "m1@test.local"), AssignmentSpec("role", "manager"),
                 AssignmentSpec("department_head", "Sales"), AssignmentSpec("responsible"),
                 AssignmentSpec("responsible_department_head"),
                 AssignmentSpec("round_robin", str(role(db, "manager").id))):
        assert A.validate(db, spec) is None, spec


def test_a_new_member_joins_the_rotation(db, org):
    newbie = make_user(db, department_id=org.sales_id)
    got = {resolve(db, "round_robin", "manager").assignee_id for _ in range(5)}
    assert newbie.id in got


def test_find_user_answers_again_from_the_session_while_the_address_holds(app, db, org):
    statements = []

    def count(*_args):
        statements.append(1)

    engine = app.extensions["db_engine"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        first = find_user(db, "M1@test.local")
        assert first is not None and first.id == org.m1.id
        asked = len(statements)
        assert find_user(db, " m1@test.local ") is first and len(statements) == asked
        update_user(db, SYSTEM, org.m1.id, email="renamed@test.local")
        assert find_user(db, "m1@test.local") is None  # asked again: nobody has it now
        assert find_user(db, "renamed@test.local") is first
    finally:
        event.remove(engine, "before_cursor_execute", count)
    db.commit()
    # Another transaction may have given the address to someone else: asked afresh.
    other = app.extensions["db_sessionmaker"]()
    try:
        update_user(other, SYSTEM, org.m1.id, email="m1@test.local")
        update_user(other, SYSTEM, org.m2.id, email="renamed@test.local")
        other.commit()
    finally:
        other.close()
    db.rollback()  # (an SQLite transaction begun meanwhile would read its older snapshot)
    assert find_user(db, "renamed@test.local").id == org.m2.id


def test_find_user_keeps_no_closed_session_alive(app, org):
    gc.disable()  # a reference cycle would keep the session until the next collection
    try:
        session = app.extensions["db_sessionmaker"]()
        assert find_user(session, "m1@test.local").id == org.m1.id
        session.commit()
        session.close()
        closed = weakref.ref(session)
        del session
        assert closed() is None
    finally:
        gc.enable()


def test_a_user_found_active_is_not_asked_again_until_the_transaction_ends(app, db, org):
    """``find_user`` reads the user from the database (not a stale copy the session holds);
    the reference check of the write that follows trusts that read, in that transaction only."""
    from crm_models.services import rows

    statements = []

    def count(*_args):
        statements.append(1)

    engine = app.extensions["db_engine"]
    assert find_user(db, "m2@test.local").active
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert rows.user_active(db, org.m2.id) is True
        assert statements == []
    finally:
        event.remove(engine, "before_cursor_execute", count)
    db.commit()
    other = app.extensions["db_sessionmaker"]()
    try:
        update_user(other, SYSTEM, org.m2.id, active=False)
        other.commit()
    finally:
        other.close()
    db.rollback()  # (an SQLite transaction begun meanwhile would read its older snapshot)
    assert not rows.user_active(db, org.m2.id)  # a new transaction: asked again
    assert find_user(db, "m2@test.local").active is False  # the session's copy is refreshed
    assert find_user(db, str(org.m2.id)).active is False
