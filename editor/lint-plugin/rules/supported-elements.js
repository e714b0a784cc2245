// What engine/validation.py runs: anything else inside an executable process is refused on
// deploy, so say so while drawing.
const { is, isAny } = require('bpmnlint-utils');

const SUPPORTED = [ 'bpmn:StartEvent', 'bpmn:EndEvent', 'bpmn:UserTask', 'bpmn:ServiceTask',
  'bpmn:ScriptTask', 'bpmn:BusinessRuleTask', 'bpmn:ExclusiveGateway', 'bpmn:InclusiveGateway',
  'bpmn:ParallelGateway', 'bpmn:EventBasedGateway', 'bpmn:IntermediateCatchEvent',
  'bpmn:BoundaryEvent', 'bpmn:SequenceFlow' ];
const EVENT_DEFINITIONS = {
  'bpmn:StartEvent': [ 'bpmn:MessageEventDefinition', 'bpmn:TimerEventDefinition' ],
  'bpmn:EndEvent': [ 'bpmn:TerminateEventDefinition' ],
  'bpmn:IntermediateCatchEvent': [ 'bpmn:MessageEventDefinition', 'bpmn:TimerEventDefinition' ],
  'bpmn:BoundaryEvent': [ 'bpmn:TimerEventDefinition' ]
};

module.exports = function() {
  function check(node, reporter) {
    if (!is(node, 'bpmn:FlowElement') || !node.$parent || !is(node.$parent, 'bpmn:Process')) {
      return;
    }
    if (!isAny(node, SUPPORTED)) {
      reporter.report(node.id, 'The engine cannot run a ' + node.$type.replace('bpmn:', ''));
      return;
    }
    if (is(node, 'bpmn:BoundaryEvent') && !is(node.attachedToRef, 'bpmn:UserTask')) {
      reporter.report(node.id, 'Timers can be attached to user tasks only');
    }
    if (node.loopCharacteristics) {
      reporter.report(node.id, 'Loops are not supported');
    }
    for (const definition of node.eventDefinitions || []) {
      const allowed = EVENT_DEFINITIONS[node.$type] || [];
      if (!allowed.includes(definition.$type)) {
        reporter.report(node.id, 'The engine cannot run a ' +
          definition.$type.replace('bpmn:', '') + ' here');
      }
    }
  }
  return { check };
};
