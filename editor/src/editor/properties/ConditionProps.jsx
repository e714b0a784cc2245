// Sequence flows leaving a deciding gateway: "default flow", and a condition built from the
// entity's fields as the server describes them (/api/v1/fields/<entity>), with AND/OR groups;
// the raw expression is the advanced option. See condition.js for the model.
import { CheckboxEntry } from "@bpmn-io/properties-panel";
import { useEffect, useRef, useState } from "@bpmn-io/properties-panel/preact/hooks";
import { useService } from "bpmn-js-properties-panel";

import { cached } from "../api";
import { lang, t } from "../i18n";
import { EXTRA_FIELDS, OPERATORS, emptyGroup, operatorsFor, parseExpression, toExpression, valueProblem } from "./condition";
import { RecordPicker } from "./RecordPicker";
import { extensions, getBusinessObject, is, processEntity } from "./util";

const DECIDING = ["bpmn:ExclusiveGateway", "bpmn:InclusiveGateway"];

function sourceOf(element) {
  return element.source || null;
}

export function isDecidingFlow(element) {
  const source = sourceOf(element);
  return is(element, "bpmn:SequenceFlow") && source && DECIDING.some((type) => is(source, type));
}

function isDefault(element) {
  const source = sourceOf(element);
  return !!source && getBusinessObject(source).default === getBusinessObject(element);
}

function expressionOf(element) {
  const c = getBusinessObject(element).conditionExpression;
  return (c && c.body) || "";
}

function DefaultFlow({ element, id }) {
  const modeling = useService("modeling");
  return <CheckboxEntry id={id} element={element} label={t("Default flow")}
    description={t("Taken when no other condition holds")}
    getValue={() => isDefault(element)}
    setValue={(checked) => {
      if (checked) modeling.updateProperties(element, { conditionExpression: undefined });
      modeling.updateProperties(sourceOf(element), { default: checked ? getBusinessObject(element) : undefined });
    }} />;
}

function useFields(entity) {
  const [fields, setFields] = useState(null);
  useEffect(() => {
    if (!entity) return;
    cached(`/fields/${entity}`).then((d) => setFields([...d.fields, ...EXTRA_FIELDS]), () => setFields([]));
  }, [entity]);
  return fields;
}

/**
 * A gateway with two outgoing flows, no default, and a condition just written on one of them:
 * the other one becomes the default ("otherwise"), as the engine needs one or the other.
 */
function otherwiseByDefault(element, modeling) {
  const gateway = sourceOf(element);
  if (!gateway || getBusinessObject(gateway).default) return;
  const others = (gateway.outgoing || []).filter((f) => f !== element);
  if (others.length !== 1 || getBusinessObject(others[0]).conditionExpression) return;
  modeling.updateProperties(gateway, { default: getBusinessObject(others[0]) });
}

function label(f) {
  return (f.labels && (f.labels[lang()] || f.labels.en)) || f.name;
}

function usePipelines(needed) {
  const [pipelines, setPipelines] = useState(null);
  useEffect(() => {
    if (needed) cached("/pipelines").then((d) => setPipelines(d.items), () => setPipelines([]));
  }, [needed]);
  return pipelines;
}

/** The process variables (marshrut:variable) a value may be compared with, by label. */
function processVariables(element) {
  let bo = getBusinessObject(element);
  while (bo && !is(bo, "bpmn:Process") && bo.$parent) bo = bo.$parent;
  if (bo && is(bo, "bpmn:Participant")) bo = bo.processRef;
  return bo ? extensions(bo, "marshrut:Variable") : [];
}

