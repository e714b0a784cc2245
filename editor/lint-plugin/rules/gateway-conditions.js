// Every flow leaving a deciding gateway has a condition, except the gateway's default flow;
// a condition on any other flow is refused by the engine.
const { is, isAny } = require('bpmnlint-utils');

// from the flows themselves: files written by hand often leave out bpmn:outgoing
function outgoing(source) {
  const siblings = (source.$parent && source.$parent.flowElements) || [];
  return siblings.filter((f) => is(f, 'bpmn:SequenceFlow') && f.sourceRef === source);
}

module.exports = function() {
  function check(node, reporter) {
    if (!is(node, 'bpmn:SequenceFlow')) return;
    const source = node.sourceRef;
    if (!source) return;
    const deciding = isAny(source, [ 'bpmn:ExclusiveGateway', 'bpmn:InclusiveGateway' ]);
    const isDefault = source.default === node;
    const condition = node.conditionExpression;
    if (condition && !deciding) {
      reporter.report(node.id, 'Only flows leaving an exclusive or inclusive gateway may have a condition');
    } else if (condition && isDefault) {
      reporter.report(node.id, 'The default flow cannot have a condition');
    } else if (deciding && !condition && !isDefault && outgoing(source).length > 1) {
      reporter.report(node.id, 'Flow needs a condition or must be the default flow');
    }
  }
  return { check };
};
