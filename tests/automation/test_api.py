"""The process REST API: rights, deploy errors, activation, tasks, manual starts, admin actions."""
from __future__ import annotations

import io
import threading

from crm_models.entities import Deal
from crm_models.services import create_deal
from tests.factories import SYSTEM, make_deal

from .support import api_as, instances_of, service_process, tasks_of, user_task_process

XML = {"Content-Type": "application/xml"}


def test_a_manager_cannot_deploy_or_activate(app, db, org, engine):
    manager = api_as(app, db, "m1@test.local")
    r = manager.post("/api/v1/process-definitions", data=service_process("p1"), headers=XML)
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden"
    d = engine.deploy(db, service_process("p1"))
    db.commit()
    assert manager.post(f"/api/v1/process-definitions/{d.id}/deactivate").status_code == 403
    # but may read definitions
    listed = manager.get("/api/v1/process-definitions").get_json()["items"]
    assert [x["key"] for x in listed] == ["p1"]
    got = manager.get(f"/api/v1/process-definitions/{d.id}").get_json()
    assert got["bpmn_xml"].startswith("<?xml") and got["triggers"] == ["deal.created"]


def test_admin_deploys_xml_and_multipart_then_deactivates(app, db, org):
    admin = api_as(app, db, "admin@test.local")
    r = admin.post("/api/v1/process-definitions", data=service_process("p2"), headers=XML)
    assert r.status_code == 201, r.get_json()
    first = r.get_json()
    assert first["version"] == 1 and first["active"] is True and first["deployed_by"] == org.admin.id
    upload = {"file": (io.BytesIO(service_process("p2").encode()), "p2.bpmn")}
    r = admin.post("/api/v1/process-definitions?activate=0", data=upload,
                   content_type="multipart/form-data")
    assert r.status_code == 201 and r.get_json()["version"] == 2
    assert r.get_json()["active"] is False
    second = r.get_json()["id"]
    assert admin.post(f"/api/v1/process-definitions/{second}/activate").get_json()["active"]
    listed = admin.get("/api/v1/process-definitions?key=p2").get_json()["items"]
    assert [(x["version"], x["active"]) for x in listed] == [(1, False), (2, True)]
    r = admin.post(f"/api/v1/process-definitions/{second}/deactivate")
    assert r.status_code == 200 and r.get_json()["active"] is False
    assert admin.get("/api/v1/process-definitions?active=1").get_json()["items"] == []


def test_an_invalid_definition_is_a_422_naming_each_element(app, db, org):
    admin = api_as(app, db, "admin@test.local")
    bad = service_process("p3", operation="crm.nope", condition="deal.amount >")
    r = admin.post("/api/v1/process-definitions", data=bad, headers=XML)
    assert r.status_code == 422
    err = r.get_json()["error"]
    assert err["code"] == "definition_invalid"
    elements = {e["element_id"] for e in err["errors"]}
    assert {"Task_Service", "Flow_If"} <= elements
    assert "crm.nope" in err["fields"]["Task_Service"]
    bad_user = user_task_process("p4", assignment="user", assignee="ghost@test.local")
    err = admin.post("/api/v1/process-definitions", data=bad_user, headers=XML).get_json()
    assert "ghost@test.local" in err["error"]["fields"]["Task_User"]
    for data, ctype, status in ((b"<not-xml", "application/xml", 422),
                                (b"{}", "application/json", 415)):
        r = admin.post("/api/v1/process-definitions", data=data, headers={"Content-Type": ctype})
        assert r.status_code == status, r.get_json()
    r = admin.post("/api/v1/process-definitions", data={}, content_type="multipart/form-data")
    assert r.status_code == 422 and "file" in r.get_json()["error"]["fields"]


def test_service_operations_are_listed_with_schemas(app, db, org):
    ops = api_as(app, db, "m1@test.local").get("/api/v1/service-operations").get_json()["items"]
    by_name = {o["name"]: o for o in ops}
    assert "crm.assign_responsible" in by_name and "webhook.call" in by_name and len(ops) == 11
    assert "mail.send" in by_name  # the e-mail operation (issue 15)
    assert "crm.create_invoice" in by_name and "crm.set_invoice_stage" in by_name
    schema = by_name["crm.create_activity"]["schema"]
    assert schema["required"] == ["subject"] and schema["properties"]["due"]["format"] == \
        "duration"


