// The decision table editor: dmn-js in a dialog, loaded on first use (a separate chunk; its
// CSS is dist/editor/dmn.css, linked by the editor page because a lazily loaded chunk's CSS
// is not injected by esbuild).
import DmnModeler from "dmn-js/lib/Modeler";

/**
 * Open `xml` in a modal dmn-js modeler on the decision table of `decisionId`.
 * Resolves with the edited XML on "Apply", or null when cancelled.
 */
export async function editDecision(xml, decisionId, { readOnly = false, labels = {} } = {}) {
  const dialog = document.createElement("dialog");
  dialog.className = "marshrut-dmn-dialog";
  dialog.innerHTML = `<div class="marshrut-dmn-canvas"></div>
    <div class="marshrut-dmn-actions">
      <span class="marshrut-dmn-error" role="alert"></span>
      <button type="button" class="btn" data-action="cancel">${labels.cancel || "Cancel"}</button>
      ${readOnly ? "" : `<button type="button" class="btn btn-primary" data-action="apply">${labels.apply || "Apply"}</button>`}
    </div>`;
  document.body.appendChild(dialog);
  dialog.showModal();
  const modeler = new DmnModeler({ container: dialog.querySelector(".marshrut-dmn-canvas") });
  window.dmnModeler = modeler;  // for tests and the console
  try {
    await modeler.importXML(xml);
    const view = modeler.getViews().find((v) => v.type === "decisionTable" && v.element.id === decisionId)
      || modeler.getViews().find((v) => v.type === "decisionTable");
    if (view) await modeler.open(view);
  } catch (err) {
    dialog.querySelector(".marshrut-dmn-error").textContent = err.message;
  }
  return new Promise((resolve) => {
    dialog.addEventListener("click", async (event) => {
      const action = event.target.getAttribute && event.target.getAttribute("data-action");
      if (!action) return;
      let result = null;
      if (action === "apply") {
        try {
          result = (await modeler.saveXML({ format: true })).xml;
        } catch (err) {
          dialog.querySelector(".marshrut-dmn-error").textContent = err.message;
          return;
        }
      }
      modeler.destroy();
      dialog.close();
      dialog.remove();
      window.dmnModeler = undefined;
      resolve(result);
    });
  });
}
