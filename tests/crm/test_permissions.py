"""The CRM permission matrix, checked through the service functions.

The expectations are a hand-written table from Bitrix24's level semantics (own ⊂ own+department
⊂ +sub-departments ⊂ all open ⊂ all), not computed by the code under test. Every cell is
checked for each read path (get, list, search, count) and for add, update and delete.
"""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from crm_models.errors import NotFound, PermissionDenied
from crm_models.org import PermLevel, User
from crm_models.permissions import actor_for
from crm_models.services import (
    add_activity,
    add_comment,
    complete_activity,
    create_company,
    create_contact,
    create_deal,
    create_lead,
    delete_company,
    delete_contact,
    delete_deal,
    delete_lead,
    get_record,
    list_companies,
    list_contacts,
    list_deals,
    list_leads,
    records,
    update_company,
    update_contact,
    update_deal,
    update_lead,
)
from crm_models.services.org import grant_role, save_role, update_user
from tests.factories import SYSTEM, Org, make_deal, make_lead, make_user, role

ROLES = ("admin", "sales_head", "manager", "observer")
ENTITIES = ("lead", "deal", "contact", "company")
OWNERS = ("own", "dept", "sub", "other", "nodept")

# Who owns the record, relative to the acting user (a member of Sales):
#   own     – the acting user           dept  – another member of Sales
#   sub     – a member of Corporate (a sub-department of Sales)
#   other   – a member of Support       nodept – a user in no department at all
# Each owner's record exists twice: open to everyone (True) and not (False).


def cells(*owners: str, opened: tuple[bool, ...] = (True, False)) -> frozenset[tuple[str, bool]]:
    return frozenset((o, op) for o in owners for op in opened)


EVERYTHING = cells(*OWNERS)
NOTHING: frozenset[tuple[str, bool]] = frozenset()

EXPECTED: dict[str, dict[str, frozenset[tuple[str, bool]]]] = {
    # Administrator: level "all" everywhere.
    "admin": {"read": EVERYTHING, "add": EVERYTHING, "update": EVERYTHING,
              "delete": EVERYTHING},
    # Sales head: own + department + sub-departments, open or not; nobody else's.
    "sales_head": {a: cells("own", "dept", "sub") for a in ("read", "add", "update", "delete")},
    # Manager: own records only.
    "manager": {a: cells("own") for a in ("read", "add", "update", "delete")},
    # Observer: level "all open", which includes the sub-departments level below it (own,
    # department, sub-departments, open or not) plus every open record; changes nothing.
    "observer": {"read": cells("own", "dept", "sub") | cells("other", "nodept", opened=(True,)),
                 "add": NOTHING, "update": NOTHING, "delete": NOTHING},
}

CREATE = {"lead": create_lead, "deal": create_deal, "contact": create_contact,
          "company": create_company}
UPDATE = {"lead": update_lead, "deal": update_deal, "contact": update_contact,
          "company": update_company}
DELETE = {"lead": delete_lead, "deal": delete_deal, "contact": delete_contact,
          "company": delete_company}
LIST = {"lead": list_leads, "deal": list_deals, "contact": list_contacts,
        "company": list_companies}


def name_fields(entity: str, token: str) -> dict[str, Any]:
    return {"last_name": token} if entity == "contact" else {"title": token}


def owners_of(org: Org, subject: User, loner: User) -> dict[str, User]:
    return {"own": subject, "dept": org.m1, "sub": org.corporate, "other": org.outsider,
            "nodept": loner}


def test_expectation_table_is_complete():
    assert set(EXPECTED) == set(ROLES)
    for table in EXPECTED.values():
        assert set(table) == {"read", "add", "update", "delete"}
        for allowed in table.values():
            assert allowed <= EVERYTHING


