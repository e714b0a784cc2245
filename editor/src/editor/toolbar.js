// The editor's toolbar: save draft, validate, dry run, deploy, import/export. Buttons are
// rendered by the page (web/templates/editor/edit.html) with data-action attributes.
import { api, cached } from "./api";
import { lang, t } from "./i18n";
import { clearMarkers, download, showErrors, showPath } from "./markers";
import { ensureDiagram } from "./layout";
import { keepLostDiagramElements } from "./preserve";
import { processEntity } from "./properties/util";

/** Show a message; `result` (e.g. "saved:3") is kept in data-result for scripts and tests. */
function status(text, kind = "info", result = kind) {
  const box = document.getElementById("editor-status");
  if (!box) return;
  box.textContent = text;
  box.setAttribute("data-result", result);
  box.className = `flash flash-${kind}`;
  box.hidden = false;
}

function listProblems(state, errors) {
  const list = document.getElementById("editor-problems");
  if (!list) return;
  list.innerHTML = "";
  for (const e of errors) {
    const li = document.createElement("li");
    li.setAttribute("data-element", e.element_id || "");
    li.textContent = e.element_id ? `${e.element_id}: ${e.message}` : e.message;
    if (e.element_id && state.modeler.get("elementRegistry").get(e.element_id)) {
      li.classList.add("clickable");
      li.addEventListener("click", () => {
        const el = state.modeler.get("elementRegistry").get(e.element_id);
        state.modeler.get("selection").select(el);
        state.modeler.get("canvas").scrollToElement(el);
      });
    }
    list.appendChild(li);
  }
  list.hidden = !errors.length;
}

/** The drawing as saved: bpmn-js's XML plus the layout it could not show (preserve.js). */
async function savedXml(state) {
  const { xml } = await state.modeler.saveXML({ format: true });
  return keepLostDiagramElements(state.openedXml, xml);
}

async function sources(state) {
  return { bpmn_xml: await savedXml(state), dmn_xml: state.modeler.get("dmnStore").files };
}

function failed(state, err) {
  if (err.errors && err.errors.length) {
    showErrors(state.modeler, err.errors);
    listProblems(state, err.errors);
  }
  const fields = Object.entries(err.fields || {}).map(([k, v]) => `${k}: ${v}`).join("; ");
  status(fields && !err.errors.length ? `${err.message} (${fields})` : err.message, "error",
    `error:${err.code || err.status}`);
}

const ACTIONS = {
  async save(state) {
    const body = await sources(state);
    const draft = await api("PUT", "/editor/drafts", { ...body, revision: state.revision });
    state.revision = draft.revision;
    if (draft.key !== state.key) {
      state.key = draft.key;
      history.replaceState(null, "", `/processes/${encodeURIComponent(draft.key)}/edit`);
    }
    status(t("Draft saved") + ` (${t("revision")} ${draft.revision})`, "success", `saved:${draft.revision}`);
  },

  async validate(state) {
    const result = await api("POST", "/editor/validate", await sources(state));
    const loose = showErrors(state.modeler, result.errors);
    listProblems(state, result.errors);
    status(result.valid ? t("No problems: the process can be deployed.")
      : `${result.errors.length} ${t("problem(s) found")}` + (loose.length ? ` (${loose.length} ${t("not on a shape")})` : ""),
    result.valid ? "success" : "error", result.valid ? "valid" : `invalid:${result.errors.length}`);
    return result;
  },

  async dryRun(state) {
    const dialog = document.getElementById("dry-run-dialog");
    const entity = processEntity(state.modeler.get("canvas").getRootElement()) || "deal";
    dialog.querySelector("[name=entity_type]").value = entity;
    await renderValueInputs(dialog, entity);
    dialog.showModal();
  },

  async deploy(state) {
    const activate = !!(document.getElementById("deploy-activate") || {}).checked;
    const definition = await api("POST", "/editor/deploy", { ...(await sources(state)), activate });
    state.revision = null;
    showErrors(state.modeler, []);
    listProblems(state, []);
    status(`${t("Deployed as version")} ${definition.version}` + (definition.active ? ` (${t("active")})` : ""),
      "success", `deployed:${definition.version}`);
    const link = document.getElementById("editor-versions-link");
    if (link) link.hidden = false;
    return definition;
  },

  async exportBpmn(state) {
    download(`${state.key}.bpmn`, await savedXml(state), "application/xml");
  },

  async exportSvg(state) {
    const { svg } = await state.modeler.saveSVG();
    download(`${state.key}.svg`, svg, "image/svg+xml");
  },

  async importBpmn(state) {
    document.getElementById("import-file").click();
  },

  async toggleLint(state) {
    state.modeler.get("linting").toggle();
  },
};

const PLURAL = { deal: "deals", lead: "leads", contact: "contacts", company: "companies" };

/** The latest records the user may read, offered in the record id field. */
async function offerRecords(dialog, entity) {
  const list = dialog.querySelector("#dry-run-records");
  if (!list) return;
  list.innerHTML = "";
  try {
    const { items } = await api("GET", `/${PLURAL[entity]}?per_page=30&sort=-id`);
    for (const r of items) {
      const label = r.title || r.full_name || [r.first_name, r.last_name].filter(Boolean).join(" ");
      list.appendChild(new Option(`${label}${r.amount ? ` (${r.amount})` : ""}`, String(r.id)));
    }
  } catch (err) {
    // the id can still be typed
  }
}

