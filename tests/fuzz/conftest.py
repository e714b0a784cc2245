"""Fixtures for the fuzz tests: a superuser that no generated request can lock out (a fresh
one, with its own role and token, for every operation), and a database with records,
deployed processes, instances and tasks for generated ids to hit."""
from __future__ import annotations

import itertools
from typing import Any

import pytest
from sqlalchemy.orm import Session

from automation.seed import deploy_shipped
from crm_models.org import ACTIONS, ENTITIES, PermLevel, Role, RoleGrant, RolePermission
from crm_models.services.org import create_token
from tests.factories import (
    Org,
    make_company,
    make_contact,
    make_deal,
    make_lead,
    make_user,
)

_seq = itertools.count(1)


def superuser_token(db: Session) -> str:
    """A new active user with a new role holding every right, and a Bearer token for it.
    Generated requests may deactivate users, edit roles and revoke grants or tokens; the
    next operation starts from one they have not touched."""
    # End the session's read transaction first: on SQLite, writing from a snapshot older than
    # the requests' commits fails as "database is locked". Nothing is pending here.
    db.rollback()
    n = next(_seq)
    role = Role(name=f"Fuzz root {n}", manage_settings=True, design_processes=True,
                permissions=[RolePermission(entity=e, action=a, level=int(PermLevel.ALL))
                             for e in ENTITIES for a in ACTIONS])
    db.add(role)
    user = make_user(db, role_code=None, email=f"fuzz{n}@test.local", full_name=f"Fuzz {n}")
    db.flush()
    db.add(RoleGrant(role_id=role.id, user_id=user.id))
    token = create_token(db, user, "fuzz")
    db.commit()
    return token


@pytest.fixture()
def seeded(app: Any, db: Session, org: Org) -> Org:
    """Records of every kind with comments and activities, the shipped processes deployed,
    and a large deal they routed (an instance and an open task)."""
    deploy_shipped(db, app.extensions["engine"])
    db.commit()
    company = make_company(db, org.m1, title="ООО «Вектор»")
    contact = make_contact(db, org.m1, company_id=company.id)
    make_lead(db, org.m1, title="Lead", amount="100.00")
    make_deal(db, org.m2, title="Deal", company_id=company.id, contact_ids=[contact.id])
    db.commit()
    client = app.test_client()
    m1_id = org.m1.id
    headers = {"Authorization": f"Bearer {superuser_token(db)}"}
    r = client.post("/api/v1/deals", json={"title": "Large", "amount": "2000000.00",
                                            "responsible_id": m1_id}, headers=headers)
    assert r.status_code == 201, r.get_json()
    deal_id = r.get_json()["id"]
    for path, body in ((f"/api/v1/deals/{deal_id}/comments", {"text": "Hello @Admin"}),
                       (f"/api/v1/deals/{deal_id}/activities",
                        {"type": "call", "subject": "Call back"})):
        r = client.post(path, json=body, headers=headers)
        assert r.status_code == 201, (path, r.get_json())
    return org
