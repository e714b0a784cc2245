// Start event: started by hand, by a CRM event (a bpmn:message named "<entity>.<event>",
// which is what engine/validation.py reads as the trigger), or by a timer.
import { CheckboxEntry, SelectEntry, TextFieldEntry } from "@bpmn-io/properties-panel";
import { useService } from "bpmn-js-properties-panel";

import { t } from "../i18n";
import { definitionsOf, extensions, getBusinessObject, is, setExtensions } from "./util";

export const ENTITIES = ["deal", "lead", "contact", "company"];
const EVENTS = {
  deal: ["created", "updated", "stage_changed", "deleted"],
  lead: ["created", "updated", "converted", "deleted"],
  contact: ["created", "updated", "deleted"],
  company: ["created", "updated", "deleted"],
};
const TIMER_KINDS = { timeCycle: "Cycle (R/2026-01-05T09:00/P1D)", timeDate: "Date (2026-01-05T09:00)",
  timeDuration: "Duration (PT2H)" };

function definition(element) {
  return (getBusinessObject(element).eventDefinitions || [])[0];
}

function kindOf(element) {
  const def = definition(element);
  if (!def) return "manual";
  if (is(def, "bpmn:MessageEventDefinition")) return "event";
  if (is(def, "bpmn:TimerEventDefinition")) return "timer";
  return "other";
}

/** The start event of an event sub-process: its timer is armed when the (sub-)process
 * starts (a duration counts from then), and it starts no instances of its own. */
export function inEventSubProcess(element) {
  const parent = getBusinessObject(element).$parent;
  return !!parent && is(parent, "bpmn:SubProcess") && !!parent.triggeredByEvent;
}

function messageName(element) {
  const def = definition(element);
  return (def && def.messageRef && def.messageRef.name) || "";
}

/** The bpmn:message with this name, created in bpmn:definitions when missing. */
function ensureMessage(element, name, { modeling, bpmnFactory }) {
  const defs = definitionsOf(element);
  const roots = defs.get("rootElements");
  const found = roots.find((r) => is(r, "bpmn:Message") && r.name === name);
  if (found) return found;
  const message = bpmnFactory.create("bpmn:Message", { name });
  message.id = "Message_" + name.replace(/[^A-Za-z0-9_]/g, "_");
  if (roots.some((r) => r.id === message.id)) message.id += "_" + Math.random().toString(36).slice(2, 7);
  message.$parent = defs;
  modeling.updateModdleProperties(element, defs, { rootElements: [...roots, message] });
  return message;
}

function useServices() {
  return { modeling: useService("modeling"), bpmnFactory: useService("bpmnFactory") };
}

function setTrigger(element, name, services) {
  const message = ensureMessage(element, name, services);
  const current = definition(element);
  if (current && is(current, "bpmn:MessageEventDefinition")) {
    services.modeling.updateModdleProperties(element, current, { messageRef: message });
    return;
  }
  const def = services.bpmnFactory.create("bpmn:MessageEventDefinition", { messageRef: message });
  def.$parent = getBusinessObject(element);
  services.modeling.updateProperties(element, { eventDefinitions: [def] });
}

function StartKind({ element, id }) {
  const services = useServices();
  const setValue = (kind) => {
    const bo = getBusinessObject(element);
    if (kind === "manual") {
      services.modeling.updateProperties(element, { eventDefinitions: [] });
    } else if (kind === "event") {
      setTrigger(element, "deal.created", services);
    } else if (kind === "timer") {
      // a schedule for a process; "after two days" for an event sub-process
      const [field, body] = inEventSubProcess(element) ? ["timeDuration", "P2D"]
        : ["timeCycle", "R/2026-01-05T09:00/P1D"];
      const expr = services.bpmnFactory.create("bpmn:FormalExpression", { body });
      const def = services.bpmnFactory.create("bpmn:TimerEventDefinition", { [field]: expr });
      expr.$parent = def;
      def.$parent = bo;
      services.modeling.updateProperties(element, { eventDefinitions: [def] });
    }
  };
  const options = [{ value: "manual", label: t("by hand") }, { value: "event", label: t("on a CRM event") },
    { value: "timer", label: t("on a timer") }];
  if (kindOf(element) === "other") options.push({ value: "other", label: "—" });
  return <SelectEntry id={id} element={element} label={t("Starts")} getOptions={() => options}
    getValue={() => kindOf(element)} setValue={setValue} />;
}

function TriggerEntity({ element, id }) {
  const services = useServices();
  return <SelectEntry id={id} element={element} label={t("Entity")}
    getOptions={() => ENTITIES.map((e) => ({ value: e, label: t(e) }))}
    getValue={() => messageName(element).split(".")[0] || "deal"}
    setValue={(entity) => {
      const event = messageName(element).split(".")[1];
      setTrigger(element, `${entity}.${EVENTS[entity].includes(event) ? event : "created"}`, services);
    }} />;
}

