// Service task: the operation (from /api/v1/service-operations) and its parameters, each a
// literal (marshrut:parameter value=…) or a sandboxed expression (expression=…). Typed
// parameters get pickers: users, roles, departments, stages, booleans, choices.
import { SelectEntry } from "@bpmn-io/properties-panel";
import { useEffect, useState } from "@bpmn-io/properties-panel/preact/hooks";
import { useService } from "bpmn-js-properties-panel";

import { allPages, cached } from "../api";
import { t } from "../i18n";
import { attr, extensions, getBusinessObject, is, setAttrs, setExtensions } from "./util";

function useOperations() {
  const [ops, setOps] = useState(null);
  useEffect(() => { cached("/service-operations").then((d) => setOps(d.items), () => setOps([])); }, []);
  return ops;
}

function usePicker(type) {
  const [items, setItems] = useState(null);
  useEffect(() => {
    const load = type === "user" ? allPages("/users?active=true").then((us) => us.map((u) => [u.email, u.full_name]))
      : type === "role" ? cached("/roles").then((d) => d.items.map((r) => [r.code, r.name]))
        : type === "department" ? cached("/departments").then((d) => d.items.map((x) => [x.name, x.name]))
          : type === "stage" ? cached("/pipelines").then((d) => d.items.flatMap((p) =>
            p.stages.map((s) => [s.code, `${p.name}: ${s.name}`])))
            : Promise.resolve(null);
    load.then(setItems, () => setItems([]));
  }, [type]);
  return items;
}

function Operation({ element, id }) {
  const modeling = useService("modeling");
  const bpmnFactory = useService("bpmnFactory");
  const ops = useOperations();
  const current = attr(element, "operation");
  const options = [{ value: "", label: ops ? "—" : t("Loading…") },
    ...(ops || []).map((o) => ({ value: o.name, label: o.title }))];
  if (current && ops && !ops.some((o) => o.name === current)) options.push({ value: current, label: current });
  return <SelectEntry id={id} element={element} label={t("Operation")} getOptions={() => options}
    getValue={() => current}
    setValue={(name) => {
      const op = (ops || []).find((o) => o.name === name);
      const known = new Set(op ? op.params.map((p) => p.name) : []);
      const kept = extensions(getBusinessObject(element), "marshrut:Parameter").filter((p) => known.has(p.name));
      setAttrs(element, { operation: name }, modeling);
      setExtensions(element, "marshrut:Parameter", kept.map((p) => bpmnFactory.create("marshrut:Parameter",
        { name: p.name, value: p.value, expression: p.expression })), { modeling, bpmnFactory });
    }} />;
}

function ParamInput({ param, value, onChange, path }) {
  const items = usePicker(param.type);
  const common = { class: "bio-properties-panel-input", "data-test": `${path}-value`, value };
  const choices = param.choices && param.choices.length ? param.choices.map((c) => [c, c])
    : param.type === "boolean" ? [["true", t("is true")], ["false", t("is false")]] : items;
  if (choices) {
    return <select {...common} onChange={(e) => onChange(e.target.value)}>
      <option value="">—</option>
      {choices.map(([v, l]) => <option value={v}>{l}</option>)}
      {value && !choices.some(([v]) => v === value) && <option value={value}>{value}</option>}
    </select>;
  }
  if (param.type === "json" || param.name === "text" || param.name === "description") {
    return <textarea {...common} rows="2" onChange={(e) => onChange(e.target.value)} />;
  }
  return <input {...common} onChange={(e) => onChange(e.target.value)} placeholder={param.type === "duration" ? "PT2H" : ""} />;
}

function Parameters({ element, id }) {
  const modeling = useService("modeling");
  const bpmnFactory = useService("bpmnFactory");
  const ops = useOperations();
  const [modes, setModes] = useState({});  // chosen before a value is typed
  const op = (ops || []).find((o) => o.name === attr(element, "operation"));
  if (!op) return <div class="bio-properties-panel-entry" data-entry-id={id} />;
  const given = Object.fromEntries(extensions(getBusinessObject(element), "marshrut:Parameter").map((p) => [p.name, p]));
  const write = (name, patch) => {
    const next = { ...given };
    const old = next[name] || { name };
    const merged = { name, value: old.value, expression: old.expression, ...patch };
    if ((merged.value === undefined || merged.value === "") && !merged.expression) delete next[name];
    else next[name] = merged;
    const items = op.params.filter((p) => next[p.name]).map((p) => bpmnFactory.create("marshrut:Parameter", {
      name: p.name, value: next[p.name].expression ? undefined : next[p.name].value,
      expression: next[p.name].expression || undefined }));
    setExtensions(element, "marshrut:Parameter", items, { modeling, bpmnFactory });
  };
  return <div class="bio-properties-panel-entry marshrut-list" data-entry-id={id}>
    {op.description && <div class="bio-properties-panel-description">{op.description}</div>}
    {op.params.map((p) => {
      const g = given[p.name];
      const mode = g ? (g.expression ? "expression" : "literal") : (modes[p.name] || "literal");
      const path = `param-${p.name}`;
      return <fieldset class="marshrut-item" data-test={path}>
        <div class="marshrut-row">
          <strong title={p.name}>{p.label || p.name}{p.required ? " *" : ""}</strong>
          <select class="bio-properties-panel-input" value={mode} data-test={`${path}-mode`}
            onChange={(e) => {
              setModes({ ...modes, [p.name]: e.target.value });
              if (g) {
                write(p.name, e.target.value === "expression"
                  ? { expression: g.value || "", value: undefined } : { value: g.expression || "", expression: undefined });
              }
            }}>
            <option value="literal">{t("literal")}</option>
            <option value="expression">{t("expression")}</option>
          </select>
        </div>
        {p.description && <div class="bio-properties-panel-description">{p.description}</div>}
        {mode === "expression"
          ? <input class="bio-properties-panel-input" data-test={`${path}-value`} value={(g && g.expression) || ""}
            placeholder="deal.responsible_id" onChange={(e) => write(p.name, { expression: e.target.value })} />
          : <ParamInput param={p} path={path} value={(g && g.value) || ""}
            onChange={(v) => write(p.name, { value: v, expression: undefined })} />}
      </fieldset>;
    })}
  </div>;
}

export function serviceGroup(element) {
  if (!is(element, "bpmn:ServiceTask")) return null;
  return { id: "marshrut-service-group", label: t("Service operation"), entries: [
    { id: "marshrut-operation", element, component: Operation },
    { id: "marshrut-parameters", element, component: Parameters },
  ] };
}
