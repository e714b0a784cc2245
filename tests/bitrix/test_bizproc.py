"""``bizproc.*`` over the BPMN engine, the ``webhook.call`` service operation, and the shipped
routing processes reacting to deals created through ``crm.deal.add``."""
from __future__ import annotations

import pytest
from b24pysdk.errors import BitrixAPIError
from sqlalchemy import select

from automation.seed import deploy_shipped
from crm_models.demo import load_demo
from crm_models.entities import Deal
from crm_models.org import User
from engine.errors import DefinitionInvalid
from engine.store import ProcessInstance, ProcessTask
from tests.factories import make_deal

from .bpmn import review_process, webhook_process
from .conftest import make_hook
from .test_clients import sdk_client


def deploy(app, db, xml):
    definition = app.extensions["engine"].deploy(db, xml)
    db.commit()
    return definition


def test_template_list_start_and_complete_a_task(app, org, db, m1_hook, rest):
    review = deploy(app, db, review_process("review"))
    deal = make_deal(db, org.m1, title="To review")
    db.commit()

    _s, body = rest(m1_hook, "bizproc.workflow.template.list", {
        "SELECT": ["ID", "NAME", "SYSTEM_CODE", "DOCUMENT_TYPE"]})
    [tpl] = body["result"]
    assert tpl == {"ID": str(review.id), "NAME": "Review",
                   "SYSTEM_CODE": "review", "DOCUMENT_TYPE": ["crm", "CCrmDocumentDeal", "DEAL"]}
    assert rest(m1_hook, "bizproc.workflow.template.list")[1]["result"] == [
        {"ID": str(review.id)}]  # SELECT defaults to ID

    status, body = rest(m1_hook, "bizproc.workflow.start", {
        "TEMPLATE_ID": review.id, "DOCUMENT_ID": ["crm", "CCrmDocumentDeal", f"DEAL_{deal.id}"],
        "PARAMETERS": {"Reason": "check"}})
    assert status == 200, body
    workflow_id = body["result"]
    assert isinstance(workflow_id, str)
    db.rollback()  # a fresh snapshot: the API wrote through its own connection
    inst = db.get(ProcessInstance, int(workflow_id))
    assert (inst.entity_type, inst.entity_id, inst.started_by) == ("deal", deal.id, org.m1.id)

    _s, body = rest(m1_hook, "bizproc.task.list", {"SELECT": ["*"]})
    [task] = body["result"]
    assert (task["WORKFLOW_ID"], task["STATUS"], task["NAME"]) == (workflow_id, "0", "Check")
    assert task["DOCUMENT_ID"] == ["crm", "CCrmDocumentDeal", f"DEAL_{deal.id}"]
    assert task["PARAMETERS"]["Fields"][0]["name"] == "outcome"

    status, body = rest(m1_hook, "bizproc.task.complete", {"TASK_ID": task["ID"],
                                                           "FIELDS": {}})
    assert (status, body["error"]) == (400, "ERROR_TASK_VALIDATION")
    assert "outcome" in body["error_description"]
    status, body = rest(m1_hook, "bizproc.task.complete", {
        "TASK_ID": task["ID"], "STATUS": 3, "FIELDS": {"outcome": "fine"}})
    assert (status, body["result"]) == (200, True)
    db.rollback()
    db.expire_all()
    assert db.get(ProcessInstance, int(workflow_id)).status == "completed"
    assert db.get(ProcessTask, int(task["ID"])).result == {"outcome": "fine"}
    status, body = rest(m1_hook, "bizproc.task.complete", {"TASK_ID": task["ID"],
                                                           "FIELDS": {"outcome": "again"}})
    assert (status, body["error"]) == (400, "ERROR_TASK_COMPLETED")
    assert rest(m1_hook, "bizproc.task.list")[1]["result"] == []