def test_tasks_claim_complete_and_a_second_completion_conflicts(app, db, org, engine):
    engine.deploy(db, user_task_process("review", assignment="role", assignee="manager",
                                        message="deal.created"))
    db.commit()
    deal = make_deal(db, org.m1)
    db.commit()
    m1, m2 = api_as(app, db, "m1@test.local"), api_as(app, db, "m2@test.local")
    assert m1.get("/api/v1/tasks").get_json()["items"] == []  # offered, not assigned
    [task] = m1.get("/api/v1/tasks?candidate=1").get_json()["items"]
    assert org.m2.id in task["candidate_ids"] and task["entity_id"] == deal.id
    assert m1.post(f"/api/v1/tasks/{task['id']}/claim").get_json()["claimed_by"] == org.m1.id
    r = m2.post(f"/api/v1/tasks/{task['id']}/claim")
    assert r.status_code == 409 and "claimed" in r.get_json()["error"]["message"]
    assert m1.get("/api/v1/tasks").get_json()["items"][0]["id"] == task["id"]
    r = m1.post(f"/api/v1/tasks/{task['id']}/complete", json={"outcome": ""})
    assert r.status_code == 422 and r.get_json()["error"]["fields"] == {"outcome": "required"}
    r = m1.post(f"/api/v1/tasks/{task['id']}/complete", json={"outcome": "ok"})
    assert r.status_code == 200 and r.get_json()["status"] == "completed"
    r = m1.post(f"/api/v1/tasks/{task['id']}/complete", json={"outcome": "again"})
    assert r.status_code == 409 and "already completed" in r.get_json()["error"]["message"]
    [inst] = instances_of(db, "review")
    assert inst.status == "completed"