@pytest.mark.parametrize("entity", ENTITIES)
@pytest.mark.parametrize("role_code", ROLES)
def test_permission_matrix(db: Session, org: Org, role_code: str, entity: str) -> None:
    subject = make_user(db, role_code=role_code, department_id=org.sales_id)
    loner = make_user(db, role_code="manager")
    owners = owners_of(org, subject, loner)
    ids: dict[tuple[str, bool], int] = {}
    tokens: dict[tuple[str, bool], str] = {}
    for n, (owner, opened) in enumerate(sorted(EVERYTHING)):
        token = f"permtok{n:02d}q"
        rec = CREATE[entity](db, SYSTEM, responsible_id=owners[owner].id, opened=opened,
                             **name_fields(entity, token))
        ids[(owner, opened)], tokens[(owner, opened)] = rec.id, token
    db.commit()
    actor = actor_for(db, subject)
    expected = EXPECTED[role_code]
    wrong: list[str] = []

    def check(what: str, cell: tuple[str, bool], allowed: bool, got: bool) -> None:
        if allowed != got:
            wrong.append(f"{what} {cell}: expected {'allowed' if allowed else 'denied'}")

    # Reading: get, the list, a search, a count — all four must agree with the table.
    listed = {r.id for r in LIST[entity](db, actor, per_page=500).items}
    for cell, rid in ids.items():
        allowed = cell in expected["read"]
        try:
            got = get_record(db, actor, entity, rid).id == rid
        except NotFound:
            got = False
        check("get", cell, allowed, got)
        check("list", cell, allowed, rid in listed)
        found = {r.id for r in LIST[entity](db, actor, search=tokens[cell]).items}
        check("search", cell, allowed, found == {rid})
        check("count", cell, allowed,
              records.count(db, actor, entity, filters={"id": rid}) == 1)
    if records.count(db, actor, entity) != len(expected["read"]):
        wrong.append(f"count of all: {records.count(db, actor, entity)} "
                     f"!= {len(expected['read'])}")

    # Updating: a record one cannot read is "not found"; one only readable is "forbidden".
    for cell, rid in ids.items():
        allowed = cell in expected["update"]
        try:
            UPDATE[entity](db, actor, rid, comments="changed")
            got = True
        except NotFound:
            got = False
            if cell in expected["read"]:
                wrong.append(f"update {cell}: NotFound for a readable record")
        except PermissionDenied:
            got = False
            if cell not in expected["read"]:
                wrong.append(f"update {cell}: PermissionDenied reveals an unreadable record")
        check("update", cell, allowed, got)
    db.commit()

    # Adding: with each owner as the responsible user, open or not.
    for cell in sorted(EVERYTHING):
        owner, opened = cell
        try:
            CREATE[entity](db, actor, responsible_id=owners[owner].id, opened=opened,
                           **name_fields(entity, "added"))
            got = True
        except PermissionDenied:
            got = False
        check("add", cell, cell in expected["add"], got)
    db.rollback()

    for cell, rid in ids.items():
        try:
            DELETE[entity](db, actor, rid)
            got = True
        except (NotFound, PermissionDenied):
            got = False
        check("delete", cell, cell in expected["delete"], got)
    db.commit()
    remaining = {r.id for r in LIST[entity](db, actor_for(db, org.admin), per_page=500).items}
    for cell, rid in ids.items():
        check("deleted really", cell, cell in expected["delete"], rid not in remaining)
    assert not wrong, "\n".join(wrong)


def test_role_granted_to_a_department_reaches_its_members_and_sub_departments(
        db: Session, org: Org) -> None:
    grant_role(db, SYSTEM, role(db, "sales_head").id, department_id=org.sales_id)
    in_sales = make_user(db, role_code=None, department_id=org.sales_id)
    in_corporate = make_user(db, role_code=None, department_id=org.corporate_id)
    in_support = make_user(db, role_code=None, department_id=org.support_id)
    m1_deal = make_deal(db, org.m1, opened=False)
    corp_deal = make_deal(db, org.corporate, opened=False)
    db.commit()

    sales_actor = actor_for(db, in_sales)
    assert sales_actor.level("deal", "update") == PermLevel.SUBDEPARTMENTS
    assert get_record(db, sales_actor, "deal", m1_deal.id).id == m1_deal.id
    assert get_record(db, sales_actor, "deal", corp_deal.id).id == corp_deal.id

    corp_actor = actor_for(db, in_corporate)
    assert corp_actor.level("deal", "read") == PermLevel.SUBDEPARTMENTS
    # Sub-department level from Corporate's point of view: Corporate only, not Sales above.
    assert get_record(db, corp_actor, "deal", corp_deal.id).id == corp_deal.id
    with pytest.raises(NotFound):
        get_record(db, corp_actor, "deal", m1_deal.id)

    support_actor = actor_for(db, in_support)
    assert support_actor.level("deal", "read") == PermLevel.NONE
    assert list_deals(db, support_actor).total == 0
    with pytest.raises(PermissionDenied):
        create_deal(db, support_actor, title="No rights")


def test_effective_level_is_the_highest_of_all_roles(db: Session, org: Org) -> None:
    both = make_user(db, role_code="manager", department_id=org.sales_id)
    grant_role(db, SYSTEM, role(db, "observer").id, user_id=both.id)
    open_deal = make_deal(db, org.outsider, opened=True)
    closed_deal = make_deal(db, org.outsider, opened=False)
    own_deal = make_deal(db, both, opened=False)
    db.commit()
    actor = actor_for(db, both)
    assert actor.level("deal", "read") == PermLevel.OPEN  # observer's, above manager's "own"
    assert actor.level("deal", "update") == PermLevel.OWN  # manager's, above observer's none
    assert {d.id for d in list_deals(db, actor).items} == {open_deal.id, own_deal.id}
    with pytest.raises(NotFound):
        get_record(db, actor, "deal", closed_deal.id)
    with pytest.raises(PermissionDenied):
        update_deal(db, actor, open_deal.id, title="Not mine")
    assert update_deal(db, actor, own_deal.id, title="Mine").title == "Mine"


