// A message start event is a CRM trigger: it needs a bpmn:message named like deal.created.
const { is } = require('bpmnlint-utils');

module.exports = function() {
  function check(node, reporter) {
    if (!is(node, 'bpmn:StartEvent')) return;
    for (const definition of node.eventDefinitions || []) {
      if (!is(definition, 'bpmn:MessageEventDefinition')) continue;
      const message = definition.messageRef;
      if (!message || !/^[a-z_]+\.[a-z_]+$/.test(message.name || '')) {
        reporter.report(node.id, 'Pick the CRM event that starts the process');
      }
    }
  }
  return { check };
};