async function renderValueInputs(dialog, entity) {
  const box = dialog.querySelector("#dry-run-values");
  if (box.getAttribute("data-entity") === entity) return;
  offerRecords(dialog, entity);
  box.setAttribute("data-entity", entity);
  box.innerHTML = "";
  const { fields } = await cached(`/fields/${entity}`);
  for (const f of fields) {
    if (f.readonly || ["phones", "emails", "refs", "text"].includes(f.type)) continue;
    const label = document.createElement("label");
    label.textContent = (f.labels && (f.labels[lang()] || f.labels.en)) || f.name;
    let input;
    if (f.choices && f.choices.length) {
      input = document.createElement("select");
      input.appendChild(new Option("—", ""));
      f.choices.forEach((c) => input.appendChild(new Option(c, c)));
    } else if (f.type === "bool") {
      input = document.createElement("select");
      [["", "—"], ["true", t("is true")], ["false", t("is false")]].forEach(([v, l]) => input.appendChild(new Option(l, v)));
    } else {
      input = document.createElement("input");
      input.type = "text";
    }
    input.name = `value:${f.name}`;
    input.setAttribute("data-type", f.type);
    label.appendChild(input);
    box.appendChild(label);
  }
}

function typedValues(form) {
  const values = {};
  for (const el of form.querySelectorAll("[name^='value:']")) {
    const raw = el.value.trim();
    if (!raw) continue;
    const name = el.name.slice(6);
    const type = el.getAttribute("data-type");
    if (type === "bool") values[name] = raw === "true";
    else if (["int", "user", "ref"].includes(type) && /^\d+$/.test(raw)) values[name] = parseInt(raw, 10);
    else if (type === "money") values[name] = raw.replace(/[\s\u00a0]/g, "").replace(",", ".");
    else values[name] = raw;
  }
  return values;
}

function renderDryRun(state, result) {
  const out = document.getElementById("dry-run-result");
  out.innerHTML = "";
  if (result.errors.length) {
    showErrors(state.modeler, result.errors);
    listProblems(state, result.errors);
    out.textContent = t("The drawing has problems; fix them first.");
    return;
  }
  showPath(state.modeler, { done: result.path, flows: result.flows, active: result.active,
    incidents: result.incident ? [result.incident] : [] });
  const add = (tag, text, cls) => {
    const el = document.createElement(tag);
    el.textContent = text;
    if (cls) el.className = cls;
    out.appendChild(el);
    return el;
  };
  add("p", `${t("Status")}: ${t(result.status)}. ${t("Path")}: ${result.path.join(" → ") || "—"}`, "dry-path");
  for (const task of result.tasks) {
    const who = task.assignee ? task.assignee.full_name
      : task.candidates.map((c) => c.full_name).join(", ");
    add("p", `${t("Task")} «${task.name}» → ${who}${task.note ? ` (${task.note})` : ""}`, "dry-task");
  }
  for (const call of result.service_calls) {
    add("p", `${t("Would call")} ${call.operation} ${JSON.stringify(call.params)}`, "dry-call");
  }
  if (result.incident) add("p", `${t("Incident")}: ${result.incident.element_id}: ${result.incident.message}`, "dry-incident");
  for (const w of result.waiting) add("p", `${t("Waits for")} ${w.event}`, "dry-wait");
  add("p", t("Nothing was saved and no operation was called."), "muted small");
}

async function run(state, name, button) {
  if (button) button.disabled = true;
  try {
    return await ACTIONS[name](state);
  } catch (err) {
    failed(state, err);
    return null;
  } finally {
    if (button) button.disabled = false;
  }
}

export function wireToolbar(state) {
  state.run = (name) => run(state, name);
  state.sources = () => sources(state);
  state.open = async (source) => {
    const { xml } = await ensureDiagram(source);
    const { warnings } = await state.modeler.importXML(xml);
    state.openedXml = xml;
    return warnings.map((w) => w.message);
  };
  state.roundTrip = async (xml) => {
    const warnings = await state.open(xml);
    return { warnings, xml: await savedXml(state) };
  };
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("[data-action]");
    if (button && ACTIONS[button.getAttribute("data-action")] && !button.closest(".marshrut-dmn-dialog")) {
      event.preventDefault();
      if (button.hasAttribute("data-confirm") && !window.confirm(button.getAttribute("data-confirm"))) return;
      run(state, button.getAttribute("data-action"), button);
    }
  });
  const file = document.getElementById("import-file");
  if (file) {
    file.addEventListener("change", async () => {
      const f = file.files[0];
      if (!f) return;
      try {
        const warnings = await state.open(await f.text());
        state.modeler.get("canvas").zoom("fit-viewport", "auto");
        status(`${t("Imported")} ${f.name}` + (warnings.length ? ` — ${warnings.length} warning(s)` : ""), "info");
      } catch (err) {
        status(err.message, "error");
      }
      file.value = "";
    });
  }
  const form = document.getElementById("dry-run-form");
  if (form) {
    form.querySelector("[name=entity_type]").addEventListener("change", (e) =>
      renderValueInputs(form.closest("dialog"), e.target.value));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const entityType = form.querySelector("[name=entity_type]").value;
      const id = form.querySelector("[name=entity_id]").value.trim();
      const body = { ...(await sources(state)), entity_type: entityType };
      if (id) body.entity_id = /^\d+$/.test(id) ? parseInt(id, 10) : id;
      else body.values = typedValues(form);
      try {
        renderDryRun(state, await api("POST", "/editor/dry-run", body));
      } catch (err) {
        document.getElementById("dry-run-result").textContent = err.message +
          (Object.keys(err.fields).length ? " — " + Object.entries(err.fields).map(([k, v]) => `${k}: ${v}`).join("; ") : "");
      }
    });
    form.querySelector("[data-close]").addEventListener("click", () => {
      form.closest("dialog").close();
      clearMarkers(state.modeler, ["done", "active", "incident"], "incident");
    });
  }
}
