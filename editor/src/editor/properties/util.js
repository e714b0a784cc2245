// Reading and writing our extension elements through bpmn-js commands (undoable, and the
// panel re-renders on every change). Attributes go through modeling.updateProperties.
import { getBusinessObject, is } from "bpmn-js/lib/util/ModelUtil";

export { getBusinessObject, is };

/** The marshrut:<type> children of an element's bpmn:extensionElements. */
export function extensions(bo, type) {
  const ext = bo.get("extensionElements");
  return ext ? ext.get("values").filter((v) => v.$type === type) : [];
}

/**
 * Replace all marshrut:<type> children by `items` (moddle elements made by bpmnFactory),
 * keeping every other extension element (foreign ones included) where it was.
 */
export function setExtensions(element, type, items, { modeling, bpmnFactory }) {
  const bo = getBusinessObject(element);
  let ext = bo.get("extensionElements");
  const others = ext ? ext.get("values").filter((v) => v.$type !== type) : [];
  const values = [...others, ...items];
  if (!ext) {
    ext = bpmnFactory.create("bpmn:ExtensionElements", { values });
    ext.$parent = bo;
    values.forEach((v) => { v.$parent = ext; });
    modeling.updateProperties(element, { extensionElements: ext });
    return;
  }
  values.forEach((v) => { v.$parent = ext; });
  if (!values.length) {
    modeling.updateProperties(element, { extensionElements: undefined });
  } else {
    modeling.updateModdleProperties(element, ext, { values });
  }
}

/** Set marshrut attributes; empty strings remove the attribute. */
export function setAttrs(element, attrs, modeling) {
  const props = {};
  for (const [k, v] of Object.entries(attrs)) {
    props[`marshrut:${k}`] = v === "" || v === null ? undefined : v;
  }
  modeling.updateProperties(element, props);
}

export function attr(element, name) {
  return getBusinessObject(element).get(`marshrut:${name}`) || "";
}

/** The CRM entity the process reacts to, from its start events' messages ("deal.created"). */
export function processEntity(element) {
  let bo = getBusinessObject(element);
  while (bo && !is(bo, "bpmn:Process") && bo.$parent) {
    bo = bo.$parent;
  }
  if (bo && is(bo, "bpmn:Participant")) bo = bo.processRef;
  const elements = (bo && bo.flowElements) || [];
  for (const el of elements) {
    if (!is(el, "bpmn:StartEvent")) continue;
    for (const def of el.eventDefinitions || []) {
      const name = def.messageRef && def.messageRef.name;
      if (name && name.includes(".")) return name.split(".")[0];
    }
  }
  return null;
}

export function definitionsOf(element) {
  let bo = getBusinessObject(element);
  while (bo.$parent) bo = bo.$parent;
  return bo;
}
