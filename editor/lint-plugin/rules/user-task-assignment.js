// A user task needs marshrut:assignment, and a target unless it goes to the responsible.
const { is } = require('bpmnlint-utils');
const { attr } = require('./helper');

const KINDS = [ 'user', 'role', 'department_head', 'responsible_department_head', 'responsible',
  'round_robin', 'least_loaded' ];
const NO_TARGET = [ 'responsible', 'responsible_department_head' ];

module.exports = function() {
  function check(node, reporter) {
    if (!is(node, 'bpmn:UserTask')) return;
    const kind = (attr(node, 'assignment') || '').trim();
    if (!kind) {
      reporter.report(node.id, 'User task has no assignment');
    } else if (!KINDS.includes(kind)) {
      reporter.report(node.id, 'Unknown assignment "' + kind + '"');
    } else if (!NO_TARGET.includes(kind) && !(attr(node, 'assignee') || '').trim()) {
      reporter.report(node.id, 'Assignment "' + kind + '" needs an assignee');
    }
  }
  return { check };
};
