// The editor's toolbar: save draft, validate, dry run, deploy, import/export. Buttons are
// rendered by the page (web/templates/editor/edit.html) with data-action attributes.
import { api, cached, csrfToken } from "./api";
import { count, lang, t, translate } from "./i18n";
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
    if (e.category === "warn") li.className = "warning";
    li.textContent = e.element_id ? `${elementLabel(state.modeler, e.element_id)}: ${e.message}` : e.message;
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

/** How a person calls an element: its name, else its translated type (the id if it is gone). */
export function elementLabel(modeler, id) {
  const el = modeler.get("elementRegistry").get(id);
  if (!el) return id;
  const bo = el.businessObject;
  if (bo && bo.name && bo.name.trim()) return `«${bo.name.trim()}»`;
  const type = el.type.replace(/^bpmn:/, "").replace(/(\B[A-Z])/g, " $1");
  return translate(type);
}

/** bpmnlint's findings as [{element_id, message, category}] in the page's language. */
async function lintProblems(state) {
  let linting;
  try {
    linting = state.modeler.get("linting");
  } catch (err) {
    return [];
  }
  const issues = await linting.lint();
  const out = [];
  for (const reports of Object.values(issues || {})) {
    for (const r of reports) {
      out.push({ element_id: r.id || "", message: translate(r.message), category: r.category === "error" ? "error" : "warn" });
    }
  }
  return out;
}

/**
 * Everything deploy would refuse (the server's validation) plus the linter's findings, so
 * "Validate" never says "no problems" while the canvas shows a marker.
 */
