"""The shipped large-deal rule routes a deal whose product rows push its amount over the
threshold (``deal.updated`` with the changed amount), and only when the amount crosses it."""
from __future__ import annotations

from crm_models.entities import Deal
from crm_models.services import catalog as cat
from tests.factories import SYSTEM

from .support import api_as, instances_of, tasks_of


def test_rows_pushing_a_deal_over_the_threshold_route_it(app, db, demo):
    machine = cat.create_product(db, SYSTEM, name="Станок ЧПУ", price="450000.00",
                                 vat_rate="20")
    db.commit()
    manager = api_as(app, db, "manager1@demo.local")
    r = manager.post("/api/v1/deals", json={"title": "Цех", "amount": "100000"})
    deal_id = r.get_json()["id"]
    db.rollback()
    assert db.get(Deal, deal_id).responsible_id == demo.m1.id  # small: left alone
    # two machines: 900 000 — still below the threshold
    r = manager.call("PUT", f"/api/v1/deals/{deal_id}/product-rows",
                    json={"rows": [{"product_id": machine.id, "quantity": 2}]})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["amount"] == "900000.00"
    db.rollback()
    assert db.get(Deal, deal_id).responsible_id == demo.m1.id
    assert tasks_of(db, entity_id=deal_id) == []
    # three: 1 350 000 — over it; the corporate-accounts manager gets the deal and the task
    r = manager.call("PUT", f"/api/v1/deals/{deal_id}/product-rows",
                    json={"rows": [{"product_id": machine.id, "quantity": 3}]})
    assert r.status_code == 200, r.get_json()
    db.rollback()
    db.expire_all()
    assert db.get(Deal, deal_id).responsible_id == demo.corporate.id
    [task] = tasks_of(db, entity_id=deal_id)
    assert task.name == "Связаться с клиентом" and task.assignee_id == demo.corporate.id
    assert "1350000.00 RUB" in task.instructions
    # a further raise (already above) does not route it again
    corporate = api_as(app, db, "corporate@demo.local")
    r = corporate.call("PUT", f"/api/v1/deals/{deal_id}/product-rows",
                      json={"rows": [{"product_id": machine.id, "quantity": 4}]})
    assert r.status_code == 200, r.get_json()
    db.rollback()
    assert len(tasks_of(db, entity_id=deal_id)) == 1
    routed = [i for i in instances_of(db, "large_deal_routing", entity_id=deal_id)
              if i.status != "completed"]
    assert len(routed) == 1