function TriggerEvent({ element, id }) {
  const services = useServices();
  const entity = messageName(element).split(".")[0] || "deal";
  const events = EVENTS[entity] || EVENTS.deal;
  const current = messageName(element).split(".")[1] || "";
  const options = events.map((e) => ({ value: e, label: t(e.replace("_", " ")) }));
  if (current && !events.includes(current)) options.push({ value: current, label: current });
  return <SelectEntry id={id} element={element} label={t("Event")} getOptions={() => options}
    getValue={() => current} setValue={(event) => setTrigger(element, `${entity}.${event}`, services)} />;
}

function timerField(element) {
  const def = definition(element);
  return Object.keys(TIMER_KINDS).find((k) => def && def.get(k)) || "timeCycle";
}

function TimerKind({ element, id }) {
  const services = useServices();
  return <SelectEntry id={id} element={element} label={t("Timer type")}
    getOptions={() => Object.entries(TIMER_KINDS).map(([value, label]) => ({ value, label: t(label) }))}
    getValue={() => timerField(element)}
    setValue={(kind) => {
      const def = definition(element);
      const old = def.get(timerField(element));
      const expr = services.bpmnFactory.create("bpmn:FormalExpression", { body: old ? old.body : "" });
      expr.$parent = def;
      services.modeling.updateModdleProperties(element, def,
        { timeCycle: undefined, timeDate: undefined, timeDuration: undefined, [kind]: expr });
    }} />;
}

function TimerValue({ element, id }) {
  const services = useServices();
  const debounce = useService("debounceInput");
  return <TextFieldEntry id={id} element={element} label={t("Value")} debounce={debounce}
    getValue={() => { const e = definition(element).get(timerField(element)); return e ? e.body : ""; }}
    setValue={(value) => {
      const def = definition(element);
      const expr = services.bpmnFactory.create("bpmn:FormalExpression", { body: value || "" });
      expr.$parent = def;
      services.modeling.updateModdleProperties(element, def, { [timerField(element)]: expr });
    }} />;
}

// A scheduled start may run once per record (marshrut:select, read by the timers' service).
function selection(element) {
  return extensions(getBusinessObject(element), "marshrut:Select")[0] || null;
}

function writeSelection(element, patch, services) {
  const old = selection(element);
  const props = { entity: old && old.entity, idleDays: old && old.idleDays, openOnly: old && old.openOnly,
    ...patch };
  if (!props.entity) {
    setExtensions(element, "marshrut:Select", [], services);
    return;
  }
  const sel = services.bpmnFactory.create("marshrut:Select", {
    entity: props.entity, idleDays: props.idleDays || undefined, openOnly: props.openOnly || undefined,
    filters: old ? old.get("filters") : [] });
  sel.get("filters").forEach((f) => { f.$parent = sel; });
  setExtensions(element, "marshrut:Select", [sel], services);
}

function SelectEntity({ element, id }) {
  const services = useServices();
  return <SelectEntry id={id} element={element} label={t("Run for each record")}
    getOptions={() => [{ value: "", label: t("(none)") }, ...ENTITIES.map((e) => ({ value: e, label: t(e) }))]}
    getValue={() => (selection(element) && selection(element).entity) || ""}
    setValue={(entity) => writeSelection(element, { entity }, services)} />;
}

function SelectIdle({ element, id }) {
  const services = useServices();
  const debounce = useService("debounceInput");
  return <TextFieldEntry id={id} element={element} label={t("Not touched for (days)")} debounce={debounce}
    getValue={() => (selection(element) && selection(element).idleDays) || ""}
    validate={(v) => (v && !/^\d+$/.test(v) ? "1…3650" : null)}
    setValue={(v) => writeSelection(element, { idleDays: (v || "").trim() }, services)} />;
}

function SelectOpen({ element, id }) {
  const services = useServices();
  return <CheckboxEntry id={id} element={element} label={t("Open records only")}
    getValue={() => ((selection(element) && selection(element).openOnly) || "true") === "true"}
    setValue={(v) => writeSelection(element, { openOnly: v ? "" : "false" }, services)} />;
}

export function triggerGroup(element) {
  if (!is(element, "bpmn:StartEvent")) return null;
  const entries = [{ id: "marshrut-start-kind", element, component: StartKind }];
  if (kindOf(element) === "event") {
    entries.push({ id: "marshrut-trigger-entity", element, component: TriggerEntity },
      { id: "marshrut-trigger-event", element, component: TriggerEvent });
  } else if (kindOf(element) === "timer") {
    entries.push({ id: "marshrut-timer-kind", element, component: TimerKind },
      { id: "marshrut-timer-value", element, component: TimerValue });
    if (!inEventSubProcess(element)) {  // only a process's schedule runs once per record
      entries.push({ id: "marshrut-select-entity", element, component: SelectEntity });
    }
    if (selection(element) && !inEventSubProcess(element)) {
      entries.push({ id: "marshrut-select-idle", element, component: SelectIdle },
        { id: "marshrut-select-open", element, component: SelectOpen });
    }
  }
  return { id: "marshrut-trigger", label: t("Trigger"), entries };
}