def test_bizproc_rights_and_bad_input(app, org, db, m1_hook, rest):
    review = deploy(app, db, review_process("review"))
    theirs = make_deal(db, org.m2)
    mine = make_deal(db, org.m1)
    db.commit()
    doc = ["crm", "CCrmDocumentDeal", f"DEAL_{theirs.id}"]
    cases = [
        ({"TEMPLATE_ID": review.id, "DOCUMENT_ID": doc}, 400, "NOT_FOUND"),  # not theirs to run
        ({"TEMPLATE_ID": 999, "DOCUMENT_ID": doc}, 400, "ERROR_WRONG_WORKFLOW_ID"),
        ({"TEMPLATE_ID": "x", "DOCUMENT_ID": doc}, 400, "ERROR_WRONG_WORKFLOW_ID"),
        ({"TEMPLATE_ID": review.id, "DOCUMENT_ID": ["crm", "CCrmDocumentDeal", "LEAD_1"]},
         400, "ERROR_WRONG_DOCUMENT_ID"),
        ({"TEMPLATE_ID": review.id, "DOCUMENT_ID": "DEAL_1"}, 400, "ERROR_WRONG_DOCUMENT_ID"),
        ({"TEMPLATE_ID": review.id, "DOCUMENT_ID": ["lists", "X", "DEAL_1"]}, 400,
         "ERROR_WRONG_DOCUMENT_ID"),
        ({"TEMPLATE_ID": review.id, "PARAMETERS": "x",
          "DOCUMENT_ID": ["crm", "CCrmDocumentDeal", f"DEAL_{mine.id}"]}, 400,
         "ERROR_WRONG_PARAMETERS"),
    ]
    for params, status, code in cases:
        got, body = rest(m1_hook, "bizproc.workflow.start", params)
        assert (got, body["error"]) == (status, code), (params, body)
    db.rollback()
    assert db.scalars(select(ProcessInstance)).all() == []
    for params, code in (({"TASK_ID": 12345, "FIELDS": {}}, "ERROR_TASK_NOT_FOUND"),
                         ({"TASK_ID": "x"}, "ERROR_TASK_NOT_FOUND"),
                         ({"TASK_ID": 1, "STATUS": "maybe"}, "ERROR_TASK_VALIDATION"),
                         ({"TASK_ID": 1, "STATUS": 4}, "ERROR_TASK_VALIDATION")):
        got, body = rest(m1_hook, "bizproc.task.complete", params)
        assert (got, body["error"]) == (400, code), (params, body)
    status, body = rest(m1_hook, "bizproc.task.list", {"FILTER": {"USER_ID": org.m2.id}})
    assert (status, body["error"]) == (403, "ACCESS_DENIED")
    db.rollback()
    crm_only = make_hook(db, org.m1, scopes=["crm"])
    status, body = rest(crm_only, "bizproc.workflow.template.list")
    assert (status, body["error"]) == (403, "insufficient_scope")


def test_someone_elses_task_cannot_be_completed(app, org, db, m1_hook, rest):
    deploy(app, db, review_process("review", message="deal.created"))
    make_deal(db, org.m2)
    db.commit()
    task = db.scalars(select(ProcessTask)).one()
    assert task.assignee_id == org.m2.id
    status, body = rest(m1_hook, "bizproc.task.complete", {"TASK_ID": task.id,
                                                           "FIELDS": {"outcome": "x"}})
    assert (status, body["error"]) == (400, "ERROR_TASK_NOT_FOUND")


def test_b24pysdk_bizproc(app, org, db, m1_hook, tls_server):
    review = deploy(app, db, review_process("review"))
    deal = make_deal(db, org.m1)
    db.commit()
    client = sdk_client(tls_server, m1_hook)
    templates = client.bizproc.workflow.template.list(select=["ID", "NAME"]).result
    assert [t["ID"] for t in templates] == [str(review.id)]
    wf = client.bizproc.workflow.start(
        template_id=review.id, document_id=["crm", "CCrmDocumentDeal", f"DEAL_{deal.id}"]).result
    [task] = client.bizproc.task.list(select=["ID", "WORKFLOW_ID"]).result
    assert task["WORKFLOW_ID"] == wf
    try:
        client.bizproc.task.complete(task_id=int(task["ID"]), status=1).call()
        raise AssertionError("a required field was missing")
    except BitrixAPIError as exc:
        assert exc.error == "ERROR_TASK_VALIDATION"
    assert client.bizproc.task.complete(task_id=int(task["ID"]), status="ok",
                                        fields={"outcome": "done"}).result is True


