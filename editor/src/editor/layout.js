// Files deployed through the API are often written by hand, without diagram interchange; bpmn-js
// cannot show those ("no diagram to display"). They get a generated layout (bpmn-auto-layout)
// before they are opened; the semantic part, extensions included, is written back unchanged.
import { layoutProcess } from "bpmn-auto-layout";

const BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL";

export function hasDiagram(xml) {
  return /<([A-Za-z_][\w.-]*:)?BPMNDiagram[\s>/]/.test(xml || "");
}

/**
 * The auto-layout walks bpmn:incoming/bpmn:outgoing, which hand-written files usually leave
 * out (the sequence flows' sourceRef/targetRef say the same): add them where missing.
 */
export function withFlowRefs(xml) {
  const doc = new DOMParser().parseFromString(xml, "application/xml");
  if (doc.getElementsByTagName("parsererror").length) return xml;
  const byId = new Map([...doc.querySelectorAll("[id]")].map((e) => [e.getAttribute("id"), e]));
  const prefix = doc.documentElement.prefix;
  const has = (node, local, id) => [...node.children].some((c) =>
    c.namespaceURI === BPMN && c.localName === local && c.textContent.trim() === id);
  const add = (node, local, id) => {
    if (!node || has(node, local, id)) return;
    const ref = doc.createElementNS(BPMN, prefix ? `${prefix}:${local}` : local);
    ref.textContent = id;
    // incoming/outgoing come first among a flow node's children (after extensions/docs)
    const after = [...node.children].filter((c) => ["documentation", "extensionElements", "incoming", "outgoing"]
      .includes(c.localName)).pop();
    node.insertBefore(ref, after ? after.nextSibling : node.firstChild);
  };
  for (const flow of doc.getElementsByTagNameNS(BPMN, "sequenceFlow")) {
    const id = flow.getAttribute("id");
    add(byId.get(flow.getAttribute("sourceRef")), "outgoing", id);
    add(byId.get(flow.getAttribute("targetRef")), "incoming", id);
  }
  return new XMLSerializer().serializeToString(doc);
}

/** `{xml, laidOut}`: the file itself, or the file with a generated layout. */
export async function ensureDiagram(xml) {
  if (hasDiagram(xml)) return { xml, laidOut: false };
  return { xml: await layoutProcess(withFlowRefs(xml)), laidOut: true };
}
