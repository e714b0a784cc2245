"""The conflict report: active definitions that react to the same event and write one field."""
from __future__ import annotations

from automation.conflicts import conflict_report, writes_of

from .support import service_process


def test_writes_of_reads_the_service_tasks():
    xml = service_process("w", operation="crm.update_fields",
                          params={"fields": '{"probability": 5, "source": "WEB"}'})
    assert sorted(w.field for w in writes_of(xml)) == ["probability", "source"]
    assert [w.field for w in writes_of(service_process("s", operation="crm.change_stage",
                                                       params={"stage": "WON"}))] == ["stage"]
    assert writes_of(service_process("c")) == []  # a comment writes no field
    assert writes_of("<not xml") == []


def test_only_active_definitions_on_the_same_event_and_field_conflict(db, org, engine):
    a = engine.deploy(db, service_process("a", priority=5, operation="crm.assign_responsible",
                                          params={"user": "m1@test.local"}))
    b = engine.deploy(db, service_process("b", priority=50, operation="crm.assign_responsible",
                                          params={"user": "m2@test.local"}))
    engine.deploy(db, service_process("c", message="deal.updated",
                                      operation="crm.assign_responsible",
                                      params={"user": "m2@test.local"}))
    engine.deploy(db, service_process("d", operation="crm.update_fields",
                                      params={"fields": '{"probability": 1}'}))
    [report] = conflict_report(engine.definitions(db))
    assert (report["event"], report["field"]) == ("deal.created", "responsible_id")
    assert [d["key"] for d in report["definitions"]] == ["a", "b"]
    assert report["order"] == "a (5) → b (50)"
    assert report["definitions"][0]["elements"] == ["Task_Service"]
    engine.deactivate(db, "b")
    assert conflict_report(engine.definitions(db)) == []
    assert a.id != b.id


def test_fields_from_an_expression_may_write_anything(db, org, engine):
    engine.deploy(db, service_process("x", operation="crm.change_stage",
                                      params={"stage": "WON"}))
    dyn = service_process("y", operation="crm.update_fields", params={})
    dyn = dyn.replace('<bpmn:extensionElements></bpmn:extensionElements>',
                      '<bpmn:extensionElements><marshrut:parameter name="fields" '
                      'expression="{&quot;stage&quot;: &quot;WON&quot;}"/>'
                      '</bpmn:extensionElements>')
    engine.deploy(db, dyn)
    [report] = conflict_report(engine.definitions(db))
    assert report["field"] == "stage" and [d["key"] for d in report["definitions"]] == ["x",
                                                                                        "y"]