def test_call_webhook_service_operation(app, org, db, admin_hook, rest, allowed_receiver):
    receiver = allowed_receiver
    # the parameters are checked when the diagram is deployed
    with pytest.raises(DefinitionInvalid, match="fields"):
        deploy(app, db, webhook_process("notify_erp", {"url": receiver.url,
                                                       "fields": "not json"}))
    db.rollback()
    deploy(app, db, webhook_process("notify_erp", {
        "url": receiver.url, "event": "ONERPDEAL", "token": "secret-token"}))
    deal_id = rest(admin_hook, "crm.deal.add", {"fields": {"TITLE": "To the ERP"}})[1]["result"]
    [post] = receiver.posts  # sent by the process before crm.deal.add answered
    assert post["event"] == "ONERPDEAL"
    assert (post["data[FIELDS][ID]"], post["data[FIELDS][ENTITY_TYPE]"]) == (str(deal_id),
                                                                              "deal")
    assert post["auth[application_token]"] == "secret-token" and post["ts"].isdigit()


def test_call_webhook_failure_becomes_an_incident(app, org, db, admin_hook, rest,
                                                  allowed_receiver):
    receiver = allowed_receiver
    receiver.statuses = [404]
    deploy(app, db, webhook_process("notify_erp", {"url": receiver.url}))
    deal_id = rest(admin_hook, "crm.deal.add", {"fields": {"TITLE": "x"}})[1]["result"]
    db.rollback()
    inst = db.scalars(select(ProcessInstance).where(ProcessInstance.entity_id == deal_id)).one()
    assert inst.status == "incident" and "404" in inst.incident_message
    assert len(receiver.posts) == 1  # a 4xx is not retried


def test_large_deal_created_through_the_bitrix_api_is_routed(app, db):
    """The shipped "large deal routing" process reacts to crm.deal.add like to any new deal."""
    load_demo(db)
    db.commit()
    deploy_shipped(db, app.extensions["engine"])
    db.commit()
    users = {u.email: u for u in db.scalars(select(User))}
    manager, corporate = users["manager1@demo.local"], users["corporate@demo.local"]
    hook = make_hook(db, manager)
    from .conftest import Rest

    rest = Rest(app.test_client())
    status, body = rest(hook, "crm.deal.add", {"fields": {
        "TITLE": "Станки", "OPPORTUNITY": "2500000.00", "CURRENCY_ID": "RUB"}})
    assert status == 200, body
    deal_id = body["result"]
    db.rollback()
    db.expire_all()
    assert db.get(Deal, deal_id).responsible_id == corporate.id  # routed before the answer
    [task] = db.scalars(select(ProcessTask).where(ProcessTask.entity_id == deal_id)).all()
    assert (task.name, task.assignee_id) == ("Связаться с клиентом", corporate.id)
    # the manager, with "own" rights, no longer sees the deal; the corporate manager does
    assert rest(hook, "crm.deal.get", {"id": deal_id})[0] == 400
    db.rollback()
    corporate_hook = make_hook(db, corporate)
    got = rest(corporate_hook, "crm.deal.get", {"id": deal_id})[1]["result"]
    assert got["ASSIGNED_BY_ID"] == str(corporate.id)
    [listed] = rest(corporate_hook, "bizproc.task.list")[1]["result"]
    assert listed["DOCUMENT_ID"] == ["crm", "CCrmDocumentDeal", f"DEAL_{deal_id}"]
    # a small one is left alone
    small = rest(hook, "crm.deal.add", {"fields": {"TITLE": "Мелочь", "OPPORTUNITY": 1000}})
    db.rollback()
    db.expire_all()
    assert db.get(Deal, small[1]["result"]).responsible_id == manager.id
