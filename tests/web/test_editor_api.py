"""The editor's API: validate, drafts, templates, dry run, deploy, diff, heatmap and traces."""
from __future__ import annotations

import re

import pytest
from lxml import etree
from sqlalchemy import func, select

from crm_models.activity import Comment, OutboxEvent
from engine.store import ProcessDefinition, ProcessHistory, ProcessInstance, ProcessTask
from tests.factories import make_deal

from .api_support import api_for
from .editor_support import CORPUS, MIWG_FILES, approval, read_bpmn

ENGINE_TABLES = (ProcessDefinition, ProcessInstance, ProcessTask, ProcessHistory, Comment,
                 OutboxEvent)


def counts(db):
    db.rollback()
    return {m.__name__: db.scalar(select(func.count()).select_from(m)) for m in ENGINE_TABLES}


# --- validate -------------------------------------------------------------------------------

def test_validate_reports_each_faulty_element_and_deploys_nothing(app, db, org):
    admin = api_for(app, db, org.admin)
    before = counts(db)
    r = admin.post("/api/v1/editor/validate", {"bpmn_xml": approval()})
    assert r.status_code == 200 and r.get_json() == {"valid": True, "errors": []}
    r = admin.post("/api/v1/editor/validate", {"bpmn_xml": approval(
        assignment=None, condition="deal.amount >")})
    body = r.get_json()
    assert r.status_code == 200 and body["valid"] is False
    by_element = {e["element_id"]: e["message"] for e in body["errors"]}
    assert "не указано, кому она назначается" in by_element["Task_Approve"]  # Russian by default
    assert "Flow_Big" in by_element
    r = admin.post("/api/v1/editor/validate", {"bpmn_xml": approval(assignee="ghosts")})
    assert "no role 'ghosts'" in r.get_json()["errors"][0]["message"]
    assert counts(db) == before


def test_validate_refuses_bad_bodies_and_non_designers(app, db, org):
    admin, manager = api_for(app, db, org.admin), api_for(app, db, org.m1)
    r = manager.post("/api/v1/editor/validate", {"bpmn_xml": approval()})
    assert r.status_code == 403 and "design_processes" in r.get_json()["error"]["message"]
    r = admin.post("/api/v1/editor/validate", {"bpmn_xml": 5})
    assert r.status_code == 422 and "bpmn_xml" in r.get_json()["error"]["fields"]
    r = admin.post("/api/v1/editor/validate", {"bpmn_xml": "x", "dmn_xml": [1]})
    assert r.status_code == 422 and "dmn_xml" in r.get_json()["error"]["fields"]
    r = admin.post("/api/v1/editor/validate", {"bpmn_xml": "x", "extra": 1})
    assert r.status_code == 422 and "extra" in r.get_json()["error"]["fields"]
    r = admin.post("/api/v1/editor/validate", {"bpmn_xml": "<not-xml"})
    assert r.status_code == 200 and "well-formed" in r.get_json()["errors"][0]["message"]
    r = admin.post("/api/v1/editor/validate", data="<x/>", headers={"Content-Type": "text/xml"})
    assert r.status_code == 415


# --- drafts and templates ---------------------------------------------------------------------

def test_drafts_are_saved_with_revisions_and_refuse_stale_writes(app, db, org):
    admin, manager = api_for(app, db, org.admin), api_for(app, db, org.m1)
    r = admin.put("/api/v1/editor/drafts", {"bpmn_xml": approval(assignment=None)})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["key"] == "big_deals" and r.get_json()["revision"] == 1
    r = admin.put("/api/v1/editor/drafts", {"bpmn_xml": approval(), "revision": 1})
    assert r.get_json()["revision"] == 2
    stale = admin.put("/api/v1/editor/drafts", {"bpmn_xml": approval(), "revision": 1})
    assert stale.status_code == 409 and "revision 2" in stale.get_json()["error"]["message"]
    fresh = admin.put("/api/v1/editor/drafts", {"bpmn_xml": approval()})
    assert fresh.status_code == 409
    got = manager.get("/api/v1/editor/drafts/big_deals").get_json()  # everyone may look
    assert got["bpmn_xml"] == approval() and got["revision"] == 2
    assert manager.put("/api/v1/editor/drafts", {"bpmn_xml": approval()}).status_code == 403
    assert manager.delete("/api/v1/editor/drafts/big_deals").status_code == 403
    bad = admin.put("/api/v1/editor/drafts", {"bpmn_xml": "<bpmn"})
    assert bad.status_code == 422 and "well-formed" in bad.get_json()["error"]["fields"]["bpmn_xml"]
    bad = admin.put("/api/v1/editor/drafts", {"bpmn_xml": approval(key="1bad")})
    assert "process id '1bad'" in bad.get_json()["error"]["fields"]["bpmn_xml"]
    bad = admin.put("/api/v1/editor/drafts", {"bpmn_xml": approval(), "revision": True})
    assert bad.status_code == 422 and "revision" in bad.get_json()["error"]["fields"]
    assert admin.delete("/api/v1/editor/drafts/big_deals").status_code == 200
    assert admin.get("/api/v1/editor/drafts/big_deals").status_code == 404
    assert admin.delete("/api/v1/editor/drafts/big_deals").status_code == 404


