// Timer events (start, intermediate, boundary): the time zone the timer reads its times in
// (marshrut:timezone), for durations whether they count working hours only
// (marshrut:businessHours), and for boundary timers whether they interrupt the activity
// (bpmn:cancelActivity; only one that does not may repeat with a cycle). The timer value
// itself is in the BPMN "Timer" group, or in our trigger group for start events.
import { CheckboxEntry, TextFieldEntry } from "@bpmn-io/properties-panel";
import { useService } from "bpmn-js-properties-panel";

import { t } from "../i18n";
import { inEventSubProcess } from "./TriggerProps";
import { attr, getBusinessObject, is, setAttrs } from "./util";

function timer(element) {
  return (getBusinessObject(element).eventDefinitions || []).find((d) => is(d, "bpmn:TimerEventDefinition"));
}

function Timezone({ element, id }) {
  const modeling = useService("modeling");
  const debounce = useService("debounceInput");
  return <TextFieldEntry id={id} element={element} label={t("Time zone")} debounce={debounce}
    description="Europe/Moscow" getValue={() => attr(element, "timezone")}
    setValue={(v) => setAttrs(element, { timezone: (v || "").trim() }, modeling)} />;
}

function BusinessHours({ element, id }) {
  const modeling = useService("modeling");
  return <CheckboxEntry id={id} element={element} label={t("Count working hours only")}
    getValue={() => attr(element, "businessHours") === "true"}
    setValue={(v) => setAttrs(element, { businessHours: v ? "true" : "" }, modeling)} />;
}

// A boundary timer interrupts its activity by default (it fires once); one that does not
// may repeat with a cycle ("remind every day until the task is done"), as deploy allows.
function Interrupting({ element, id }) {
  const modeling = useService("modeling");
  const bo = getBusinessObject(element);
  const cycle = !!(timer(element) && timer(element).get("timeCycle"));
  const interrupting = bo.cancelActivity !== false;
  return <CheckboxEntry id={id} element={element} label={t("Interrupt the activity")}
    description={cycle && interrupting ? t("A cycle repeats only on a timer that does not interrupt the activity")
      : cycle ? t("Runs its path at each occurrence while the activity is active") : undefined}
    getValue={() => bo.cancelActivity !== false}
    setValue={(v) => modeling.updateProperties(element, { cancelActivity: !!v })} />;
}

export function timerGroup(element) {
  const def = timer(element);
  if (!def) return null;
  const entries = [{ id: "marshrut-timezone", element, component: Timezone }];
  if ((!is(element, "bpmn:StartEvent") || inEventSubProcess(element)) && def.get("timeDuration")) {
    entries.push({ id: "marshrut-business-hours", element, component: BusinessHours });
  }
  if (is(element, "bpmn:BoundaryEvent")) {
    entries.push({ id: "marshrut-interrupting", element, component: Interrupting });
  }
  return { id: "marshrut-timer-group", label: t("Timer options"), entries };
}