function ValueInput({ rule, field, users, pipelines, variables, onChange, path }) {
  if (["empty", "not_empty", "true", "false"].includes(rule.operator)) return null;
  const kind = field ? field.type : "string";
  const common = { "data-test": `${path}-value`, class: "bio-properties-panel-input" };
  if (rule.variable !== undefined) {
    return <select {...common} value={rule.variable} onChange={(e) => onChange({ variable: e.target.value })}>
      {variables.map((v) => <option value={v.name}>{v.label || v.name}</option>)}
    </select>;
  }
  if (field && field.ref && kind === "ref" && rule.operator !== "in") {
    return <RecordPicker entity={field.ref} value={rule.value} path={path} onChange={(value) => onChange({ value })} />;
  }
  if (kind === "user" && rule.operator !== "in") {
    return <RecordPicker entity="user" value={rule.value} path={path} onChange={(value) => onChange({ value })} />;
  }
  if (field && field.name === "pipeline_id" && rule.operator !== "in") {
    return <select {...common} value={rule.value} onChange={(e) => onChange({ value: e.target.value })}>
      <option value="">{pipelines ? "—" : t("Loading…")}</option>
      {(pipelines || []).map((p) => <option value={String(p.id)}>{p.name}</option>)}
    </select>;
  }
  if (kind === "stage" && rule.operator !== "in") {
    const stages = (pipelines || []).flatMap((p) => p.stages.map((st) => [st.code, `${p.name}: ${st.name}`]));
    return <select {...common} value={rule.value} onChange={(e) => onChange({ value: e.target.value })}>
      <option value="">{pipelines ? "—" : t("Loading…")}</option>
      {stages.map(([code, name]) => <option value={code}>{name}</option>)}
      {rule.value && !stages.some(([code]) => code === rule.value) && <option value={rule.value}>{rule.value}</option>}
    </select>;
  }
  if (field && field.choices && field.choices.length && rule.operator !== "in") {
    return <select {...common} value={rule.value} onChange={(e) => onChange({ value: e.target.value })}>
      <option value="">—</option>
      {field.choices.map((c) => <option value={c}>{t(c)}</option>)}
    </select>;
  }
  return <input {...common} type="text" value={rule.value}
    placeholder={rule.operator === "in" ? "a, b, c" : ""}
    onChange={(e) => onChange({ value: e.target.value })} />;
}

const NUMERIC_KINDS = ["money", "int"];

function Rule({ rule, fields, users, pipelines, variables, onChange, onRemove, path }) {
  const field = fields.find((f) => f.name === rule.field);
  const ops = operatorsFor(field ? field.type : "string");
  const problem = valueProblem(rule, field);
  const canUseVariable = field && NUMERIC_KINDS.includes(field.type) && variables.length > 0
    && !["empty", "not_empty", "in"].includes(rule.operator);
  return <div class="marshrut-cond-rule-box">
    <div class="marshrut-cond-rule" data-test={path}>
      <select class="bio-properties-panel-input" data-test={`${path}-field`} value={rule.field}
        aria-label={t("Field")}
        onChange={(e) => {
          const f = fields.find((x) => x.name === e.target.value);
          const allowed = operatorsFor(f ? f.type : "string");
          onChange({ type: "rule", field: e.target.value, value: "",
            operator: allowed.includes(rule.operator) ? rule.operator : allowed[0] });
        }}>
        <option value="">—</option>
        {fields.map((f) => <option value={f.name}>{label(f)}</option>)}
      </select>
      <select class="bio-properties-panel-input" data-test={`${path}-op`} value={rule.operator}
        aria-label={t("Operator")} onChange={(e) => onChange({ ...rule, operator: e.target.value })}>
        {ops.map((o) => <option value={o}>{t(OPERATORS[o])}</option>)}
      </select>
      <ValueInput rule={rule} field={field} users={users} pipelines={pipelines} variables={variables} path={path}
        onChange={(patch) => onChange({ ...rule, ...patch })} />
      <button type="button" class="marshrut-link" title={t("Remove")} onClick={onRemove}>×</button>
    </div>
    {canUseVariable && <label class="marshrut-check small">
      <input type="checkbox" data-test={`${path}-use-variable`} checked={rule.variable !== undefined}
        onChange={(e) => {
          const next = { ...rule };
          if (e.target.checked) next.variable = variables[0].name;
          else delete next.variable;
          onChange(next);
        }} />{t("compare with a process variable")}</label>}
    {problem && <div class="bio-properties-panel-error" data-test={`${path}-problem`}>{t(problem)}</div>}
  </div>;
}

function Group({ group, fields, users, pipelines, variables, onChange, onRemove, path, depth }) {
  const update = (i, item) => onChange({ ...group, items: group.items.map((x, j) => (j === i ? item : x)) });
  const remove = (i) => onChange({ ...group, items: group.items.filter((_x, j) => j !== i) });
  return <div class={`marshrut-cond-group depth-${depth}`} data-test={`${path}`}>
    <select class="bio-properties-panel-input marshrut-cond-combinator" data-test={`${path}-combinator`}
      value={group.op} onChange={(e) => onChange({ ...group, op: e.target.value })}>
      <option value="and">{t("all of")} (AND)</option>
      <option value="or">{t("any of")} (OR)</option>
    </select>
    {depth > 0 && <button type="button" class="marshrut-link" onClick={onRemove}>{t("Remove")}</button>}
    {group.items.map((item, i) => (item.type === "group"
      ? <Group group={item} fields={fields} users={users} pipelines={pipelines} variables={variables}
        depth={depth + 1} path={`${path}-${i}`}
        onChange={(g) => update(i, g)} onRemove={() => remove(i)} />
      : <Rule rule={item} fields={fields} users={users} pipelines={pipelines} variables={variables}
        path={`${path}-${i}`}
        onChange={(r) => update(i, r)} onRemove={() => remove(i)} />))}
    <div class="marshrut-cond-actions">
      <button type="button" class="marshrut-button" data-test={`${path}-add-rule`}
        onClick={() => onChange({ ...group, items: [...group.items, { type: "rule", field: "", operator: "==", value: "" }] })}>
        + {t("Add condition")}</button>
      {depth < 2 && <button type="button" class="marshrut-button" data-test={`${path}-add-group`}
        onClick={() => onChange({ ...group, items: [...group.items, emptyGroup(group.op === "and" ? "or" : "and")] })}>
        + {t("Add group")}</button>}
    </div>
  </div>;
}

