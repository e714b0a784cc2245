// Shared by the rules: reading our attributes whether or not the moddle knows the namespace
// (bpmnlint's CLI reads files without our descriptor: then they sit in $attrs).
const NS = 'http://marshrut.dev/schema/bpmn/1.0';

function attr(node, name) {
  const typed = node.get ? safeGet(node, 'marshrut:' + name) : undefined;
  if (typed !== undefined && typed !== null) return typed;
  const attrs = node.$attrs || {};
  for (const key of Object.keys(attrs)) {
    if (key === 'marshrut:' + name || key === '{' + NS + '}' + name) return attrs[key];
  }
  return undefined;
}

function safeGet(node, name) {
  try { return node.get(name); } catch (e) { return undefined; }
}

module.exports = { attr };
