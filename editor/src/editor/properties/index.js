// The properties provider for Marshrut's BPMN extension (engine/extensions.py): it adds our
// groups after the standard BPMN ones. Registered at priority 500 so it runs after the
// BPMN provider (1000) and sees its groups.
import { conditionGroup } from "./ConditionProps";
import { decisionGroup } from "./DecisionProps";
import { processGroup } from "./ProcessProps";
import { serviceGroup } from "./ServiceProps";
import { timerGroup } from "./TimerProps";
import { triggerGroup } from "./TriggerProps";
import { userTaskGroups } from "./UserTaskProps";

// Standard groups our own replace (they would offer a second, unchecked way to edit the same).
const REPLACED = new Set(["message", "timer"]);

export function MarshrutPropertiesProvider(propertiesPanel) {
  this.getGroups = (element) => (groups) => {
    const ours = [triggerGroup(element), timerGroup(element), conditionGroup(element), ...userTaskGroups(element),
      serviceGroup(element), decisionGroup(element), processGroup(element)].filter(Boolean);
    // only the start event's own trigger group replaces the standard message/timer groups
    const replacing = !!triggerGroup(element);
    const kept = groups.filter((g) => !(replacing && REPLACED.has(g.id)));
    const general = kept.findIndex((g) => g.id === "general");
    kept.splice(general + 1, 0, ...ours);
    // ours and "General" start open: a newcomer should see what to fill in, not closed headers
    for (const g of [...ours, ...kept.filter((x) => x.id === "general")]) g.shouldOpen = true;
    return kept;
  };
  propertiesPanel.registerProvider(500, this);
}
MarshrutPropertiesProvider.$inject = ["propertiesPanel"];

export default {
  __init__: ["marshrutPropertiesProvider"],
  marshrutPropertiesProvider: ["type", MarshrutPropertiesProvider],
};
