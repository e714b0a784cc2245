"""No dead ends: a save whose record a rule hands to a colleague lands on a page saying who got
it, and the previous responsible is notified (issue 13, item 9)."""
from __future__ import annotations

import re

from sqlalchemy import select

from automation.models import Notification
from crm_models.entities import Deal
from tests.factories import make_deal


def notifications(db, user_id, kind="reassigned"):
    db.rollback()
    db.expire_all()
    return list(db.scalars(select(Notification).where(Notification.user_id == user_id,
                                                      Notification.kind == kind)))


def test_a_big_deal_routed_away_lands_on_a_page_naming_the_new_responsible(app, db, demo,
                                                                           pages):
    m1 = "manager1@demo.local"
    r = pages.post(m1, "/deals/new", {"title": "Поставка станков для теста", "amount": "2500000",
                                      "currency": "RUB", "responsible_id": str(demo.m1.id)})
    assert r.status_code == 302
    db.rollback()
    deal = db.scalars(select(Deal).where(Deal.title == "Поставка станков для теста")).one()
    assert deal.responsible_id != demo.m1.id  # the large-deal rule passed it on
    assert r.headers["Location"].endswith(f"/deals/{deal.id}/handed")
    page = pages.as_(m1).get(r.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Сохранено." in html and "Передано коллеге" in html
    new_name = demo.corporate.full_name if deal.responsible_id == demo.corporate.id else \
        demo.head.full_name
    assert f"Сделка «Поставка станков для теста» теперь у сотрудника: {new_name}." in html
    assert "Маршрутизация крупных сделок" in html  # the rule, by its name
    assert pages.as_(m1).get(f"/deals/{deal.id}").status_code == 404  # the card: no access
    # The previous responsible (the manager who saved) is notified, and the notification
    # leads back to this page, not to the 404.
    [note] = notifications(db, demo.m1.id)
    assert note.entity_type == "deal" and note.entity_id == deal.id and note.text == new_name
    bell = pages.as_(m1).get("/notifications").get_data(as_text=True)
    assert "Передано коллеге" in bell and f"Теперь ответственный: {new_name}" in bell
    opened = pages.as_(m1).get(f"/notifications/{note.id}")
    assert opened.headers["Location"].endswith(f"/deals/{deal.id}/handed")
    # The new responsible is not told they lost anything.
    assert notifications(db, deal.responsible_id) == []


def test_the_handed_page_is_only_for_people_who_worked_on_the_record(app, db, demo, pages):
    deal = make_deal(db, demo.head, title="Чужая сделка", amount="100")
    db.commit()
    # manager2 never touched it and may not read it: a plain 404, no name given away.
    r = pages.as_("manager2@demo.local").get(f"/deals/{deal.id}/handed")
    assert r.status_code == 404 and "Чужая сделка" not in r.get_data(as_text=True)
    # Someone who may read it is simply sent to the card.
    r = pages.as_("head@demo.local").get(f"/deals/{deal.id}/handed")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/deals/{deal.id}")
    assert pages.as_("head@demo.local").get("/deals/999999/handed").status_code == 404


def test_a_person_reassigning_their_own_record_is_not_notified(app, db, demo, pages):
    r = pages.post("manager1@demo.local", "/deals/new", {
        "title": "Маленькая", "amount": "1000", "currency": "RUB",
        "responsible_id": str(demo.m1.id)})
    deal_id = int(re.search(r"/deals/(\d+)", r.headers["Location"]).group(1))
    r = pages.post("manager1@demo.local", f"/deals/{deal_id}/edit", {
        "title": "Маленькая", "amount": "1000", "currency": "RUB", "pipeline_id": "0",
        "stage": "NEW", "responsible_id": str(demo.m2.id), "opened": "on"})
    assert r.status_code == 302
    assert notifications(db, demo.m1.id) == []
    # The head moving manager2's deal back is news for manager2.
    r = pages.post("head@demo.local", f"/deals/{deal_id}/edit", {
        "title": "Маленькая", "amount": "1000", "currency": "RUB", "pipeline_id": "0",
        "stage": "NEW", "responsible_id": str(demo.m1.id), "opened": "on"})
    assert r.status_code == 302
    [note] = notifications(db, demo.m2.id)
    assert note.text == demo.m1.full_name


def test_a_deactivated_previous_responsible_is_not_notified(app, db, demo):
    """The reassignment's notification checks the previous responsible as the routing's own
    snapshot read them (in the same transaction): a deactivated manager gets nothing."""
    from crm_models.services import update_deal
    from crm_models.services.org import update_user
    from tests.factories import SYSTEM

    deal = make_deal(db, demo.m1, title="Станки от уволенного", amount="1000")
    db.commit()
    update_user(db, SYSTEM, demo.m1.id, active=False)
    db.commit()
    update_deal(db, SYSTEM, deal.id, amount="2500000")
    db.commit()  # … and the after-commit dispatch routes it
    db.rollback()
    db.expire_all()
    assert db.get(Deal, deal.id).responsible_id != demo.m1.id  # routed all the same
    assert notifications(db, demo.m1.id) == []
