// The process itself: priority among the processes started by one event (marshrut:priority,
// lower runs first) and named constants (marshrut:variable) the conditions may use.
import { TextFieldEntry } from "@bpmn-io/properties-panel";
import { useService } from "bpmn-js-properties-panel";

import { t } from "../i18n";
import { extensions, getBusinessObject, is, setExtensions } from "./util";

const TYPES = ["string", "integer", "decimal", "boolean", "date", "json"];

function processElement(element) {
  return is(element, "bpmn:Process") || is(element, "bpmn:Participant");
}

function processBo(element) {
  const bo = getBusinessObject(element);
  return is(bo, "bpmn:Participant") ? bo.processRef : bo;
}

function Priority({ element, id }) {
  const modeling = useService("modeling");
  const debounce = useService("debounceInput");
  return <TextFieldEntry id={id} element={element} label={t("Priority (lower runs first)")} debounce={debounce}
    getValue={() => processBo(element).get("marshrut:priority") || ""}
    validate={(v) => (v && !/^-?\d+$/.test(v) ? "1, 10, 100 …" : null)}
    setValue={(v) => {
      const props = { "marshrut:priority": v ? v.trim() : undefined };
      if (is(element, "bpmn:Participant")) modeling.updateModdleProperties(element, processBo(element), props);
      else modeling.updateProperties(element, props);
    }} />;
}

function Variables({ element, id }) {
  const modeling = useService("modeling");
  const bpmnFactory = useService("bpmnFactory");
  const bo = processBo(element);
  const rows = extensions(bo, "marshrut:Variable").map((v) => ({ label: v.label || "", name: v.name || "", type: v.type || "string", value: v.value || "" }));
  const write = (next) => {
    const items = next.map((r) => bpmnFactory.create("marshrut:Variable",
      { name: r.name, type: r.type, value: r.value, label: r.label || undefined }));
    if (is(element, "bpmn:Participant")) {
      // the variables belong to the participant's process, not to the pool's shape
      let ext = bo.get("extensionElements");
      if (!ext) {
        ext = bpmnFactory.create("bpmn:ExtensionElements", { values: [] });
        ext.$parent = bo;
        modeling.updateModdleProperties(element, bo, { extensionElements: ext });
      }
      const values = [...ext.get("values").filter((v) => v.$type !== "marshrut:Variable"), ...items];
      values.forEach((v) => { v.$parent = ext; });
      modeling.updateModdleProperties(element, ext, { values });
    } else {
      setExtensions(element, "marshrut:Variable", items, { modeling, bpmnFactory });
    }
  };
  const update = (i, patch) => write(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return <div class="bio-properties-panel-entry marshrut-list" data-entry-id={id}>
    {rows.map((r, i) => <fieldset class="marshrut-item" data-test={`variable-${i}`}>
      <label class="bio-properties-panel-label">{t("Label")}
        <input class="bio-properties-panel-input" data-test={`variable-${i}-label`} value={r.label}
          onChange={(e) => update(i, { label: e.target.value })} /></label>
      <label class="bio-properties-panel-label">{t("Value")}
        <input class="bio-properties-panel-input" data-test={`variable-${i}-value`} value={r.value}
          onChange={(e) => update(i, { value: e.target.value })} /></label>
      <div class="marshrut-row">
        <label class="small">{t("Name in conditions")}
          <input class="bio-properties-panel-input" value={r.name}
            onChange={(e) => update(i, { name: e.target.value.trim() })} /></label>
        <label class="small">{t("Type")}
          <select class="bio-properties-panel-input" value={r.type} onChange={(e) => update(i, { type: e.target.value })}>
            {TYPES.map((ty) => <option value={ty}>{t(ty)}</option>)}
          </select></label>
        <button type="button" class="marshrut-link" title={t("Remove")}
          onClick={() => write(rows.filter((_x, j) => j !== i))}>×</button>
      </div>
    </fieldset>)}
    <button type="button" class="marshrut-button"
      onClick={() => write([...rows, { name: `var${rows.length + 1}`, type: "decimal", value: "0" }])}>
      + {t("Add variable")}</button>
  </div>;
}

export function processGroup(element) {
  if (!processElement(element) || !processBo(element)) return null;
  return { id: "marshrut-process-group", label: t("Process settings"), entries: [
    { id: "marshrut-process-priority", element, component: Priority },
    { id: "marshrut-variables", element, component: Variables },
  ] };
}
