// What engine/validation.py runs: anything else inside an executable process is refused on
// deploy, so say so while drawing. Keep in step with SUPPORTED, EVENT_DEFINITIONS and
// BOUNDARY_HOSTS there.
const { is, isAny } = require('bpmnlint-utils');

const ACTIVITIES = [ 'bpmn:Task', 'bpmn:UserTask', 'bpmn:ManualTask', 'bpmn:ServiceTask',
  'bpmn:ScriptTask', 'bpmn:BusinessRuleTask', 'bpmn:SendTask', 'bpmn:ReceiveTask',
  'bpmn:SubProcess', 'bpmn:CallActivity' ];
const SUPPORTED = ACTIVITIES.concat([ 'bpmn:StartEvent', 'bpmn:EndEvent',
  'bpmn:ExclusiveGateway', 'bpmn:InclusiveGateway', 'bpmn:ParallelGateway',
  'bpmn:EventBasedGateway', 'bpmn:IntermediateCatchEvent', 'bpmn:IntermediateThrowEvent',
  'bpmn:BoundaryEvent', 'bpmn:SequenceFlow', 'bpmn:DataObject', 'bpmn:DataObjectReference' ]);
const MESSAGE = 'bpmn:MessageEventDefinition', TIMER = 'bpmn:TimerEventDefinition',
  ERROR = 'bpmn:ErrorEventDefinition', ESCALATION = 'bpmn:EscalationEventDefinition',
  SIGNAL = 'bpmn:SignalEventDefinition', CONDITIONAL = 'bpmn:ConditionalEventDefinition';
const EVENT_DEFINITIONS = {
  'bpmn:StartEvent': [ MESSAGE, TIMER, SIGNAL ],
  'bpmn:EndEvent': [ 'bpmn:TerminateEventDefinition', ERROR, ESCALATION, SIGNAL, MESSAGE ],
  'bpmn:IntermediateCatchEvent': [ MESSAGE, TIMER, SIGNAL, CONDITIONAL ],
  'bpmn:IntermediateThrowEvent': [ MESSAGE, SIGNAL, ESCALATION ],
  'bpmn:BoundaryEvent': [ TIMER, ERROR, ESCALATION, MESSAGE, SIGNAL, CONDITIONAL ]
};
const EVENT_SUBPROCESS_STARTS = [ MESSAGE, ERROR, ESCALATION, SIGNAL, TIMER ];
const WAITING = [ 'bpmn:UserTask', 'bpmn:ManualTask', 'bpmn:SubProcess', 'bpmn:ReceiveTask',
  'bpmn:CallActivity' ];
const BOUNDARY_HOSTS = {
  [TIMER]: WAITING, [MESSAGE]: WAITING, [SIGNAL]: WAITING, [CONDITIONAL]: WAITING,
  [ERROR]: [ 'bpmn:ServiceTask', 'bpmn:SubProcess', 'bpmn:CallActivity' ],
  [ESCALATION]: [ 'bpmn:SubProcess', 'bpmn:CallActivity' ]
};
const COMPENSATION = 'Compensation is not supported; model the undo steps as ordinary tasks';
// engine/timers.py read_timer: a timeCycle repeats only where something can happen again
const CYCLE_INTERRUPTING_BOUNDARY = 'An interrupting boundary timer fires once: a cycle is for ' +
  'a non-interrupting one; use a duration or a date here';
const CYCLE_INTERRUPTING_EVENT_SUB = 'An interrupting event sub-process starts once: a cycle ' +
  'is for a non-interrupting one; use a duration or a date here';
const CYCLE_ELSEWHERE = 'A cycle is for timer start events and non-interrupting boundary ' +
  'timers; use a duration or a date here';

function short(type) { return type.replace('bpmn:', ''); }

/** What is wrong with a timeCycle on ``node`` (null where a cycle may repeat). */
function cycleProblem(node, inEventSub) {
  if (is(node, 'bpmn:BoundaryEvent')) {
    return node.cancelActivity === false ? null : CYCLE_INTERRUPTING_BOUNDARY;
  }
  if (is(node, 'bpmn:StartEvent')) {
    return inEventSub && node.isInterrupting !== false ? CYCLE_INTERRUPTING_EVENT_SUB : null;
  }
  return CYCLE_ELSEWHERE;
}

module.exports = function() {
  function check(node, reporter) {
    const parent = node.$parent;
    if (!is(node, 'bpmn:FlowElement') || !parent || !isAny(parent, [ 'bpmn:Process', 'bpmn:SubProcess' ])) {
      return;
    }
    if (!SUPPORTED.includes(node.$type)) {  // exact: a Transaction is a SubProcess too
      reporter.report(node.id, 'The engine cannot run a ' + short(node.$type));
      return;
    }
    if (node.isForCompensation) reporter.report(node.id, COMPENSATION);
    const loop = node.loopCharacteristics;
    if (loop && is(loop, 'bpmn:StandardLoopCharacteristics') && !(loop.loopMaximum > 0)) {
      reporter.report(node.id, 'A loop needs a maximum number of iterations (loopMaximum)');
    }
    if (loop && is(loop, 'bpmn:MultiInstanceLoopCharacteristics') &&
        !loop.loopCardinality === !loop.loopDataInputRef) {
      reporter.report(node.id, 'Multi-instance needs a collection to go over or a cardinality');
    }
    const inEventSub = is(parent, 'bpmn:SubProcess') && parent.triggeredByEvent;
    if (is(node, 'bpmn:SubProcess') && node.triggeredByEvent && inEventSub) {
      reporter.report(node.id, 'An event sub-process cannot be drawn inside another event ' +
        'sub-process; draw it in the process or in an embedded sub-process');
    }
    let allowed = EVENT_DEFINITIONS[node.$type] || [];
    if (is(node, 'bpmn:StartEvent') && is(parent, 'bpmn:SubProcess')) {
      allowed = inEventSub ? EVENT_SUBPROCESS_STARTS : [];
    }
    for (const definition of node.eventDefinitions || []) {
      if (is(definition, 'bpmn:CompensateEventDefinition')) {
        reporter.report(node.id, COMPENSATION);
      } else if (!allowed.includes(definition.$type)) {
        reporter.report(node.id, 'The engine cannot run a ' + short(definition.$type) + ' here');
      } else if (is(node, 'bpmn:BoundaryEvent') && node.attachedToRef &&
                 !(BOUNDARY_HOSTS[definition.$type] || []).includes(node.attachedToRef.$type)) {
        reporter.report(node.id, short(definition.$type).replace('EventDefinition', '') +
          ' boundary events can be attached to ' +
          (BOUNDARY_HOSTS[definition.$type] || []).map(short).join(', ') + ' only');
      }
      if (is(definition, TIMER) && definition.timeCycle) {
        const problem = cycleProblem(node, inEventSub);
        if (problem) reporter.report(node.id, problem);
      }
    }
  }
  return { check };
};
