"""References are checked against the actor's read scope: a manager cannot link a record to a
company or contact he may not read — through the service, the API, the pages or conversion —
and is told so exactly as for an id that does not exist. Processes (the system actor) may."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_models.entities import Contact, Deal
from crm_models.errors import ValidationFailed
from crm_models.permissions import actor_for, system_actor
from crm_models.services.conversion import convert_lead
from crm_models.services.crm import create_contact, create_deal, update_deal
from tests.factories import make_company, make_contact, make_deal, make_lead
from tests.web.api_support import api_for
from tests.web.pages_support import Browser, field_error, text


@pytest.fixture()
def refs(db, org):
    """m1's own company and contact, and m2's (which m1, with "own" rights, cannot read)."""
    out = {"mine": make_company(db, org.m1, title="Mine"),
           "theirs": make_company(db, org.m2, title="Theirs"),
           "my_contact": make_contact(db, org.m1),
           "their_contact": make_contact(db, org.m2)}
    db.commit()
    return out


def test_the_service_refuses_unreadable_references_like_unknown_ones(db, org, refs):
    m1 = actor_for(db, org.m1)
    theirs, their_contact = refs["theirs"].id, refs["their_contact"].id
    with pytest.raises(ValidationFailed) as unknown:
        create_deal(db, m1, title="x", company_id=999_999)
    with pytest.raises(ValidationFailed) as hidden:
        create_deal(db, m1, title="x", company_id=theirs)
    assert hidden.value.fields == {"company_id": f"no company with id {theirs}"}
    assert unknown.value.fields == {"company_id": "no company with id 999999"}
    with pytest.raises(ValidationFailed) as hidden:
        create_deal(db, m1, title="x", contact_ids=[refs["my_contact"].id, their_contact])
    assert hidden.value.fields == {"contact_ids": f"no contact with id {their_contact}"}
    with pytest.raises(ValidationFailed, match="company_id"):
        create_contact(db, m1, last_name="Ivanov", company_id=theirs)
    db.rollback()
    assert db.scalars(select(Deal)).all() == []

    ok = create_deal(db, m1, title="Linked", company_id=refs["mine"].id,
                     contact_ids=[refs["my_contact"].id])
    db.commit()
    with pytest.raises(ValidationFailed, match="company_id"):
        update_deal(db, m1, ok.id, company_id=theirs)
    db.rollback()
    with pytest.raises(ValidationFailed, match="contact_ids"):
        update_deal(db, m1, ok.id, contact_ids=[refs["my_contact"].id, their_contact])
    db.rollback()
    assert db.get(Deal, ok.id).company_id == refs["mine"].id


def test_links_made_by_others_are_kept_and_do_not_block_an_edit(db, org, refs):
    """A process linked m1's deal to a company m1 cannot read: m1 can still edit the deal
    (a form sends the unchanged link back), and unlink it."""
    deal = make_deal(db, org.m1, company_id=refs["theirs"].id,
                     contact_ids=[refs["their_contact"].id])
    db.commit()
    m1 = actor_for(db, org.m1)
    update_deal(db, m1, deal.id, title="Renamed", company_id=refs["theirs"].id,
                contact_ids=[refs["their_contact"].id, refs["my_contact"].id])
    db.commit()
    assert db.get(Deal, deal.id).title == "Renamed"
    update_deal(db, m1, deal.id, company_id=None, contact_ids=[])
    db.commit()


def test_a_process_may_link_anything(db, org, refs):
    deal = create_deal(db, system_actor("process x v1, instance 1"), title="By a process",
                       responsible_id=org.m1.id, company_id=refs["theirs"].id,
                       contact_ids=[refs["their_contact"].id])
    db.commit()
    assert deal.company_id == refs["theirs"].id


def test_conversion_checks_the_deal_overrides(db, org, refs):
    lead = make_lead(db, org.m1, first_name="Anna")
    db.commit()
    with pytest.raises(ValidationFailed) as exc:
        convert_lead(db, actor_for(db, org.m1), lead.id,
                     deal={"company_id": refs["theirs"].id})
    assert set(exc.value.fields) == {"company_id"}
    db.rollback()
    assert db.scalars(select(Contact).where(Contact.first_name == "Anna")).all() == []
    done = convert_lead(db, actor_for(db, org.m1), lead.id,
                        deal={"company_id": refs["mine"].id})
    assert done.deal.company_id == refs["mine"].id


def test_the_api_answers_a_field_error(app, db, org, refs):
    api = api_for(app, db, org.m1)
    r = api.post("/api/v1/deals", {"title": "x", "company_id": refs["theirs"].id})
    assert r.status_code == 422
    assert r.get_json()["error"]["fields"] == {
        "company_id": f"no company with id {refs['theirs'].id}"}
    r = api.post("/api/v1/deals", {"title": "x", "contact_ids": [refs["their_contact"].id]})
    assert r.status_code == 422 and set(r.get_json()["error"]["fields"]) == {"contact_ids"}
    r = api.post("/api/v1/contacts", {"last_name": "x", "company_id": refs["theirs"].id})
    assert r.status_code == 422 and set(r.get_json()["error"]["fields"]) == {"company_id"}
    r = api.post("/api/v1/deals", {"title": "x", "company_id": refs["mine"].id})
    assert r.status_code == 201


def test_the_deal_form_shows_the_error_next_to_the_company(app, db, org, client, auth, refs):
    b = Browser(client, auth).login(org.m1)
    html = text(b.get("/deals/new"))
    assert "Mine" in html and "Theirs" not in html  # the form offers only his own
    r = b.post("/deals/new", {"title": "Forged", "company_id": str(refs["theirs"].id),
                              "responsible_id": str(org.m1.id)})
    assert r.status_code == 422 and field_error(text(r), "company_id")
    db.rollback()
    assert db.scalars(select(Deal).where(Deal.title == "Forged")).all() == []
