// What bpmn-js cannot show, it does not save: diagram shapes and edges drawn inside an
// expanded call activity (the MIWG models B.1.0/B.2.0 have them), for instance. So that
// opening and saving a file never loses its layout, every save puts back the DI shapes and
// edges of the file as it was opened whose element still exists but lost its shape (and
// those that name no element at all, which bpmn-js skips with a warning).
const DI = "http://www.omg.org/spec/BPMN/20100524/DI";
const DECLARATION = /^\s*<\?xml[^>]*\?>\s*/;

function diElements(doc) {
  return [...doc.getElementsByTagNameNS(DI, "BPMNShape"), ...doc.getElementsByTagNameNS(DI, "BPMNEdge")];
}

/** `saved` with the DI elements of `original` that bpmn-js dropped put back into their planes. */
export function keepLostDiagramElements(original, saved) {
  if (!original) return saved;
  const parser = new DOMParser();
  const before = parser.parseFromString(original, "application/xml");
  const after = parser.parseFromString(saved, "application/xml");
  if (before.getElementsByTagName("parsererror").length || after.getElementsByTagName("parsererror").length) {
    return saved;
  }
  const drawn = new Set(diElements(after).map((e) => e.getAttribute("bpmnElement")));
  const ids = new Set([...after.querySelectorAll("[id]")].map((e) => e.getAttribute("id")));
  const lost = diElements(before).filter((e) => {
    const ref = e.getAttribute("bpmnElement");
    if (ids.has(e.getAttribute("id"))) return false;
    // an element that still exists but lost its shape, or a shape that never pointed anywhere
    return ref ? !drawn.has(ref) && ids.has(ref) : true;
  });
  if (!lost.length) return saved;
  const planes = [...after.getElementsByTagNameNS(DI, "BPMNPlane")];
  if (!planes.length) return saved;
  for (const node of lost) {
    const origin = node.parentNode && node.parentNode.getAttribute && node.parentNode.getAttribute("bpmnElement");
    const plane = planes.find((p) => p.getAttribute("bpmnElement") === origin) || planes[0];
    plane.appendChild(after.importNode(node, true));
  }
  const declaration = (saved.match(DECLARATION) || ['<?xml version="1.0" encoding="UTF-8"?>\n'])[0];
  return declaration + new XMLSerializer().serializeToString(after.documentElement) + "\n";
}
