// User task: who gets it (marshrut:assignment/assignee/outOfOffice, pickers fed by the API),
// due date, priority, instructions and the form (marshrut:instructions, marshrut:formField).
import { SelectEntry, TextAreaEntry } from "@bpmn-io/properties-panel";
import { useEffect, useState } from "@bpmn-io/properties-panel/preact/hooks";
import { useService } from "bpmn-js-properties-panel";

import { allPages, cached } from "../api";
import { t } from "../i18n";
import { attr, extensions, getBusinessObject, is, setAttrs, setExtensions } from "./util";

export const KINDS = {
  user: "a user", role: "a role (members claim it)", department_head: "the head of a department",
  responsible_department_head: "the head of the responsible's department",
  responsible: "the responsible", round_robin: "a role, in turn (round robin)",
  least_loaded: "the least loaded role member",
};
const TARGET = { user: "user", role: "role", round_robin: "role", least_loaded: "role",
  department_head: "department" };
const FIELD_TYPES = ["string", "text", "decimal", "integer", "boolean", "date", "enum", "buttons"];
const UNITS = { M: "minutes", H: "hours", D: "days", W: "weeks" };

function Kind({ element, id }) {
  const modeling = useService("modeling");
  return <SelectEntry id={id} element={element} label={t("Assign to")}
    getOptions={() => [{ value: "", label: "—" },
      ...Object.entries(KINDS).map(([value, label]) => ({ value, label: t(label) }))]}
    getValue={() => attr(element, "assignment")}
    setValue={(kind) => {
      const same = TARGET[kind] && TARGET[kind] === TARGET[attr(element, "assignment")];
      setAttrs(element, { assignment: kind, assignee: same ? attr(element, "assignee") : "" }, modeling);
    }} />;
}

/** Options for the assignee picker: users by e-mail, roles by code, departments by name. */
function useTargets(kind) {
  const [items, setItems] = useState(null);
  useEffect(() => {
    setItems(null);
    const what = TARGET[kind];
    const load = what === "user" ? allPages("/users?active=true").then((us) =>
      us.map((u) => ({ value: u.email, label: `${u.full_name} <${u.email}>` })))
      : what === "role" ? cached("/roles").then((d) => d.items.map((r) => ({ value: r.code, label: r.name })))
        : what === "department" ? cached("/departments").then((d) =>
          d.items.map((dep) => ({ value: dep.name, label: dep.name })))
          : Promise.resolve([]);
    load.then(setItems, () => setItems([]));
  }, [kind]);
  return items;
}

function Target({ element, id }) {
  const modeling = useService("modeling");
  const kind = attr(element, "assignment");
  const items = useTargets(kind);
  const current = attr(element, "assignee");
  const options = [{ value: "", label: items ? "—" : t("Loading…") }, ...(items || [])];
  if (current && items && !items.some((o) => o.value === current)) options.push({ value: current, label: current });
  const label = { user: "User", role: "Role", department: "Department" }[TARGET[kind]];
  return <SelectEntry id={id} element={element} label={t(label)} getOptions={() => options}
    getValue={() => current} setValue={(value) => setAttrs(element, { assignee: value }, modeling)} />;
}

function OutOfOffice({ element, id }) {
  const modeling = useService("modeling");
  return <SelectEntry id={id} element={element} label={t("Out of office")}
    getOptions={() => [{ value: "deputy", label: t("give it to the deputy") },
      { value: "skip", label: t("skip the person") }]}
    getValue={() => attr(element, "outOfOffice") || "deputy"}
    setValue={(v) => setAttrs(element, { outOfOffice: v === "deputy" ? "" : v }, modeling)} />;
}

export function parseDue(text) {
  const m = /^P(?:T(\d+)([MH])|(\d+)([DW]))$/.exec(text || "");
  if (!m) return null;
  return m[1] ? { amount: m[1], unit: m[2] } : { amount: m[3], unit: m[4] };
}

export function formatDue(amount, unit) {
  const n = parseInt(amount, 10);
  if (!n || n < 0) return "";
  return unit === "M" || unit === "H" ? `PT${n}${unit}` : `P${n}${unit}`;
}

function Due({ element, id }) {
  const modeling = useService("modeling");
  const due = attr(element, "due");
  const parsed = parseDue(due);
  const [amount, setAmount] = useState(parsed ? parsed.amount : "");
  const [unit, setUnit] = useState(parsed ? parsed.unit : "H");
  useEffect(() => {
    const p = parseDue(attr(element, "due"));
    if (p) { setAmount(p.amount); setUnit(p.unit); } else if (!attr(element, "due")) setAmount("");
  }, [element.id, due]);
  const write = (a, u) => setAttrs(element, { due: formatDue(a, u) }, modeling);
  return <div class="bio-properties-panel-entry" data-entry-id={id}>
    <label class="bio-properties-panel-label" for={`bio-properties-panel-${id}`}>{t("Due in")}</label>
    {due && !parsed
      ? <input id={`bio-properties-panel-${id}`} class="bio-properties-panel-input" value={due}
        onChange={(e) => setAttrs(element, { due: e.target.value.trim() }, modeling)} />
      : <div class="marshrut-row">
        <input id={`bio-properties-panel-${id}`} class="bio-properties-panel-input" type="number" min="0"
          placeholder={t("no due date")} value={amount}
          onInput={(e) => setAmount(e.target.value)} onChange={(e) => write(e.target.value, unit)} />
        <select class="bio-properties-panel-input" value={unit} data-test="due-unit"
          onChange={(e) => { setUnit(e.target.value); write(amount, e.target.value); }}>
          {Object.entries(UNITS).map(([u, l]) => <option value={u}>{t(l)}</option>)}
        </select>
      </div>}
  </div>;
}

