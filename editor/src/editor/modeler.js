// The editor page (/processes/<key>/edit): bpmn-js Modeler with the properties panel, our
// moddle extension, properties provider, palette and lint rules; read-only viewer for those
// without the "design_processes" right. Page data comes from <script id="editor-config">.
import "bpmn-js/dist/assets/diagram-js.css";
import "bpmn-js/dist/assets/bpmn-js.css";
import "bpmn-js/dist/assets/bpmn-font/css/bpmn-embedded.css";
import "@bpmn-io/properties-panel/dist/assets/properties-panel.css";
import "bpmn-js-bpmnlint/dist/assets/css/bpmn-js-bpmnlint.css";
import "./editor.css";

import lintModule from "bpmn-js-bpmnlint";
import BpmnModeler from "bpmn-js/lib/Modeler";
import NavigatedViewer from "bpmn-js/lib/NavigatedViewer";
import { BpmnPropertiesPanelModule, BpmnPropertiesProviderModule } from "bpmn-js-properties-panel";

import lintConfig from "../../.bpmnlintrc";
import marshrut from "./descriptors/marshrut.json";
import DmnStore from "./dmn-store";
import { ensureDiagram } from "./layout";
import { TranslateModule } from "./i18n";
import { readConfig } from "./markers";
import { MarshrutPaletteModule } from "./palette";
import MarshrutPropertiesModule from "./properties/index";
import { wireToolbar } from "./toolbar";

const DmnStoreModule = { __init__: ["dmnStore"], dmnStore: ["type", DmnStore] };

function createModeler(config) {
  if (config.readOnly) {
    return new NavigatedViewer({ container: "#canvas", moddleExtensions: { marshrut },
      additionalModules: [DmnStoreModule, TranslateModule] });
  }
  return new BpmnModeler({
    container: "#canvas",
    propertiesPanel: { parent: "#properties" },
    linting: { bpmnlint: lintConfig, active: true },
    additionalModules: [BpmnPropertiesPanelModule, BpmnPropertiesProviderModule, MarshrutPropertiesModule,
      MarshrutPaletteModule, DmnStoreModule, lintModule, TranslateModule],
    moddleExtensions: { marshrut },
  });
}

/**
 * Fit the whole diagram into the canvas, clear of the palette on the left (a plain
 * fit-viewport puts the start event under it), and never zoom in past 100 %.
 */
export function fitDiagram(modeler, readOnly = false) {
  const canvas = modeler.get("canvas");
  canvas.zoom("fit-viewport", "auto");
  const palette = readOnly ? null : document.querySelector("#canvas .djs-palette");
  const container = document.querySelector("#canvas");
  const left = (palette && container
    ? palette.getBoundingClientRect().right - container.getBoundingClientRect().left : 0) + 48;
  const top = 60;  // room for the lint and error badges above the shapes
  const inner = canvas.viewbox().inner;
  const size = canvas.getSize ? canvas.getSize() : { width: 800, height: 600 };
  const scale = Math.min(1, (size.width - left - 24) / Math.max(inner.width, 1),
    (size.height - top - 24) / Math.max(inner.height, 1));
  canvas.viewbox({ x: inner.x - left / scale, y: inner.y - top / scale,
    width: size.width / scale, height: size.height / scale });
}

/** A new drawing's only shape (the blank template's start event) starts selected: the panel
 * then shows the first thing to fill in, and the context pad what to draw next. */
async function selectLoneStart(modeler) {
  // the panel misses a selection made before it has rendered its first header (notes §9)
  for (let i = 0; i < 150 && !document.querySelector("#properties .bio-properties-panel-header"); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const shapes = modeler.get("elementRegistry").filter((e) => e.type && !e.waypoints
    && e.type !== "label" && e.parent && e.parent === modeler.get("canvas").getRootElement());
  if (shapes.length !== 1 || shapes[0].type !== "bpmn:StartEvent") return;
  const selection = modeler.get("selection");
  const shown = () => (document.querySelector("#bio-properties-panel-id") || {}).value === shapes[0].id;
  for (let attempt = 0; attempt < 10 && !shown(); attempt++) {
    selection.select(null);
    selection.select(shapes[0]);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function main() {
  const config = readConfig();
  const modeler = createModeler(config);
  const state = { config, modeler, revision: config.draftRevision ?? null, key: config.key,
    readOnly: !!config.readOnly, lintIssues: {} };
  window.marshrutEditor = state;
  modeler.get("dmnStore").set(config.dmnXml || []);
  if (!state.readOnly) {
    modeler.get("eventBus").on("linting.completed", (e) => { state.lintIssues = e.issues; });
  }
  state.ready = ensureDiagram(config.bpmnXml).then(({ xml, laidOut }) => {
    state.openedXml = xml;
    state.laidOut = laidOut;
    return modeler.importXML(xml);
  }).then(async ({ warnings }) => {
    fitDiagram(modeler, state.readOnly);
    if (!state.readOnly) await selectLoneStart(modeler);
    if (warnings.length) {
      state.importWarnings = warnings.map((w) => w.message);
      const box = document.getElementById("editor-warnings");
      if (box) {
        box.hidden = false;
        box.textContent = `${warnings.length} warning(s) on import: ` + state.importWarnings.slice(0, 3).join("; ");
      }
    }
    return { warnings: warnings.map((w) => w.message) };
  });
  window.bpmnReady = state.ready;
  wireToolbar(state);
  await state.ready;
}

main().catch((err) => {
  const box = document.getElementById("editor-status");
  if (box) {
    box.textContent = err.message || String(err);
    box.className = "flash flash-error";
  }
  window.bpmnReady = Promise.reject(err);
  throw err;
});
