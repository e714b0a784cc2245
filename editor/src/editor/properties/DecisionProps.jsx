// Business-rule task: pick the decision table (marshrut:decision = a dmn:decision id among the
// drawing's DMN files), create a new one, or edit it in dmn-js.
import { SelectEntry } from "@bpmn-io/properties-panel";
import { useEffect, useState } from "@bpmn-io/properties-panel/preact/hooks";
import { useService } from "bpmn-js-properties-panel";

import { newDecisionXml } from "../dmn-store";
import { t } from "../i18n";
import { attr, is, setAttrs } from "./util";

function useDecisions() {
  const store = useService("dmnStore");
  const eventBus = useService("eventBus");
  const [decisions, setDecisions] = useState(() => store.decisions());
  useEffect(() => {
    const update = () => setDecisions(store.decisions());
    eventBus.on("dmnStore.changed", update);
    return () => eventBus.off("dmnStore.changed", update);
  }, []);
  return decisions;
}

function Decision({ element, id }) {
  const modeling = useService("modeling");
  const decisions = useDecisions();
  const current = attr(element, "decision");
  const options = [{ value: "", label: t("(none)") }, ...decisions.map((d) => ({ value: d.id, label: `${d.name} (${d.id})` }))];
  if (current && !decisions.some((d) => d.id === current)) options.push({ value: current, label: current });
  return <SelectEntry id={id} element={element} label={t("Decision")} getOptions={() => options}
    getValue={() => current} setValue={(v) => setAttrs(element, { decision: v }, modeling)} />;
}

function TableButtons({ element, id }) {
  const modeling = useService("modeling");
  const store = useService("dmnStore");
  const decisions = useDecisions();
  const current = decisions.find((d) => d.id === attr(element, "decision"));
  const edit = async (decision) => {
    const { editDecision } = await import("../dmn-editor.js");
    const xml = await editDecision(store.files[decision.index], decision.id,
      { readOnly: !!window.marshrutEditor && window.marshrutEditor.readOnly });
    if (xml) store.put(decision.index, xml);
  };
  return <div class="bio-properties-panel-entry marshrut-row" data-entry-id={id}>
    <button type="button" class="marshrut-button" data-test="dmn-new" onClick={() => {
      const base = (element.businessObject.name || element.id).replace(/[^A-Za-z0-9_]/g, "_").replace(/^[^A-Za-z_]/, "_");
      let decisionId = `decision_${base}`.slice(0, 60);
      const taken = new Set(store.decisions().map((d) => d.id));
      for (let i = 2; taken.has(decisionId); i++) decisionId = `decision_${base}_${i}`;
      const index = store.put(null, newDecisionXml(decisionId, element.businessObject.name || decisionId));
      setAttrs(element, { decision: decisionId }, modeling);
      edit({ id: decisionId, index });
    }}>+ {t("New table")}</button>
    {current && <button type="button" class="marshrut-button" data-test="dmn-edit"
      onClick={() => edit(current)}>{t("Edit table")}</button>}
  </div>;
}

export function decisionGroup(element) {
  if (!is(element, "bpmn:BusinessRuleTask")) return null;
  return { id: "marshrut-decision-group", label: t("Decision table"), entries: [
    { id: "marshrut-decision", element, component: Decision },
    { id: "marshrut-decision-buttons", element, component: TableButtons },
  ] };
}