function Priority({ element, id }) {
  const modeling = useService("modeling");
  return <SelectEntry id={id} element={element} label={t("Priority")}
    getOptions={() => ["low", "normal", "high"].map((p) => ({ value: p, label: t(p) }))}
    getValue={() => attr(element, "priority") || "normal"}
    setValue={(v) => setAttrs(element, { priority: v === "normal" ? "" : v }, modeling)} />;
}

function Instructions({ element, id }) {
  const modeling = useService("modeling");
  const bpmnFactory = useService("bpmnFactory");
  const debounce = useService("debounceInput");
  return <TextAreaEntry id={id} element={element} label={t("Instructions")} debounce={debounce} rows={3}
    description="{{deal.title}}, {{deal.amount}} …"
    getValue={() => extensions(getBusinessObject(element), "marshrut:Instructions").map((i) => i.text || "").join("\n")}
    setValue={(text) => {
      const items = text ? [bpmnFactory.create("marshrut:Instructions", { text })] : [];
      setExtensions(element, "marshrut:Instructions", items, { modeling, bpmnFactory });
    }} />;
}

function fieldsOf(element) {
  return extensions(getBusinessObject(element), "marshrut:FormField").map((f) => ({
    name: f.name || "", type: f.type || "string", label: f.label || "", required: f.required === "true",
    options: (f.options || []).map((o) => `${o.value}: ${o.label || o.value}`).join("\n"),
  }));
}

function FormFields({ element, id }) {
  const modeling = useService("modeling");
  const bpmnFactory = useService("bpmnFactory");
  const current = fieldsOf(element);
  const write = (rows) => {
    const items = rows.map((r) => {
      const options = ["enum", "buttons"].includes(r.type) ? r.options.split("\n").map((line) => line.trim())
        .filter(Boolean).map((line) => {
          const [value, ...rest] = line.split(":");
          return bpmnFactory.create("marshrut:Option", { value: value.trim(), label: (rest.join(":").trim() || value.trim()) });
        }) : [];
      const field = bpmnFactory.create("marshrut:FormField", { name: r.name, type: r.type, label: r.label || undefined,
        required: r.type === "buttons" ? undefined : String(!!r.required), options });
      options.forEach((o) => { o.$parent = field; });
      return field;
    });
    setExtensions(element, "marshrut:FormField", items, { modeling, bpmnFactory });
  };
  const update = (i, patch) => write(current.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return <div class="bio-properties-panel-entry marshrut-list" data-entry-id={id}>
    {current.map((r, i) => <fieldset class="marshrut-item" data-test={`form-field-${i}`}>
      <div class="marshrut-row">
        <input class="bio-properties-panel-input" placeholder={t("Name")} value={r.name} data-test={`form-field-${i}-name`}
          onChange={(e) => update(i, { name: e.target.value.trim() })} />
        <select class="bio-properties-panel-input" value={r.type} onChange={(e) => update(i, { type: e.target.value })}>
          {FIELD_TYPES.map((ft) => <option value={ft}>{ft}</option>)}
        </select>
        <button type="button" class="marshrut-link" title={t("Remove")}
          onClick={() => write(current.filter((_x, j) => j !== i))}>×</button>
      </div>
      <input class="bio-properties-panel-input" placeholder={t("Label")} value={r.label}
        onChange={(e) => update(i, { label: e.target.value })} />
      {r.type !== "buttons" && <label class="marshrut-check"><input type="checkbox" checked={r.required}
        onChange={(e) => update(i, { required: e.target.checked })} /> {t("Required")}</label>}
      {["enum", "buttons"].includes(r.type) && <textarea class="bio-properties-panel-input" rows="3"
        placeholder={t("Options (value: label per line)")} value={r.options}
        onChange={(e) => update(i, { options: e.target.value })} />}
    </fieldset>)}
    <button type="button" class="marshrut-button" data-test="form-field-add"
      onClick={() => write([...current, { name: `field${current.length + 1}`, type: "string", label: "", required: false, options: "" }])}>
      + {t("Add field")}</button>
  </div>;
}

export function userTaskGroups(element) {
  if (!is(element, "bpmn:UserTask")) return [];
  const kind = attr(element, "assignment");
  const assignment = [{ id: "marshrut-assignment", element, component: Kind }];
  if (TARGET[kind]) assignment.push({ id: "marshrut-assignee", element, component: Target });
  if (kind) assignment.push({ id: "marshrut-out-of-office", element, component: OutOfOffice });
  return [
    { id: "marshrut-assignment-group", label: t("Assignment"), entries: assignment },
    { id: "marshrut-task-group", label: t("Due in") + " · " + t("Priority") + " · " + t("Instructions"), entries: [
      { id: "marshrut-due", element, component: Due },
      { id: "marshrut-priority", element, component: Priority },
      { id: "marshrut-instructions", element, component: Instructions },
    ] },
    { id: "marshrut-form-group", label: t("Form fields"), entries: [
      { id: "marshrut-form-fields", element, component: FormFields },
    ] },
  ];
}
