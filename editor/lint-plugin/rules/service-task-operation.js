// A service task calls one registered operation (marshrut:operation).
const { is } = require('bpmnlint-utils');
const { attr } = require('./helper');

module.exports = function() {
  function check(node, reporter) {
    if (is(node, 'bpmn:ServiceTask') && !(attr(node, 'operation') || '').trim()) {
      reporter.report(node.id, 'Service task has no operation');
    }
  }
  return { check };
};