def test_new_process_from_each_template_gets_its_own_key(app, db, org):
    admin = api_for(app, db, org.admin)
    names = [t["name"] for t in admin.get("/api/v1/editor/templates").get_json()["items"]]
    assert names == ["blank", "large_deal_routing", "key_client_routing", "lead_followup"]
    for n, template in enumerate(names):
        r = admin.post("/api/v1/editor/drafts/from-template",
                       {"template": template, "key": f"copy_{n}", "name": f"Copy {n}"})
        assert r.status_code == 201, r.get_json()
        xml = r.get_json()["bpmn_xml"]
        assert f'id="copy_{n}"' in xml and f'name="Copy {n}"' in xml
        assert f'bpmnElement="copy_{n}"' in xml and f'id="{template}"' not in xml
    r = admin.post("/api/v1/editor/drafts/from-template",
                   {"template": "blank", "key": "copy_0", "name": "Again"})
    assert r.status_code == 409 and "key" in r.get_json()["error"]["fields"]
    r = admin.post("/api/v1/editor/drafts/from-template",
                   {"template": "blank", "key": "has space", "name": ""})
    assert r.status_code == 422 and set(r.get_json()["error"]["fields"]) == {"key", "name"}
    r = admin.post("/api/v1/editor/drafts/from-template",
                   {"template": "nope", "key": "k", "name": "n"})
    assert r.status_code == 404
    manager = api_for(app, db, org.m1)
    r = manager.post("/api/v1/editor/drafts/from-template",
                     {"template": "blank", "key": "mine", "name": "Mine"})
    assert r.status_code == 403
    # a lead follow-up copy deploys as it is
    xml = admin.get("/api/v1/editor/drafts/copy_3").get_json()["bpmn_xml"]
    r = admin.post("/api/v1/editor/deploy", {"bpmn_xml": xml})
    assert r.status_code == 201, r.get_json()


# --- dry run --------------------------------------------------------------------------------

def test_dry_run_with_typed_values_shows_the_path_and_who_gets_the_task(app, db, org):
    admin = api_for(app, db, org.admin)
    before = counts(db)
    r = admin.post("/api/v1/editor/dry-run", {
        "bpmn_xml": approval(service=True), "entity_type": "deal",
        "values": {"title": "Big", "amount": "600000", "responsible_id": org.m1.id}})
    assert r.status_code == 200, r.get_json()
    out = r.get_json()
    assert out["errors"] == [] and out["status"] == "waiting"
    assert out["path"] == ["Start_Deal", "Gateway_Big", "Task_Comment"]
    assert out["flows"] == ["Flow_Big", "Flow_Commented", "Flow_In"]
    assert out["active"] == ["Task_Approve"]
    [task] = out["tasks"]
    assert task["assignee"] is None
    assert [c["email"] for c in task["candidates"]] == ["head@test.local"]
    assert out["service_calls"] == [{"element_id": "Task_Comment", "operation": "crm.add_comment",
                                     "title": "Add a comment", "params": {"text": "big one"}}]
    assert counts(db) == before  # nothing deployed, started, commented or emitted

    small = admin.post("/api/v1/editor/dry-run", {
        "bpmn_xml": approval(), "entity_type": "deal", "values": {"amount": "100"}}).get_json()
    assert small["status"] == "completed" and small["path"][-1] == "End_Small"
    assert "Flow_Small" in small["flows"] and small["tasks"] == []


