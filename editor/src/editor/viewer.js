// Read-only diagrams: an instance (path, active tokens, incidents, per-element counts), a
// version's heatmap, and two versions side by side with what changed. Page data comes from
// <script id="editor-config"> (see web/templates/editor/*.html).
import "bpmn-js/dist/assets/diagram-js.css";
import "bpmn-js/dist/assets/bpmn-js.css";
import "bpmn-js/dist/assets/bpmn-font/css/bpmn-embedded.css";
import "./editor.css";

import NavigatedViewer from "bpmn-js/lib/NavigatedViewer";

import marshrut from "./descriptors/marshrut.json";
import { ensureDiagram } from "./layout";
import { readConfig, showCounts, showPath } from "./markers";

async function open(container, xml) {
  const viewer = new NavigatedViewer({ container, moddleExtensions: { marshrut } });
  await viewer.importXML((await ensureDiagram(xml)).xml);
  viewer.get("canvas").zoom("fit-viewport", "auto");
  return viewer;
}

const MODES = {
  async instance(config) {
    const viewer = await open("#canvas", config.bpmnXml);
    showPath(viewer, config.trace);
    showCounts(viewer, config.trace.counts);
    // multi-instance and loop progress ("2/3", "×4") at the top right of the activity
    showCounts(viewer, config.trace.progress || {}, {
      type: "progress", className: "marshrut-count progress", position: { top: -10, right: 10 },
    });
    return { viewer };
  },

  async heatmap(config) {
    const viewer = await open("#canvas", config.bpmnXml);
    showCounts(viewer, config.heatmap.passed, { heat: true, className: "marshrut-count heat" });
    showCounts(viewer, config.heatmap.active, { type: "active-count", className: "marshrut-count active" });
    const canvas = viewer.get("canvas");
    for (const id of Object.keys(config.heatmap.incidents)) {
      if (viewer.get("elementRegistry").get(id)) canvas.addMarker(id, "incident");
    }
    return { viewer };
  },

  async compare(config) {
    const [left, right] = await Promise.all([open("#canvas-from", config.fromXml), open("#canvas-to", config.toXml)]);
    const mark = (viewer, ids, cls) => {
      for (const id of ids) if (viewer.get("elementRegistry").get(id)) viewer.get("canvas").addMarker(id, cls);
    };
    mark(left, config.diff.removed.map((e) => e.id), "diff-removed");
    mark(right, config.diff.added.map((e) => e.id), "diff-added");
    mark(left, config.diff.changed.map((e) => e.id), "diff-changed");
    mark(right, config.diff.changed.map((e) => e.id), "diff-changed");
    return { left, right };
  },
};

const config = readConfig();
window.bpmnReady = MODES[config.mode](config).then((views) => {
  window.marshrutViewer = views;
  return true;
});
