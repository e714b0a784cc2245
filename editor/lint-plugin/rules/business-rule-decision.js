// A business-rule task names its DMN decision (marshrut:decision).
const { is } = require('bpmnlint-utils');
const { attr } = require('./helper');

module.exports = function() {
  function check(node, reporter) {
    if (is(node, 'bpmn:BusinessRuleTask') && !(attr(node, 'decision') || '').trim()) {
      reporter.report(node.id, 'Business rule task names no decision table');
    }
  }
  return { check };
};
