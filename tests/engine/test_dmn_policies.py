"""DMN 1.3 hit policies: each one on a fixed table, run through a deployed process."""
from __future__ import annotations

from typing import Any

import pytest

from engine.errors import DefinitionInvalid
from engine.ports import StartRequest
from engine.store import Status

PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:marshrut="http://marshrut.dev/schema/bpmn/1.0" id="D" targetNamespace="t">
  <bpmn:process id="decide" isExecutable="true">
    <bpmn:startEvent id="S"/>
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Rule"/>
    <bpmn:businessRuleTask id="Rule" marshrut:decision="discount"/>
    <bpmn:sequenceFlow id="F2" sourceRef="Rule" targetRef="E"/>
    <bpmn:endEvent id="E"/>
  </bpmn:process>
</bpmn:definitions>"""

# (min amount, discount, tier): rules 1-4 in this order
RULES = [(">= 0", "0", '"bronze"'), (">= 100", "5", '"silver"'), (">= 1000", "10", '"gold"'),
         (">= 100", "5", '"silver"')]


def dmn(policy: str | None, *, aggregation: str | None = None, outputs: str = "both",
        values: str = '"gold", "silver", "bronze"', rules: list[Any] = RULES) -> str:
    attrs = (f' hitPolicy="{policy}"' if policy else "") + (
        f' aggregation="{aggregation}"' if aggregation else "")
    out_discount = '<output id="O1" name="discount" typeRef="number"/>'
    out_tier = ('<output id="O2" name="tier" typeRef="string">'
                f'<outputValues id="V2"><text>{values}</text></outputValues></output>')
    outs = {"both": out_discount + out_tier, "discount": out_discount}[outputs]
    body = ""
    for i, (cond, disc, tier) in enumerate(rules, 1):
        cells = f'<outputEntry id="R{i}d"><text>{disc}</text></outputEntry>'
        if outputs == "both":
            cells += f'<outputEntry id="R{i}t"><text>{tier}</text></outputEntry>'
        body += (f'<rule id="R{i}"><inputEntry id="R{i}i"><text>{cond.replace(">", "&gt;")}'
                 f'</text></inputEntry>{cells}</rule>')
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="DD" name="d" namespace="t">
  <decision id="discount" name="Discount">
    <decisionTable id="T"{attrs}>
      <input id="I1" label="Amount"><inputExpression id="IE1" typeRef="number"><text>amount</text></inputExpression></input>
      {outs}{body}
    </decisionTable>
  </decision>
</definitions>"""


def run(engine: Any, db: Any, dmn_xml: str, amount: int) -> tuple[Any, dict[str, Any]]:
    d = engine.deploy(db, PROCESS, [dmn_xml])
    inst = engine.start(db, d, StartRequest({"amount": amount}))
    data = engine.instance_data(db, inst.id) if inst.status == Status.COMPLETED else {}
    return inst, data


@pytest.mark.parametrize("policy, aggregation, amount, expected", [
    ("FIRST", None, 5000, {"discount": 0, "tier": "bronze"}),
    ("PRIORITY", None, 5000, {"discount": 10, "tier": "gold"}),
    ("PRIORITY", None, 500, {"discount": 5, "tier": "silver"}),
    ("RULE ORDER", None, 500, {"discount": [0, 5, 5], "tier": ["bronze", "silver", "silver"]}),
    ("OUTPUT ORDER", None, 5000, {"discount": [10, 5, 5, 0],
                                  "tier": ["gold", "silver", "silver", "bronze"]}),
    ("COLLECT", None, 500, {"discount": [0, 5, 5], "tier": ["bronze", "silver", "silver"]}),
])
def test_policies_over_several_matching_rules(engine, db, policy, aggregation, amount,
                                              expected):
    inst, data = run(engine, db, dmn(policy, aggregation=aggregation), amount)
    assert inst.status == Status.COMPLETED, inst.incident_message
    assert {k: data[k] for k in expected} == expected


@pytest.mark.parametrize("aggregation, amount, expected", [
    ("SUM", 5000, 20), ("MIN", 5000, 0), ("MAX", 5000, 10), ("COUNT", 5000, 4),
    ("COUNT", -1, 0), ("SUM", -1, None),
])
def test_collect_aggregations(engine, db, aggregation, amount, expected):
    inst, data = run(engine, db, dmn("COLLECT", aggregation=aggregation, outputs="discount"),
                     amount)
    assert inst.status == Status.COMPLETED, inst.incident_message
    assert data["discount"] == expected


def test_unique_is_checked(engine, db):
    unique = [(">= 0", "0", '"bronze"'), (">= 1000", "10", '"gold"')]
    inst, data = run(engine, db, dmn("UNIQUE", rules=[unique[0]]), 5000)
    assert data["discount"] == 0
    inst, _ = run(engine, db, dmn(None, rules=unique), 5000)  # UNIQUE is the default
    assert (inst.status, inst.incident_element_id) == (Status.INCIDENT, "Rule")
    assert "hit policy UNIQUE, but rules 1, 2 all match" in inst.incident_message


def test_any_accepts_equal_outputs_and_refuses_different_ones(engine, db):
    inst, data = run(engine, db, dmn("ANY", rules=[RULES[1], RULES[3]]), 500)
    assert (data["discount"], data["tier"]) == (5, "silver")
    inst, _ = run(engine, db, dmn("ANY"), 500)
    assert inst.status == Status.INCIDENT
    assert "hit policy ANY, but matching rules 1, 2, 4 give different outputs" in \
        inst.incident_message


@pytest.mark.parametrize("kwargs, message", [
    ({"policy": "BEST"}, "decision discount: unknown hit policy 'BEST'"),
    ({"policy": "FIRST", "aggregation": "SUM", "outputs": "discount"},
     "aggregation SUM needs hit policy COLLECT"),
    ({"policy": "COLLECT", "aggregation": "AVG", "outputs": "discount"},
     "unknown aggregation 'AVG'"),
    ({"policy": "COLLECT", "aggregation": "SUM"}, "COLLECT SUM needs exactly one output"),
    ({"policy": "PRIORITY", "outputs": "discount"}, "hit policy PRIORITY needs outputValues"),
    ({"policy": "PRIORITY", "values": "gold, silver"}, "must be a comma-separated list"),
])
def test_bad_policies_are_refused_at_deploy_naming_the_decision(engine, db, kwargs, message):
    policy = kwargs.pop("policy")
    with pytest.raises(DefinitionInvalid) as err:
        engine.deploy(db, PROCESS, [dmn(policy, **kwargs)])
    assert any(e.element_id == "discount" and message in e.message for e in err.value.errors), \
        err.value.errors