async function checkAll(state, body) {
  const result = await api("POST", "/editor/validate", body);
  const lint = await lintProblems(state);
  const flagged = new Set(result.errors.map((e) => e.element_id).filter(Boolean));
  const fresh = lint.filter((i) => !i.element_id || !flagged.has(i.element_id));
  const errors = [...result.errors.map((e) => ({ ...e, category: "error" })), ...fresh.filter((i) => i.category === "error")];
  // one line per element: the linter often repeats what the server said in other words
  const seen = new Set();
  const unique = errors.filter((e) => {
    const key = e.element_id ? `${e.element_id}` : `:${e.message}`;
    if (e.element_id && seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return { errors: unique, warnings: fresh.filter((i) => i.category !== "error") };
}

function reportCheck(state, { errors, warnings }) {
  const loose = showErrors(state.modeler, errors);
  listProblems(state, [...errors, ...warnings]);
  if (errors.length) {
    const text = count(errors.length, ["problem found", "problems found"], ["ошибка", "ошибки", "ошибок"])
      + (warnings.length ? ", " + count(warnings.length, ["warning", "warnings"], ["предупреждение", "предупреждения", "предупреждений"]) : "")
      + (loose.length ? ` (${loose.length} ${t("not on a shape")})` : "");
    status(text, "error", `invalid:${errors.length}`);
  } else if (warnings.length) {
    status(t("No errors: the process can be deployed, but look at the warnings:") + " "
      + count(warnings.length, ["warning", "warnings"], ["предупреждение", "предупреждения", "предупреждений"]),
    "warning", `warnings:${warnings.length}`);
  } else {
    status(t("No problems: the process can be deployed."), "success", "valid");
  }
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

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** One draft write at a time (an autosave and "Save draft" would send the same revision). */
async function locked(state, fn) {
  while (state.saving) await sleep(50);
  state.saving = true;
  try {
    return await fn();
  } finally {
    state.saving = false;
  }
}

async function putDraft(state, body) {
  const draft = await api("PUT", "/editor/drafts", { ...body, revision: state.revision });
  state.revision = draft.revision;
  if (draft.key !== state.key) {
    state.key = draft.key;
    history.replaceState(null, "", `/processes/${encodeURIComponent(draft.key)}/edit`);
  }
  return draft;
}

/**
 * Drafts are never lost: every change is saved as the draft a moment later (and when the page
 * is left, with a keep-alive request); the editor opens the draft on return. Only when the
 * server refused the draft (someone else saved meanwhile) does leaving ask first.
 */
export const drafts = {
  DELAY: 800,
  wire(state) {
    if (state.readOnly) return;
    state.dirty = false;
    state.draftFailed = false;
    state.modeler.get("eventBus").on("commandStack.changed", (e) => {
      if (e && e.trigger === "clear") return;
      state.dirty = true;
      state.changeSeq = (state.changeSeq || 0) + 1;
      clearTimeout(state.autosaveTimer);
      state.autosaveTimer = setTimeout(() => drafts.autosave(state), drafts.DELAY);
      sources(state).then((body) => { state.pendingBody = body; }, () => {});
    });
    window.addEventListener("pagehide", () => drafts.flush(state));
    window.addEventListener("beforeunload", (event) => {
      if (state.dirty && state.draftFailed) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
  },
  async autosave(state) {
    if (!state.dirty) return;
    const seq = state.changeSeq;
    try {
      const draft = await locked(state, async () => putDraft(state, await sources(state)));
      if (seq === state.changeSeq) state.dirty = false;
      state.draftFailed = false;
      const box = document.getElementById("editor-autosave");
      if (box) {
        box.textContent = `${t("Draft saved automatically")} (${t("revision")} ${draft.revision})`;
        box.setAttribute("data-revision", String(draft.revision));
      }
    } catch (err) {
      state.draftFailed = true;
      failed(state, err);
    } finally {
      if (state.dirty && seq !== state.changeSeq) {
        clearTimeout(state.autosaveTimer);
        state.autosaveTimer = setTimeout(() => drafts.autosave(state), drafts.DELAY);
      }
    }
  },
  flush(state) {
    if (!state.dirty || !state.pendingBody || state.saving) return;
    fetch("/api/v1/editor/drafts", {
      method: "PUT", keepalive: true, credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ ...state.pendingBody, revision: state.revision }),
    }).catch(() => {});
    state.dirty = false;
  },
  forget(state) {
    clearTimeout(state.autosaveTimer);
    state.dirty = false;
    state.pendingBody = null;
  },
};

const ACTIONS = {
  async save(state) {
    clearTimeout(state.autosaveTimer);
    const draft = await locked(state, async () => putDraft(state, await sources(state)));
    state.dirty = false;
    state.draftFailed = false;
    status(t("Draft saved") + ` (${t("revision")} ${draft.revision})`, "success", `saved:${draft.revision}`);
  },

  async validate(state) {
    const check = await checkAll(state, await sources(state));
    reportCheck(state, check);
    return check;
  },

  async dryRun(state) {
    const dialog = document.getElementById("dry-run-dialog");
    const entity = processEntity(state.modeler.get("canvas").getRootElement()) || "deal";
    dialog.querySelector("[name=entity_type]").value = entity;
    await renderValueInputs(dialog, entity);
    // Beside the diagram, not over it (the path is drawn on the canvas), and below the
    // toolbar, however many lines it wraps to: its buttons (Deploy) stay reachable.
    const toolbar = document.getElementById("editor-toolbar");
    if (toolbar) dialog.style.top = `${Math.round(toolbar.getBoundingClientRect().bottom) + 8}px`;
    dialog.show();
  },

  async deploy(state) {
    const activate = !!(document.getElementById("deploy-activate") || {}).checked;
    clearTimeout(state.autosaveTimer);
    while (state.saving) await sleep(50);
    const body = await sources(state);
    const check = await checkAll(state, body);
    if (check.errors.length) {
      reportCheck(state, check);
      return null;
    }
    const definition = await api("POST", "/editor/deploy", { ...body, activate });
    drafts.forget(state);
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

/** The latest records the user may read, offered by name (nobody types an id). */
async function offerRecords(dialog, entity) {
  const select = dialog.querySelector("[name=entity_id]");
  if (!select) return;
  select.innerHTML = "";
  select.appendChild(new Option(t("— the values typed by hand —"), ""));
  try {
    const { items } = await api("GET", `/${PLURAL[entity]}?per_page=50&sort=-id`);
    const companies = new Map();
    for (const r of items) {
      if (r.company_id && !companies.has(r.company_id)) companies.set(r.company_id, null);
    }
    await Promise.all([...companies.keys()].slice(0, 20).map((id) => api("GET", `/companies/${id}`)
      .then((c) => companies.set(id, c.title), () => {})));
    for (const r of items) {
      const name = r.title || r.full_name || [r.first_name, r.last_name].filter(Boolean).join(" ") || `#${r.id}`;
      const company = r.company_id && companies.get(r.company_id);
      const amount = r.amount ? ` · ${Number(r.amount).toLocaleString(lang())}${r.currency ? " " + r.currency : ""}` : "";
      select.appendChild(new Option(`${name}${company ? " — " + company : ""}${amount}`, String(r.id)));
    }
  } catch (err) {
    // values can still be typed
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
    if (f.type === "ref" && f.ref !== "company") continue;
    const label = document.createElement("label");
    label.textContent = (f.labels && (f.labels[lang()] || f.labels.en)) || f.name;
    let input;
    if (f.type === "stage") {
      input = document.createElement("select");
      input.appendChild(new Option("—", ""));
      const { items } = await cached("/pipelines").catch(() => ({ items: [] }));
      for (const p of items) for (const st of p.stages) input.appendChild(new Option(`${p.name}: ${st.name}`, st.code));
    } else if (f.type === "ref" && f.ref === "company") {
      input = document.createElement("select");
      input.appendChild(new Option("—", ""));
      const { items } = await api("GET", "/companies?per_page=100&sort=title").catch(() => ({ items: [] }));
      for (const c of items) input.appendChild(new Option(c.title, String(c.id)));
    } else if (f.type === "user") {
      input = document.createElement("select");
      input.appendChild(new Option("—", ""));
      const { items } = await cached("/users?active=true&per_page=500").catch(() => ({ items: [] }));
      for (const u of items) input.appendChild(new Option(u.full_name, String(u.id)));
    } else if (f.choices && f.choices.length) {
      input = document.createElement("select");
      input.appendChild(new Option("—", ""));
      f.choices.forEach((c) => input.appendChild(new Option(t(c), c)));
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

function timeOf(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const sameDay = d.toDateString() === new Date().toDateString();
  return d.toLocaleString(lang(), sameDay ? { hour: "2-digit", minute: "2-digit" }
    : { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
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
  state.simulated = true;
  const add = (tag, text, cls) => {
    const el = document.createElement(tag);
    el.textContent = text;
    if (cls) el.className = cls;
    out.appendChild(el);
    return el;
  };
  const name = (id) => elementLabel(state.modeler, id);
  add("p", `${t("Status")}: ${t(result.status)}`, "dry-status");
  const steps = document.createElement("ol");
  steps.className = "dry-path";
  for (const id of result.path) {
    const li = document.createElement("li");
    li.textContent = name(id);
    li.setAttribute("data-element", id);
    steps.appendChild(li);
  }
  out.appendChild(steps);
  for (const call of result.service_calls) {
    if (call.assignee) {
      add("p", `→ ${call.assignee.full_name} — ${t("becomes responsible")} (${name(call.element_id)})`, "dry-outcome");
    } else {
      const params = Object.entries(call.params).map(([k, v]) => `${t(k)}: ${typeof v === "string" ? v : JSON.stringify(v)}`).join(", ");
      add("p", `${t("Would do")}: ${t(call.title || call.operation)}${params ? " — " + params : ""}`, "dry-call");
    }
  }
  for (const task of result.tasks) {
    const who = task.assignee ? task.assignee.full_name
      : task.candidates.map((c) => c.full_name).join(", ");
    const due = task.due_at ? `, ${t("due")} ${timeOf(task.due_at)}` : "";
    add("p", `→ ${who}, ${t("task")} «${task.name}»${due}${task.note ? ` (${task.note})` : ""}`, "dry-task");
  }
  if (result.incident) add("p", `${t("Incident")}: ${name(result.incident.element_id)}: ${result.incident.message}`, "dry-incident");
  for (const w of result.waiting) add("p", `${t("Waits for")} ${t(w.event)}`, "dry-wait");
  add("p", t("Nothing was saved and no operation was called. The path stays on the diagram."), "muted small");
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
  drafts.wire(state);
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
    // picking a record runs the simulation at once
    form.querySelector("[name=entity_id]").addEventListener("change", (e) => {
      if (e.target.value) form.requestSubmit();
    });
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
      form.closest("dialog").close();  // the path stays drawn until the diagram changes
    });
    state.modeler.get("eventBus").on("commandStack.changed", () => {
      if (!state.simulated) return;
      state.simulated = false;
      clearMarkers(state.modeler, ["done", "active", "incident"], "incident");
    });
  }
}