def test_dry_run_on_a_real_record_and_with_bad_input(app, db, org):
    admin, manager = api_for(app, db, org.admin), api_for(app, db, org.m1)
    deal = make_deal(db, org.m2, amount="750000")
    db.commit()
    out = admin.post("/api/v1/editor/dry-run", {"bpmn_xml": approval(), "entity_type": "deal",
                                                "entity_id": deal.id}).get_json()
    assert out["active"] == ["Task_Approve"] and out["data"]["deal"]["id"] == deal.id
    assert out["data"]["event"]["type"] == "deal.created"
    invalid = admin.post("/api/v1/editor/dry-run", {
        "bpmn_xml": approval(assignment=None), "entity_type": "deal", "entity_id": deal.id})
    assert invalid.status_code == 200
    assert invalid.get_json()["errors"][0]["element_id"] == "Task_Approve"
    broken = admin.post("/api/v1/editor/dry-run", {
        "bpmn_xml": approval(condition="deal.nope > 1"), "entity_type": "deal",
        "values": {"amount": "1"}}).get_json()
    assert broken["status"] == "incident" and broken["incident"]["element_id"] == "Flow_Big"
    for body, field in (({"entity_type": "ship", "entity_id": 1}, "entity_type"),
                        ({"entity_type": "deal"}, "entity_id"),
                        ({"entity_type": "deal", "entity_id": 1, "values": {}}, "entity_id"),
                        ({"entity_type": "deal", "values": {"amount": "lots"}}, "amount"),
                        ({"entity_type": "deal", "values": []}, "values"),
                        ({"entity_type": "deal", "entity_id": "7"}, "entity_id"),
                        ({"entity_type": "deal", "entity_id": 1, "message": 5}, "message")):
        r = admin.post("/api/v1/editor/dry-run", {"bpmn_xml": approval(), **body})
        assert r.status_code == 422 and field in r.get_json()["error"]["fields"], (body, r.get_json())
    r = admin.post("/api/v1/editor/dry-run", {"bpmn_xml": approval(), "entity_type": "deal",
                                              "entity_id": 999999})
    assert r.status_code == 404
    r = manager.post("/api/v1/editor/dry-run", {"bpmn_xml": approval(), "entity_type": "deal",
                                                "entity_id": deal.id})
    assert r.status_code == 403


# --- deploy, summary, diff, heatmap, trace ------------------------------------------------------

def test_deploy_from_the_editor_discards_the_draft_and_refuses_managers(app, db, org):
    admin, manager = api_for(app, db, org.admin), api_for(app, db, org.m1)
    admin.put("/api/v1/editor/drafts", {"bpmn_xml": approval()})
    r = manager.post("/api/v1/editor/deploy", {"bpmn_xml": approval()})
    assert r.status_code == 403
    r = admin.post("/api/v1/editor/deploy", {"bpmn_xml": approval(assignment=None)})
    assert r.status_code == 422
    assert r.get_json()["error"]["errors"][0]["element_id"] == "Task_Approve"
    assert admin.get("/api/v1/editor/drafts/big_deals").status_code == 200  # kept on failure
    r = admin.post("/api/v1/editor/deploy", {"bpmn_xml": approval(), "activate": "yes"})
    assert r.status_code == 422 and "activate" in r.get_json()["error"]["fields"]
    r = admin.post("/api/v1/editor/deploy", {"bpmn_xml": approval()})
    assert r.status_code == 201 and r.get_json()["version"] == 1 and r.get_json()["active"]
    assert admin.get("/api/v1/editor/drafts/big_deals").status_code == 404


def test_summary_diff_heatmap_and_trace_after_real_deals(app, db, org):
    admin, manager = api_for(app, db, org.admin), api_for(app, db, org.m1)
    v1 = admin.post("/api/v1/editor/deploy", {"bpmn_xml": approval()}).get_json()
    v2 = admin.post("/api/v1/editor/deploy", {"bpmn_xml": approval(
        condition="deal.amount > 100000")}).get_json()
    big = make_deal(db, org.m1, amount="600000")
    make_deal(db, org.m1, amount="5")
    db.commit()  # the dispatcher starts v2 for both deals
    [row] = manager.get("/api/v1/editor/processes").get_json()["items"]
    assert (row["key"], row["versions"], row["active_version"], row["running"],
            row["incidents"]) == ("big_deals", 2, 2, 1, 0)

    diff = manager.get(f"/api/v1/editor/diff?from={v1['id']}&to={v2['id']}").get_json()
    assert diff["added"] == [] and diff["removed"] == []
    [changed] = diff["changed"]
    assert changed["id"] == "Flow_Big"
    assert changed["changes"] == [{"property": "condition", "before": "deal.amount > 500000",
                                   "after": "deal.amount > 100000"}]
    assert manager.get("/api/v1/editor/diff?from=x&to=1").status_code == 422
    assert manager.get(f"/api/v1/editor/diff?from={v1['id']}&to=99999").status_code == 404

    heat = manager.get(f"/api/v1/process-definitions/{v2['id']}/heatmap").get_json()
    assert heat["instances"] == 2
    assert heat["passed"]["Gateway_Big"] == 2 and heat["passed"]["End_Small"] == 1
    assert heat["active"] == {"Task_Approve": 1} and heat["incidents"] == {}
    assert manager.get("/api/v1/process-definitions/99999/heatmap").status_code == 404

    inst = db.scalars(select(ProcessInstance).where(ProcessInstance.entity_id == big.id)).one()
    trace = admin.get(f"/api/v1/process-instances/{inst.id}/trace").get_json()
    assert trace["done"] == ["Gateway_Big", "Start_Deal"]
    assert trace["flows"] == ["Flow_Big", "Flow_In"]
    assert trace["active"] == ["Task_Approve"] and trace["incidents"] == []
    # m1 is the deal's responsible, so sees its instance; the outsider does not
    assert manager.get(f"/api/v1/process-instances/{inst.id}/trace").status_code == 200
    outsider = api_for(app, db, org.outsider)
    assert outsider.get(f"/api/v1/process-instances/{inst.id}/trace").status_code == 404


