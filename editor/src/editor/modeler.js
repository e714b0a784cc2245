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
import { readConfig } from "./markers";
import { MarshrutPaletteModule } from "./palette";
import MarshrutPropertiesModule from "./properties/index";
import { wireToolbar } from "./toolbar";

const DmnStoreModule = { __init__: ["dmnStore"], dmnStore: ["type", DmnStore] };

function createModeler(config) {
  if (config.readOnly) {
    return new NavigatedViewer({ container: "#canvas", moddleExtensions: { marshrut },
      additionalModules: [DmnStoreModule] });
  }
  return new BpmnModeler({
    container: "#canvas",
    propertiesPanel: { parent: "#properties" },
    linting: { bpmnlint: lintConfig, active: true },
    additionalModules: [BpmnPropertiesPanelModule, BpmnPropertiesProviderModule, MarshrutPropertiesModule,
      MarshrutPaletteModule, DmnStoreModule, lintModule],
    moddleExtensions: { marshrut },
  });
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
  }).then(({ warnings }) => {
    modeler.get("canvas").zoom("fit-viewport", "auto");
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
