// The condition builder's model and its two-way mapping to the engine's expression language
// (sandboxed Python, see engine/sandbox.py). The expression in bpmn:conditionExpression stays
// the only thing stored: the builder parses it back, and anything it cannot represent is shown
// as a raw expression (the "advanced" mode) instead of being rewritten.
//
//   group = { type: "group", op: "and" | "or", items: [rule | group] }
//   rule  = { type: "rule", field: "amount", operator: ">", value: "500000" }
//   rule  = { type: "rule", field: "amount", operator: ">", value: "", variable: "threshold" }
//           (compared with a process variable, marshrut:variable)

export const OPERATORS = {
  "==": "=", "!=": "≠", ">": ">", ">=": "≥", "<": "<", "<=": "≤",
  contains: "contains", in: "is one of", empty: "is empty", not_empty: "is not empty",
  true: "is true", false: "is false", rose_above: "rose above",
};
/** Fields every record has in the task data besides its schema (see automation.snapshot). */
export const EXTRA_FIELDS = [
  { name: "responsible_set_by", type: "process", readonly: true,
    labels: { ru: "Ответственного уже назначил процесс", en: "Responsible already set by a process" } },
];
const NUMERIC = new Set(["money", "int", "ref", "user"]);
const COMPARE = ["==", "!=", ">", ">=", "<", "<="];

/** Which operators make sense for a field kind (from /api/v1/fields/<entity>). */
export function operatorsFor(kind) {
  if (kind === "process") return ["empty", "not_empty"];
  if (kind === "bool") return ["true", "false", "empty", "not_empty"];
  if (kind === "money" || kind === "int") return [...COMPARE, "rose_above", "empty", "not_empty"];
  if (NUMERIC.has(kind) || kind === "date") return [...COMPARE, "empty", "not_empty"];
  if (kind === "enum" || kind === "stage" || kind === "currency") {
    return ["==", "!=", "in", "empty", "not_empty"];
  }
  if (kind === "phones" || kind === "emails" || kind === "refs") return ["empty", "not_empty"];
  return ["==", "!=", "contains", "empty", "not_empty"];
}

/**
 * What is wrong with a rule's value for its field (shown under the rule, in English as the
 * key of the translation), or null. The server checks the same on validate and deploy.
 */
export function valueProblem(rule, field) {
  if (!field || rule.variable !== undefined) return null;
  if (["empty", "not_empty", "true", "false", "contains"].includes(rule.operator)) return null;
  const values = rule.operator === "in"
    ? String(rule.value ?? "").split(",").map((v) => v.trim()).filter(Boolean)
    : [String(rule.value ?? "").trim()];
  if (!values.length || values.every((v) => v === "")) return "Give a value";
  if (NUMERIC.has(field.type) && values.some((v) => normalizeNumber(v) === null)) {
    return field.type === "ref" || field.type === "user" ? "Pick the record from the list" : "Give a number";
  }
  return null;
}

export function emptyGroup(op = "and") {
  return { type: "group", op, items: [] };
}

// --- model → expression -------------------------------------------------------------------

