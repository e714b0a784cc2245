// bpmnlint plugin: `plugin:marshrut/recommended` in .bpmnlintrc. The rules warn in the editor
// about what the server would refuse on deploy (engine/validation.py stays the authority).
module.exports = {
  configs: {
    recommended: {
      rules: {
        'user-task-assignment': 'error',
        'service-task-operation': 'error',
        'business-rule-decision': 'error',
        'supported-elements': 'error',
        'gateway-conditions': 'error',
        'message-start-named': 'error'
      }
    }
  }
};
