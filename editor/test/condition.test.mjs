// The condition builder's expression mapping (src/editor/properties/condition.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { normalizeNumber, operatorsFor, parseExpression, toExpression, valueProblem } from "../src/editor/properties/condition.js";

const kinds = { amount: "money", source: "enum", title: "string", opened: "bool", stage: "stage" };

test("what the builder writes it reads back unchanged", () => {
  for (const expr of [
    "deal.amount > 500000",
    "deal.amount >= 1.5 and deal.source == 'web'",
    "deal.amount > 100 and (deal.source == 'web' or deal.stage == 'NEW')",
    "deal.title is None or 'VIP' in deal.title",
    "deal.opened == True and deal.source in ['web', 'ads']",
    "deal.amount is not None and deal.amount <= -3",
    "deal.title == 'it\\'s'",
  ]) {
    const model = parseExpression(expr, "deal");
    assert.ok(model, expr);
    assert.equal(toExpression(model, "deal", kinds), expr);
  }
});

test("what the builder cannot show stays raw", () => {
  for (const expr of ["deal.amount > deal.probability", "len(deal.title) > 3", "deal.company.title == 'x'",
    "lead.amount > 1", "deal.amount + 1 > 2", "not deal.opened", "deal.amount >"]) {
    assert.equal(parseExpression(expr, "deal"), null, expr);
  }
});

test("numbers typed the Russian or the English way", () => {
  assert.equal(normalizeNumber("500,000"), "500000");
  assert.equal(normalizeNumber("500 000"), "500000");
  assert.equal(normalizeNumber("1,5"), "1.5");
  assert.equal(normalizeNumber("1,000.25"), "1000.25");
  assert.equal(normalizeNumber("lots"), null);
  const model = { type: "group", op: "and", items: [{ type: "rule", field: "amount", operator: ">", value: "500,000" }] };
  assert.equal(toExpression(model, "deal", kinds), "deal.amount > 500000");
});

test("groups: empty rules are skipped, single-item groups need no parentheses", () => {
  const model = { type: "group", op: "or", items: [
    { type: "rule", field: "", operator: "==", value: "" },
    { type: "group", op: "and", items: [{ type: "rule", field: "source", operator: "==", value: "web" }] },
    { type: "rule", field: "amount", operator: "<", value: "10" },
  ] };
  assert.equal(toExpression(model, "deal", kinds), "deal.source == 'web' or deal.amount < 10");
  assert.deepEqual(operatorsFor("bool"), ["true", "false", "empty", "not_empty"]);
});

test("a process variable is a value the builder shows and writes back", () => {
  const model = parseExpression("deal.amount > threshold", "deal");
  assert.deepEqual(model.items[0], { type: "rule", field: "amount", operator: ">", value: "", variable: "threshold" });
  assert.equal(toExpression(model, "deal", kinds), "deal.amount > threshold");
});

test("a reference field wants a picked record, a number field a number", () => {
  const company = { name: "company_id", type: "ref", ref: "company" };
  const amount = { name: "amount", type: "money" };
  assert.equal(valueProblem({ field: "company_id", operator: "==", value: "ООО «Вектор»" }, company),
    "Pick the record from the list");
  assert.equal(valueProblem({ field: "company_id", operator: "==", value: "12" }, company), null);
  assert.equal(valueProblem({ field: "amount", operator: ">", value: "много" }, amount), "Give a number");
  assert.equal(valueProblem({ field: "amount", operator: ">", value: "1 000 000" }, amount), null);
  assert.equal(valueProblem({ field: "amount", operator: ">", value: "", variable: "threshold" }, amount), null);
  assert.equal(toExpression({ type: "group", op: "and", items: [{ type: "rule", field: "company_id", operator: "==",
    value: "12" }] }, "deal", { company_id: "ref" }), "deal.company_id == 12");
});

test("the shipped large-deal condition is one the builder shows", () => {
  const expr = "rose_above(event, deal, 'amount', threshold) and deal.responsible_set_by is None";
  const model = parseExpression(expr, "deal");
  assert.deepEqual(model.items, [
    { type: "rule", field: "amount", operator: "rose_above", value: "", variable: "threshold" },
    { type: "rule", field: "responsible_set_by", operator: "empty", value: "" },
  ]);
  assert.equal(toExpression(model, "deal", kinds), expr);
  const literal = parseExpression("rose_above(event, deal, 'amount', 1000000)", "deal");
  assert.equal(toExpression(literal, "deal", kinds), "rose_above(event, deal, 'amount', 1000000)");
  assert.equal(parseExpression("rose_above(event, lead, 'amount', 1)", "deal"), null);
  assert.ok(operatorsFor("money").includes("rose_above"));
});