/** "500 000", "500,000" and "1,5" as numbers; null when it is not one. */
export function normalizeNumber(text) {
  let s = String(text).replace(/[\s\u00a0_']/g, "");
  if (s.includes(",") && s.includes(".")) s = s.replace(/,/g, "");
  else if (/^-?\d{1,3}(,\d{3})+$/.test(s)) s = s.replace(/,/g, "");
  else s = s.replace(",", ".");
  return /^-?\d+(\.\d+)?$/.test(s) ? s : null;
}

export function pyString(text) {
  return "'" + String(text).replace(/\\/g, "\\\\").replace(/'/g, "\\'").replace(/\n/g, "\\n") + "'";
}

function literal(value, kind) {
  if (NUMERIC.has(kind)) {
    const n = normalizeNumber(value);
    if (n !== null) return n;
  }
  return pyString(value);
}

function ruleExpression(rule, entity, kinds) {
  if (!rule.field) return "";
  const path = `${entity}.${rule.field}`;
  const kind = kinds[rule.field];
  switch (rule.operator) {
    case "empty": return `${path} is None`;
    case "not_empty": return `${path} is not None`;
    case "true": return `${path} == True`;
    case "false": return `${path} == False`;
    case "contains": return `${pyString(rule.value ?? "")} in ${path}`;
    case "rose_above":
      return `rose_above(event, ${entity}, ${pyString(rule.field)}, ${rule.variable || literal(rule.value ?? "", kind)})`;
    case "in": {
      const values = String(rule.value ?? "").split(",").map((v) => v.trim()).filter(Boolean);
      return `${path} in [${values.map((v) => literal(v, kind)).join(", ")}]`;
    }
    default:
      if (rule.variable) return `${path} ${rule.operator || "=="} ${rule.variable}`;
      return `${path} ${rule.operator || "=="} ${literal(rule.value ?? "", kind)}`;
  }
}

/** The expression for a group; `kinds` maps field name → field kind. */
export function toExpression(group, entity, kinds = {}) {
  const parts = group.items.map((item) => {
    if (item.type === "group") {
      const inner = toExpression(item, entity, kinds);
      const many = item.items.filter((i) => i.type === "group" || i.field).length > 1;
      return inner && many ? `(${inner})` : inner;
    }
    return ruleExpression(item, entity, kinds);
  }).filter(Boolean);
  return parts.join(` ${group.op} `);
}

// --- expression → model --------------------------------------------------------------------

const TOKEN = /\s*(?:(\d+(?:\.\d+)?)|('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)|(==|!=|>=|<=|>|<|\(|\)|\[|\]|,|-))/y;

function tokenize(text) {
  const out = [];
  TOKEN.lastIndex = 0;
  let pos = 0;
  while (pos < text.length) {
    if (/^\s*$/.test(text.slice(pos))) break;
    TOKEN.lastIndex = pos;
    const m = TOKEN.exec(text);
    if (!m) return null;
    pos = TOKEN.lastIndex;
    if (m[1] !== undefined) out.push({ t: "num", v: m[1] });
    else if (m[2] !== undefined) out.push({ t: "str", v: unquote(m[2]) });
    else if (m[3] !== undefined) out.push({ t: "name", v: m[3] });
    else out.push({ t: "op", v: m[4] });
  }
  return out;
}

function unquote(s) {
  return s.slice(1, -1).replace(/\\(.)/g, (_m, c) => (c === "n" ? "\n" : c));
}

class Parser {
  constructor(tokens) { this.tokens = tokens; this.i = 0; }
  peek(v) { const tok = this.tokens[this.i]; return tok && (v === undefined || tok.v === v) ? tok : null; }
  take(v) { const tok = this.peek(v); if (!tok) throw new Error("syntax"); this.i++; return tok; }
  chain(op, next) {
    const items = [next()];
    while (this.peek(op) && this.tokens[this.i].t === "name") { this.i++; items.push(next()); }
    return items.length === 1 ? items[0] : { type: "group", op, items };
  }
  expr() { return this.chain("or", () => this.and()); }
  and() { return this.chain("and", () => this.atom()); }
  atom() {
    const tok = this.tokens[this.i], next = this.tokens[this.i + 1];
    if (tok && tok.t === "name" && tok.v === "rose_above" && next && next.v === "(") {
      this.i += 2;
      const args = [this.operand()];
      while (this.peek(",")) { this.take(","); args.push(this.operand()); }
      this.take(")");
      return { type: "call", name: tok.v, args };
    }
    if (this.peek("(")) {
      this.take("(");
      const inner = this.expr();
      this.take(")");
      return inner.type === "group" ? inner : { type: "group", op: "and", items: [inner] };
    }
    const left = this.operand();
    let op;
    if (this.peek("not")) { this.take("not"); this.take("in"); op = "not in"; }
    else if (this.peek("is")) { this.take("is"); op = this.peek("not") ? (this.take("not"), "is not") : "is"; }
    else if (this.peek("in")) { this.take("in"); op = "in"; }
    else {
      const tok = this.take();
      if (!COMPARE.includes(tok.v)) throw new Error("syntax");
      op = tok.v;
    }
    return { type: "cmp", left, op, right: this.operand() };
  }
  operand() {
    const tok = this.tokens[this.i++];
    if (!tok) throw new Error("syntax");
    if (tok.t === "op" && tok.v === "-" && this.peek() && this.peek().t === "num") {
      return { t: "num", v: "-" + this.tokens[this.i++].v };
    }
    if (tok.t === "op" && tok.v === "[") {
      const items = [];
      while (!this.peek("]")) {
        items.push(this.operand());
        if (!this.peek("]")) this.take(",");
      }
      this.take("]");
      return { t: "list", v: items };
    }
    if (tok.t === "name" && ["None", "True", "False"].includes(tok.v)) return { t: "const", v: tok.v };
    if (["num", "str", "name"].includes(tok.t)) return tok;
    throw new Error("syntax");
  }
}

function field(operand, entity) {
  if (operand.t !== "name" || !operand.v.startsWith(entity + ".")) return null;
  const rest = operand.v.slice(entity.length + 1);
  return rest.includes(".") ? null : rest;
}

function toRule(node, entity) {
  const { left, op, right } = node;
  const f = field(left, entity);
  if (f) {
    if (op === "is" && right.t === "const" && right.v === "None") return { type: "rule", field: f, operator: "empty", value: "" };
    if (op === "is not" && right.t === "const" && right.v === "None") return { type: "rule", field: f, operator: "not_empty", value: "" };
    if (op === "==" && right.t === "const" && right.v !== "None") {
      return { type: "rule", field: f, operator: right.v === "True" ? "true" : "false", value: "" };
    }
    if (op === "in" && right.t === "list" && right.v.every((i) => i.t === "num" || i.t === "str")) {
      return { type: "rule", field: f, operator: "in", value: right.v.map((i) => i.v).join(", ") };
    }
    if (COMPARE.includes(op) && (right.t === "num" || right.t === "str")) {
      return { type: "rule", field: f, operator: op, value: right.v };
    }
    if (COMPARE.includes(op) && right.t === "name" && !right.v.includes(".")) {
      return { type: "rule", field: f, operator: op, value: "", variable: right.v };
    }
    return null;
  }
  const rf = field(right, entity);
  if (rf && op === "in" && left.t === "str") return { type: "rule", field: rf, operator: "contains", value: left.v };
  return null;
}

function callRule(node, entity) {
  const [event, record, name, limit] = node.args;
  if (node.args.length !== 4 || event.t !== "name" || event.v !== "event" || record.t !== "name"
    || record.v !== entity || name.t !== "str") return null;
  if (limit.t === "num") return { type: "rule", field: name.v, operator: "rose_above", value: limit.v };
  if (limit.t === "name" && !limit.v.includes(".")) {
    return { type: "rule", field: name.v, operator: "rose_above", value: "", variable: limit.v };
  }
  return null;
}

function toModel(node, entity) {
  if (node.type === "call") return callRule(node, entity);
  if (node.type === "cmp") return toRule(node, entity);
  const items = node.items.map((n) => toModel(n, entity));
  return items.every(Boolean) ? { type: "group", op: node.op, items } : null;
}

/**
 * The builder model of an expression, or null when the builder cannot show it exactly
 * (other variables, functions, arithmetic, fields of related records …).
 */
export function parseExpression(text, entity) {
  const source = (text || "").trim();
  if (!source) return emptyGroup();
  if (!entity) return null;
  const tokens = tokenize(source);
  if (!tokens) return null;
  try {
    const parser = new Parser(tokens);
    const tree = parser.expr();
    if (parser.i !== tokens.length) return null;
    const model = toModel(tree, entity);
    if (!model) return null;
    return model.type === "group" ? model : { type: "group", op: "and", items: [model] };
  } catch (err) {
    return null;
  }
}