def test_custom_role_with_department_level(db: Session, org: Org) -> None:
    custom = save_role(db, SYSTEM, name="Deal reader (department)",
                       levels={("deal", "read"): PermLevel.DEPARTMENT,
                               ("deal", "update"): PermLevel.OWN})
    user = make_user(db, role_code=None, department_id=org.sales_id)
    grant_role(db, SYSTEM, custom.id, user_id=user.id)
    m1_deal = make_deal(db, org.m1, opened=False)
    corp_deal = make_deal(db, org.corporate, opened=True)
    lead = make_lead(db, org.m1)
    db.commit()
    actor = actor_for(db, user)
    # Department level: Sales members' deals, not Corporate's (a sub-department), open or not.
    assert {d.id for d in list_deals(db, actor).items} == {m1_deal.id}
    with pytest.raises(NotFound):
        get_record(db, actor, "deal", corp_deal.id)
    with pytest.raises(PermissionDenied):
        update_deal(db, actor, m1_deal.id, title="x")
    with pytest.raises(PermissionDenied):
        create_deal(db, actor, title="No add right")
    with pytest.raises(NotFound):
        get_record(db, actor, "lead", lead.id)
    assert list_leads(db, actor).total == 0


def test_deactivated_user_has_no_rights(db: Session, org: Org) -> None:
    deal = make_deal(db, org.m1)
    update_user(db, SYSTEM, org.m1.id, active=False)
    db.commit()
    with pytest.raises(PermissionDenied):
        actor_for(db, org.m1)
    # Nor can anyone hand them new records.
    with pytest.raises(Exception) as info:
        create_deal(db, actor_for(db, org.admin), title="To a leaver",
                    responsible_id=org.m1.id)
    assert getattr(info.value, "fields", {}).get("responsible_id")
    assert get_record(db, actor_for(db, org.admin), "deal", deal.id).id == deal.id


@pytest.mark.parametrize(("who", "responsible", "allowed"), [
    ("m1", "m1", True), ("m1", "m2", False), ("m1", "outsider", False),
    ("head", "m1", True), ("head", "corporate", True), ("head", "outsider", False),
    ("observer", "observer", False), ("admin", "outsider", True),
])
def test_add_with_responsible_outside_own_scope_is_refused(
        db: Session, org: Org, who: str, responsible: str, allowed: bool) -> None:
    actor = actor_for(db, getattr(org, who))
    target = getattr(org, responsible)
    if allowed:
        assert create_deal(db, actor, title="x", responsible_id=target.id).responsible_id == \
            target.id
    else:
        with pytest.raises(PermissionDenied):
            create_deal(db, actor, title="x", responsible_id=target.id)


def test_add_defaults_responsible_to_the_actor(db: Session, org: Org) -> None:
    lead = create_lead(db, actor_for(db, org.m2), title="Mine by default")
    assert lead.responsible_id == org.m2.id
    assert lead.created_by_id == org.m2.id


def test_comments_need_read_and_activities_need_update(db: Session, org: Org) -> None:
    open_deal = make_deal(db, org.m1, opened=True)
    closed_deal = make_deal(db, org.m1, opened=False)
    db.commit()
    observer = actor_for(db, org.observer)
    assert add_comment(db, observer, entity_type="deal", entity_id=open_deal.id,
                       text="Seen").text == "Seen"
    with pytest.raises(NotFound):
        add_comment(db, observer, entity_type="deal", entity_id=closed_deal.id, text="x")
    with pytest.raises(PermissionDenied):
        add_activity(db, observer, entity_type="deal", entity_id=open_deal.id, type="call",
                     subject="Call")
    with pytest.raises(NotFound):
        add_activity(db, actor_for(db, org.m2), entity_type="deal", entity_id=closed_deal.id,
                     type="call", subject="Call")


def test_complete_activity_rights(db: Session, org: Org) -> None:
    deal = make_deal(db, org.m1, opened=True)
    head = actor_for(db, org.head)
    # The head plans a call on m1's deal for m2 (who may not update m1's deal).
    for_m2 = add_activity(db, head, entity_type="deal", entity_id=deal.id, type="call",
                          subject="Call for m2", responsible_id=org.m2.id)
    for_m1 = add_activity(db, head, entity_type="deal", entity_id=deal.id, type="call",
                          subject="Call for m1", responsible_id=org.m1.id)
    db.commit()
    # m2 reads nothing of m1's (manager level is "own"): not even their own activity there.
    with pytest.raises(NotFound):
        complete_activity(db, actor_for(db, org.m2), for_m2.id)
    # The observer reads the open deal but may not update it, and the call is not theirs.
    with pytest.raises(PermissionDenied):
        complete_activity(db, actor_for(db, org.observer), for_m1.id)
    with pytest.raises(NotFound):
        complete_activity(db, actor_for(db, org.outsider), for_m1.id)
    assert complete_activity(db, actor_for(db, org.m1), for_m1.id).done is True
    # m1 may update the deal, so may also complete the call planned for m2.
    assert complete_activity(db, actor_for(db, org.m1), for_m2.id).done is True
    for bad in ("abc", None, True, 10**30, -1):
        with pytest.raises(NotFound):
            complete_activity(db, head, bad)  # type: ignore[arg-type]