def test_concurrent_completions_one_wins_the_other_gets_409(app, db, org, engine):
    engine.deploy(db, user_task_process("solo", assignment="user", assignee="m1@test.local",
                                        message="deal.created"))
    db.commit()
    make_deal(db, org.m1)
    db.commit()
    [task] = tasks_of(db)
    clients = [api_as(app, db, "m1@test.local") for _ in range(2)]
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def complete(api) -> None:
        barrier.wait()
        r = api.post(f"/api/v1/tasks/{task.id}/complete", json={"outcome": "done"})
        codes.append(r.status_code)
        if r.status_code == 409:
            assert "already completed" in r.get_json()["error"]["message"] or \
                "at the same time" in r.get_json()["error"]["message"]

    threads = [threading.Thread(target=complete, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(codes) == [200, 409]
    assert [t.status for t in tasks_of(db)] == ["completed"]


def test_delegate_and_task_visibility(app, db, org, engine):
    engine.deploy(db, user_task_process("deleg", assignment="user", assignee="m1@test.local",
                                        message="deal.created"))
    db.commit()
    make_deal(db, org.m1)
    db.commit()
    [task] = tasks_of(db)
    m1, m2 = api_as(app, db, "m1@test.local"), api_as(app, db, "m2@test.local")
    assert m2.get(f"/api/v1/tasks/{task.id}").status_code == 404
    r = m1.post(f"/api/v1/tasks/{task.id}/delegate", json={"user_id": 999999})
    assert r.status_code == 422 and "user_id" in r.get_json()["error"]["fields"]
    r = m1.post(f"/api/v1/tasks/{task.id}/delegate", json={"user_id": org.m2.id})
    assert r.status_code == 200 and r.get_json()["assignee_id"] == org.m2.id
    assert [t["id"] for t in m2.get("/api/v1/tasks").get_json()["items"]] == [task.id]
    # no longer involved: the task is hidden from them
    assert m1.post(f"/api/v1/tasks/{task.id}/complete", json={"outcome": "x"}).status_code \
        == 404


def test_manual_start_needs_the_right_to_change_the_record(app, db, org, engine):
    engine.deploy(db, service_process("by_hand", message=None, operation="crm.assign_responsible",
                                      params={"user": "m2@test.local"}))
    db.commit()
    mine = make_deal(db, org.m1)
    theirs = make_deal(db, org.outsider)
    db.commit()
    m1 = api_as(app, db, "m1@test.local")
    r = m1.post("/api/v1/process-definitions/by_hand/start",
                json={"entity_type": "deal", "entity_id": mine.id})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["status"] == "completed" and r.get_json()["started_by"] == org.m1.id
    db.rollback()
    assert db.get(Deal, mine.id).responsible_id == org.m2.id
    r = m1.post("/api/v1/process-definitions/by_hand/start",
                json={"entity_type": "deal", "entity_id": theirs.id})
    assert r.status_code == 404
    for body, field in (({"entity_type": "invoice", "entity_id": 1}, "entity_type"),
                        ({"entity_type": "deal", "entity_id": "x"}, "entity_id"),
                        ({}, "entity_type"), ({"colour": 1}, "colour")):
        r = m1.post("/api/v1/process-definitions/by_hand/start", json=body)
        assert r.status_code == 422 and field in r.get_json()["error"]["fields"], body
    assert m1.post("/api/v1/process-definitions/nope/start",
                   json={"entity_type": "deal", "entity_id": mine.id}).status_code == 404
    # a process that starts only on events cannot be started by hand
    db.rollback()
    engine.deploy(db, service_process("evented"))
    db.commit()
    another = make_deal(db, org.m1)
    db.commit()
    r = m1.post("/api/v1/process-definitions/evented/start",
                json={"entity_type": "deal", "entity_id": another.id})
    assert r.status_code == 400 and "no manual start" in r.get_json()["error"]["message"]


def test_retry_and_cancel_are_for_admins(app, db, org, engine):
    engine.deploy(db, service_process("flaky", operation="crm.assign_responsible",
                                      params={"user": "late@test.local"}))
    db.commit()
    deal = create_deal(db, SYSTEM, title="x", responsible_id=org.m1.id)
    db.commit()
    [inst] = instances_of(db, "flaky")
    assert inst.status == "incident" and "late@test.local" in inst.incident_message
    m1, admin = api_as(app, db, "m1@test.local"), api_as(app, db, "admin@test.local")
    assert m1.post(f"/api/v1/process-instances/{inst.id}/retry").status_code == 403
    assert m1.get(f"/api/v1/process-instances/{inst.id}").get_json()["incident"][
        "element_id"] == "Task_Service"  # m1 reads the deal, so sees its process
    from tests.factories import make_user
    make_user(db, email="late@test.local")
    db.commit()
    r = admin.post(f"/api/v1/process-instances/{inst.id}/retry")
    assert r.status_code == 200 and r.get_json()["status"] == "completed"
    db.rollback()
    assert db.get(Deal, deal.id).responsible.email == "late@test.local"
    r = admin.post(f"/api/v1/process-instances/{inst.id}/cancel", json={"reason": "done"})
    assert r.status_code == 409
    assert admin.post("/api/v1/process-instances/424242/retry").status_code == 404


def test_cancel_withdraws_open_tasks(app, db, org, engine):
    engine.deploy(db, user_task_process("cancel_me", assignment="user",
                                        assignee="m1@test.local", message="deal.created"))
    db.commit()
    make_deal(db, org.m1)
    db.commit()
    [inst] = instances_of(db, "cancel_me")
    admin = api_as(app, db, "admin@test.local")
    r = admin.post(f"/api/v1/process-instances/{inst.id}/cancel", json={"reason": "test"})
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled"
    assert [t.status for t in tasks_of(db)] == ["cancelled"]
    assert api_as(app, db, "m1@test.local").get("/api/v1/tasks").get_json()["items"] == []


def test_instance_list_filters_are_validated(app, db, org):
    admin = api_as(app, db, "admin@test.local")
    for query, field in (("status=lost", "status"), ("entity_type=fish", "entity_type"),
                         ("entity_id=abc", "entity_id"), ("page=0", "page")):
        r = admin.get(f"/api/v1/process-instances?{query}")
        assert r.status_code == 422 and field in r.get_json()["error"]["fields"], query
    assert admin.get("/api/v1/tasks?candidate=yes").status_code == 422
    assert admin.get("/api/v1/process-definitions?active=maybe").status_code == 422


def test_the_api_needs_a_signed_in_user(client, app):
    assert client.get("/api/v1/tasks").status_code == 401
    assert client.get("/api/v1/process-definitions").status_code == 401


def test_a_designer_may_start_a_process_without_a_record(app, db, org, engine):
    engine.deploy(db, user_task_process("standalone", assignment="user",
                                        assignee="m2@test.local"))
    db.commit()
    r = api_as(app, db, "admin@test.local").post("/api/v1/process-definitions/standalone/start")
    assert r.status_code == 201 and r.get_json()["entity_type"] is None
    [task] = tasks_of(db)
    assert task.assignee_id == org.m2.id and task.entity_id is None