function ConditionBuilder({ element }) {
  const modeling = useService("modeling");
  const bpmnFactory = useService("bpmnFactory");
  const entity = processEntity(element);
  const fields = useFields(entity);
  const expr = expressionOf(element);
  const written = useRef(expr);
  const [model, setModel] = useState(() => parseExpression(expr, entity));
  const [raw, setRaw] = useState(() => model === null);
  const [draft, setDraft] = useState(expr);
  useEffect(() => {  // another element, an undo, or the raw editor changed the expression
    if (expr !== written.current) {
      written.current = expr;
      const parsed = parseExpression(expr, entity);
      setModel(parsed);
      setDraft(expr);
      if (parsed === null) setRaw(true);
    }
  }, [element.id, expr, entity]);
  const users = null;
  const pipelines = usePipelines(entity === "deal");
  const variables = processVariables(element).map((v) => ({ name: v.name, label: v.get ? v.get("label") : v.label }));

  const write = (text) => {
    written.current = text;
    if (!text) {
      modeling.updateProperties(element, { conditionExpression: undefined });
    } else {
      const fe = bpmnFactory.create("bpmn:FormalExpression", { body: text });
      modeling.updateProperties(element, { conditionExpression: fe });
    }
  };
  const kinds = Object.fromEntries((fields || []).map((f) => [f.name, f.type]));
  const onModel = (m) => {
    setModel(m);
    const text = toExpression(m, entity, kinds);
    setDraft(text);
    if (text !== expressionOf(element)) {
      write(text);
      if (text) otherwiseByDefault(element, modeling);
    }
  };

  if (raw || !entity) {
    const parsed = entity ? parseExpression(draft, entity) : null;
    return <div class="bio-properties-panel-entry marshrut-condition" data-test="cond-raw">
      <label class="bio-properties-panel-label" for="marshrut-condition-raw">{t("Advanced: expression")}</label>
      <textarea id="marshrut-condition-raw" class="bio-properties-panel-input" rows="3" spellcheck={false}
        value={draft} onInput={(e) => setDraft(e.target.value)}
        onBlur={(e) => { if (e.target.value.trim() !== expressionOf(element)) write(e.target.value.trim()); }} />
      {!entity && <div class="bio-properties-panel-description">
        {t("Pick the trigger of the start event first to get the fields.")}</div>}
      {entity && (parsed
        ? <button type="button" class="marshrut-button" data-test="cond-builder"
          onClick={() => { write(draft.trim()); setModel(parsed); setRaw(false); }}>{t("Use the builder")}</button>
        : <div class="bio-properties-panel-description">{t("This expression is too complex for the builder.")}</div>)}
    </div>;
  }
  if (fields === null) return <div class="bio-properties-panel-entry">{t("Loading…")}</div>;
  // an empty condition starts with one row to fill in
  const shown = model && model.items.length ? model
    : { ...(model || emptyGroup()), items: [{ type: "rule", field: "", operator: "==", value: "" }] };
  return <div class="bio-properties-panel-entry marshrut-condition" data-test="cond-builder-panel">
    <Group group={shown} fields={fields} users={users} pipelines={pipelines} variables={variables} depth={0} path="cond"
      onChange={onModel} onRemove={() => {}} />
    <code class="marshrut-cond-preview" data-test="cond-preview">{draft}</code>
    <button type="button" class="marshrut-link" data-test="cond-advanced"
      onClick={() => setRaw(true)}>{t("Advanced: expression")}</button>
  </div>;
}

export function conditionGroup(element) {
  if (!isDecidingFlow(element)) return null;
  const entries = [{ id: "marshrut-default-flow", element, component: DefaultFlow }];
  if (!isDefault(element)) {
    entries.push({ id: "marshrut-condition", element, component: ConditionBuilder });
  }
  return { id: "marshrut-condition-group", label: t("Condition"), entries };
}
