// Our bpmnlint rules (lint-plugin/) on small drawings, through bpmnlint's own linter.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { BpmnModdle } from "bpmn-moddle";

const require = createRequire(import.meta.url);

const { Linter } = require("bpmnlint");
const NodeResolver = require("bpmnlint/lib/resolver/node-resolver");

// Our plugin from this checkout's lint-plugin/ (node_modules may link another checkout's).
const PLUGIN = "bpmnlint-plugin-marshrut";
const pluginDir = fileURLToPath(new URL("../lint-plugin", import.meta.url));
const localRequire = (id) => require(id === PLUGIN || id.startsWith(`${PLUGIN}/`)
  ? pluginDir + id.slice(PLUGIN.length) : id);

const HEAD = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:marshrut="http://marshrut.dev/schema/bpmn/1.0" id="D" targetNamespace="t">`;

async function lint(body) {
  const moddle = new BpmnModdle({ marshrut: JSON.parse(await readFile(new URL("../src/editor/descriptors/marshrut.json", import.meta.url))) });
  const { rootElement } = await moddle.fromXML(`${HEAD}${body}</bpmn:definitions>`);
  const config = JSON.parse(await readFile(new URL("../.bpmnlintrc", import.meta.url)));
  const linter = new Linter({ config, resolver: new NodeResolver({ require: localRequire }) });
  const reports = await linter.lint(rootElement);
  const out = {};
  for (const [rule, items] of Object.entries(reports)) {
    if (!rule.startsWith("marshrut/")) continue;
    for (const item of items) (out[item.id] = out[item.id] || []).push(`${rule}: ${item.message}`);
  }
  return out;
}

test("user tasks need an assignment, service tasks an operation, rule tasks a decision", async () => {
  const issues = await lint(`<bpmn:process id="p" isExecutable="true">
    <bpmn:userTask id="NoOne"/><bpmn:userTask id="RoleNoTarget" marshrut:assignment="role"/>
    <bpmn:userTask id="Fine" marshrut:assignment="responsible"/>
    <bpmn:serviceTask id="NoOp"/><bpmn:businessRuleTask id="NoTable"/>
    <bpmn:serviceTask id="Op" marshrut:operation="crm.notify"/></bpmn:process>`);
  assert.deepEqual(Object.keys(issues).sort(), ["NoOne", "NoOp", "NoTable", "RoleNoTarget"]);
  assert.match(issues.RoleNoTarget[0], /needs an assignee/);
});

test("what the engine cannot run, and conditions outside deciding gateways", async () => {
  const issues = await lint(`<bpmn:message id="M" name="not an event"/>
    <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="S"><bpmn:messageEventDefinition messageRef="M"/></bpmn:startEvent>
    <bpmn:transaction id="Sub"/><bpmn:complexGateway id="Send"/>
    <bpmn:exclusiveGateway id="G" default="F2"/><bpmn:endEvent id="E1"/><bpmn:endEvent id="E2"/><bpmn:endEvent id="E3"/>
    <bpmn:sequenceFlow id="F0" sourceRef="S" targetRef="G"><bpmn:conditionExpression>x</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="F1" sourceRef="G" targetRef="E1"/>
    <bpmn:sequenceFlow id="F2" sourceRef="G" targetRef="E2"/>
    <bpmn:sequenceFlow id="F3" sourceRef="G" targetRef="E3"><bpmn:conditionExpression>y</bpmn:conditionExpression></bpmn:sequenceFlow>
  </bpmn:process>`);
  assert.match(issues.Sub.join(), /cannot run a Transaction/);
  assert.match(issues.Send.join(), /cannot run a ComplexGateway/);
  assert.match(issues.F0.join(), /Only flows leaving/);
  assert.match(issues.F1.join(), /needs a condition or must be the default/);
  assert.equal(issues.F2, undefined);
  assert.equal(issues.F3, undefined);
  assert.match(issues.S.join(), /Pick the CRM event/);
});

test("sub-processes, loops, boundary events and event sub-processes as the engine runs them", async () => {
  const issues = await lint(`<bpmn:process id="p" isExecutable="true">
    <bpmn:subProcess id="Sub"><bpmn:startEvent id="SubStart"/>
      <bpmn:manualTask id="Inner"><bpmn:standardLoopCharacteristics/></bpmn:manualTask></bpmn:subProcess>
    <bpmn:task id="Many"><bpmn:multiInstanceLoopCharacteristics/></bpmn:task>
    <bpmn:task id="Capped"><bpmn:standardLoopCharacteristics loopMaximum="3"/></bpmn:task>
    <bpmn:serviceTask id="Call"/><bpmn:userTask id="Ask"/>
    <bpmn:boundaryEvent id="OnError" attachedToRef="Call"><bpmn:errorEventDefinition/></bpmn:boundaryEvent>
    <bpmn:boundaryEvent id="TimerOnService" attachedToRef="Call"><bpmn:timerEventDefinition/></bpmn:boundaryEvent>
    <bpmn:boundaryEvent id="ErrorOnUser" attachedToRef="Ask"><bpmn:errorEventDefinition/></bpmn:boundaryEvent>
    <bpmn:intermediateThrowEvent id="Undo"><bpmn:compensateEventDefinition/></bpmn:intermediateThrowEvent>
    <bpmn:subProcess id="OnCancel" triggeredByEvent="true">
      <bpmn:startEvent id="CancelStart"><bpmn:messageEventDefinition/></bpmn:startEvent></bpmn:subProcess>
  </bpmn:process>`);
  const mine = (id) => (issues[id] || []).filter((m) => m.startsWith("marshrut/supported-elements"));
  assert.deepEqual(mine("Sub"), []);
  assert.deepEqual(mine("SubStart"), []);
  assert.match(mine("Inner").join(), /needs a maximum number of iterations/);
  assert.match(mine("Many").join(), /needs a collection to go over or a cardinality/);
  assert.deepEqual(mine("Capped"), []);
  assert.deepEqual(mine("OnError"), []);
  assert.match(mine("TimerOnService").join(), /Timer boundary events can be attached to UserTask/);
  assert.match(mine("ErrorOnUser").join(), /Error boundary events can be attached to ServiceTask/);
  assert.match(mine("Undo").join(), /Compensation is not supported/);
  assert.deepEqual(mine("CancelStart"), []);
});

test("signal start events, and event sub-processes inside embedded (not event) sub-processes", async () => {
  const issues = await lint(`<bpmn:signal id="Sig" name="prices.updated"/>
    <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="OnSignal"><bpmn:signalEventDefinition signalRef="Sig"/></bpmn:startEvent>
    <bpmn:subProcess id="Sub"><bpmn:startEvent id="SubStart"/>
      <bpmn:startEvent id="SubSignal"><bpmn:signalEventDefinition signalRef="Sig"/></bpmn:startEvent>
      <bpmn:subProcess id="Inside" triggeredByEvent="true">
        <bpmn:startEvent id="InsideStart"><bpmn:signalEventDefinition signalRef="Sig"/></bpmn:startEvent>
        <bpmn:subProcess id="Twice" triggeredByEvent="true">
          <bpmn:startEvent id="TwiceStart"><bpmn:signalEventDefinition signalRef="Sig"/></bpmn:startEvent>
        </bpmn:subProcess></bpmn:subProcess></bpmn:subProcess>
  </bpmn:process>`);
  const mine = (id) => (issues[id] || []).filter((m) => m.startsWith("marshrut/supported-elements"));
  assert.deepEqual(mine("OnSignal"), []);
  assert.deepEqual(mine("Inside"), []);
  assert.deepEqual(mine("InsideStart"), []);
  assert.match(mine("SubSignal").join(), /cannot run a SignalEventDefinition here/);
  assert.match(mine("Twice").join(), /cannot be drawn inside another event sub-process/);
});

test("timer starts of event sub-processes, in the process and in an embedded sub-process", async () => {
  const issues = await lint(`<bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="S"/>
    <bpmn:subProcess id="Remind" triggeredByEvent="true">
      <bpmn:startEvent id="RemindStart" isInterrupting="false"><bpmn:timerEventDefinition>
        <bpmn:timeDuration>P2D</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:startEvent>
    </bpmn:subProcess>
    <bpmn:subProcess id="Sub"><bpmn:startEvent id="SubStart"/>
      <bpmn:startEvent id="SubTimer"><bpmn:timerEventDefinition>
        <bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:startEvent>
      <bpmn:subProcess id="Timeout" triggeredByEvent="true">
        <bpmn:startEvent id="TimeoutStart"><bpmn:timerEventDefinition>
          <bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:startEvent>
      </bpmn:subProcess></bpmn:subProcess>
  </bpmn:process>`);
  const mine = (id) => (issues[id] || []).filter((m) => m.startsWith("marshrut/supported-elements"));
  assert.deepEqual(mine("RemindStart"), []);
  assert.deepEqual(mine("TimeoutStart"), []);
  // an embedded sub-process still starts with a none start event
  assert.match(mine("SubTimer").join(), /cannot run a TimerEventDefinition here/);
});

test("a timer cycle repeats on a start event or a non-interrupting boundary timer only", async () => {
  const cycle = `<bpmn:timerEventDefinition><bpmn:timeCycle>R3/PT1H</bpmn:timeCycle>
    </bpmn:timerEventDefinition>`;
  const issues = await lint(`<bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="S">${cycle}</bpmn:startEvent>
    <bpmn:userTask id="T" marshrut:assignment="responsible"/>
    <bpmn:boundaryEvent id="Remind" attachedToRef="T" cancelActivity="false">${cycle}</bpmn:boundaryEvent>
    <bpmn:boundaryEvent id="Escalate" attachedToRef="T">${cycle}</bpmn:boundaryEvent>
    <bpmn:boundaryEvent id="Late" attachedToRef="T"><bpmn:timerEventDefinition>
      <bpmn:timeDuration>P1D</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>
    <bpmn:intermediateCatchEvent id="Wait">${cycle}</bpmn:intermediateCatchEvent>
    <bpmn:subProcess id="Ping" triggeredByEvent="true">
      <bpmn:startEvent id="PingStart" isInterrupting="false">${cycle}</bpmn:startEvent>
    </bpmn:subProcess>
    <bpmn:subProcess id="Stop" triggeredByEvent="true">
      <bpmn:startEvent id="StopStart">${cycle}</bpmn:startEvent>
    </bpmn:subProcess>
  </bpmn:process>`);
  const mine = (id) => (issues[id] || []).filter((m) => m.startsWith("marshrut/supported-elements"));
  for (const ok of ["S", "Remind", "Late", "PingStart"]) assert.deepEqual(mine(ok), [], ok);
  assert.match(mine("Escalate").join(), /An interrupting boundary timer fires once/);
  assert.match(mine("Wait").join(), /A cycle is for timer start events and non-interrupting boundary timers/);
  assert.match(mine("StopStart").join(), /An interrupting event sub-process starts once/);
});
