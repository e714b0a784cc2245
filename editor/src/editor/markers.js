// Marking shapes: server validation errors, a dry run's or an instance's path, counts.
// Works on any bpmn-js instance (Modeler or NavigatedViewer).

function has(viewer, id) {
  return !!id && !!viewer.get("elementRegistry").get(id);
}

export function clearMarkers(viewer, classes, overlayType) {
  const canvas = viewer.get("canvas");
  for (const el of viewer.get("elementRegistry").getAll()) {
    for (const c of classes) canvas.removeMarker(el.id, c);
  }
  if (overlayType) viewer.get("overlays").remove({ type: overlayType });
}

/** Server errors [{element_id, message}] as red shapes with a badge; returns those without a shape. */
export function showErrors(viewer, errors) {
  clearMarkers(viewer, ["server-error"], "server-error");
  const canvas = viewer.get("canvas");
  const overlays = viewer.get("overlays");
  const loose = [];
  const byElement = new Map();
  for (const e of errors) {
    if (!has(viewer, e.element_id)) { loose.push(e); continue; }
    byElement.set(e.element_id, [...(byElement.get(e.element_id) || []), e.message]);
  }
  for (const [id, messages] of byElement) {
    canvas.addMarker(id, "server-error");
    const badge = document.createElement("div");
    badge.className = "marshrut-error-badge";
    badge.setAttribute("data-element", id);
    badge.title = messages.join("\n");
    badge.textContent = "!";
    const text = document.createElement("div");
    text.className = "marshrut-error-text";
    text.textContent = messages.join("; ");
    badge.appendChild(text);
    overlays.add(id, "server-error", { position: { top: -12, right: 12 }, html: badge });
  }
  return loose;
}

/** Completed elements and flows (`done`), where it stands (`active`), incidents. */
export function showPath(viewer, { done = [], flows = [], active = [], incidents = [] }) {
  clearMarkers(viewer, ["done", "active", "incident"], "incident");
  const canvas = viewer.get("canvas");
  for (const id of [...done, ...flows]) if (has(viewer, id)) canvas.addMarker(id, "done");
  for (const id of active) if (has(viewer, id)) canvas.addMarker(id, "active");
  for (const inc of incidents) {
    if (!has(viewer, inc.element_id)) continue;
    canvas.addMarker(inc.element_id, "incident");
    const badge = document.createElement("div");
    badge.className = "marshrut-error-badge";
    badge.title = inc.message;
    badge.textContent = "⚡";
    viewer.get("overlays").add(inc.element_id, "incident", { position: { top: -12, right: 12 }, html: badge });
  }
}

/** Count badges ({element id: n}); with `heat`, shapes are tinted by n / max. Values may be
 * text too ("2/3": a multi-instance activity's progress), placed with `position`. */
export function showCounts(viewer, counts, { type = "count", className = "marshrut-count", heat = false,
  position = { bottom: 8, left: -8 } } = {}) {
  const overlays = viewer.get("overlays");
  overlays.remove({ type });
  const canvas = viewer.get("canvas");
  const max = Math.max(1, ...Object.values(counts).filter((n) => typeof n === "number"));
  for (const [id, n] of Object.entries(counts)) {
    if (!has(viewer, id) || !n) continue;
    const badge = document.createElement("div");
    badge.className = className;
    badge.setAttribute("data-element", id);
    badge.textContent = String(n);
    overlays.add(id, type, { position, html: badge });
    if (heat) {
      for (let i = 1; i <= 5; i++) canvas.removeMarker(id, `heat-${i}`);
      canvas.addMarker(id, `heat-${Math.max(1, Math.ceil((n / max) * 5))}`);
    }
  }
}

export function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function readConfig(id = "editor-config") {
  const el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : {};
}