def test_the_miwg_corpus_is_there():
    assert len(MIWG_FILES) == 21, f"expected the 21 MIWG reference models in {CORPUS}"


@pytest.mark.parametrize("name", MIWG_FILES)
def test_a_miwg_model_the_engine_cannot_run_is_refused_naming_the_element(app, db, org, name):
    xml = read_bpmn(CORPUS / name)
    root = etree.fromstring(re.sub(r"^\s*<\?xml[^>]*\?>", "", xml).encode())
    ids = {el.get("id") for el in root.iter()
           if isinstance(el.tag, str) and el.get("id")}
    admin = api_for(app, db, org.admin)
    r = admin.post("/api/v1/editor/deploy", {"bpmn_xml": xml})
    assert r.status_code == 422, r.get_json()
    errors = r.get_json()["error"]["errors"]
    assert errors
    for e in errors:  # each names a shape of the file, or the kind of element it cannot run
        assert e["element_id"] in ids or (e["element_id"] == "" and "bpmn:" in e["message"]), e
    assert counts(db)["ProcessDefinition"] == 0



def test_two_first_saves_of_one_key_one_is_a_conflict(app, db, org, monkeypatch):
    """The second creator lost the race (the other's row appeared after its check): its insert
    hits the unique key, and it is told so instead of getting a 500."""
    from sqlalchemy import false

    from automation.drafts import ProcessDraft, save_draft
    from crm_models.errors import Conflict
    from tests.factories import actor

    admin = actor(db, org.admin)
    save_draft(db, admin, bpmn_xml=approval())
    db.commit()
    real, seen = db.scalars, []

    def scalars_missing_the_row(stmt, *args, **kw):
        if not seen:  # the check runs before the other creator committed
            seen.append(stmt)
            stmt = select(ProcessDraft).where(false())
        return real(stmt, *args, **kw)

    monkeypatch.setattr(db, "scalars", scalars_missing_the_row)
    with pytest.raises(Conflict, match="created the draft"):
        save_draft(db, admin, bpmn_xml=approval(), revision=None)
    db.rollback()
    monkeypatch.undo()
    assert db.scalars(select(ProcessDraft)).one().revision == 1


# --- migration ------------------------------------------------------------------------------

def test_migrate_running_instances_dry_run_first_then_for_real(app, db, org):
    admin = api_for(app, db, org.admin)
    assert admin.post("/api/v1/editor/deploy", {"bpmn_xml": approval()}).status_code == 201
    make_deal(db, org.m1, amount="600000")
    db.commit()
    v2 = admin.post("/api/v1/editor/deploy", {"bpmn_xml": approval(service=True).replace(
        "Task_Approve", "Task_Approve_v2")}).get_json()
    path = f"/api/v1/process-definitions/{v2['id']}/migrate"

    manager = api_for(app, db, org.m1)
    assert manager.post(path, {}).status_code == 403
    assert admin.post(path, {"dry_run": "no"}).status_code == 422
    assert admin.post(path, {"mapping": {"a": 1}}).status_code == 422

    dry = admin.post(path, {}).get_json()
    [item] = dry["items"]
    assert (dry["dry_run"], dry["movable"], item["problems"]) == (
        True, 0, ["Task_Approve: v2 has no element Task_Approve; map it to one"])
    mapping = {"Task_Approve": "Task_Approve_v2"}
    dry = admin.post(path, {"mapping": mapping}).get_json()
    assert (dry["movable"], dry["migrated"]) == (1, 0)
    done = admin.post(path, {"mapping": mapping, "dry_run": False}).get_json()
    assert (done["movable"], done["migrated"]) == (1, 1)
    db.rollback()
    inst = db.get(ProcessInstance, item["instance_id"])
    assert inst.definition_id == v2["id"]
    [task] = db.scalars(select(ProcessTask).where(ProcessTask.instance_id == inst.id)).all()
    assert task.element_id == "Task_Approve_v2"
    again = admin.post(path, {"mapping": mapping}).get_json()
    assert again["items"] == []  # nothing left on other versions
