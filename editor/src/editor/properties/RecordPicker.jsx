// A searchable picker of CRM records (companies, contacts, deals, leads) and users: shows names,
// stores the id. The condition builder uses it for reference fields, so nobody types an id.
import { useEffect, useRef, useState } from "@bpmn-io/properties-panel/preact/hooks";

import { api } from "../api";
import { t } from "../i18n";

const PLURAL = { company: "companies", contact: "contacts", deal: "deals", lead: "leads", user: "users" };

export function recordName(r) {
  return r.title || r.full_name || [r.first_name, r.last_name].filter(Boolean).join(" ") || `#${r.id}`;
}

/** The records whose names match `q` (the first page when `q` is empty). */
export async function searchRecords(entity, q) {
  const plural = PLURAL[entity];
  if (!plural) return [];
  const query = new URLSearchParams({ per_page: "20" });
  if (q) query.set("q", q);
  if (entity === "user") query.set("active", "true");
  const { items } = await api("GET", `/${plural}?${query}`);
  return items.map((r) => ({ id: r.id, name: recordName(r) }));
}

export async function recordById(entity, id) {
  const plural = PLURAL[entity];
  if (!plural || !/^\d+$/.test(String(id))) return null;
  try {
    const r = await api("GET", `/${plural}/${id}`);
    return { id: r.id, name: recordName(r) };
  } catch (err) {
    return { id: Number(id), name: `#${id} (${t("not found")})`, missing: true };
  }
}

export function RecordPicker({ entity, value, onChange, path }) {
  const [name, setName] = useState("");
  const [query, setQuery] = useState(null);  // null: not searching, the chosen name is shown
  const [results, setResults] = useState([]);
  const [open, setOpen] = useState(false);
  const seq = useRef(0);

  useEffect(() => {  // the chosen record's name
    let live = true;
    if (value === "" || value === undefined || value === null) setName("");
    else recordById(entity, value).then((r) => { if (live && r) setName(r.name); });
    return () => { live = false; };
  }, [entity, value]);

  const search = (q) => {
    const mine = ++seq.current;
    searchRecords(entity, q).then((items) => { if (mine === seq.current) setResults(items); },
      () => { if (mine === seq.current) setResults([]); });
  };
  const pick = (r) => {
    setName(r.name);
    setQuery(null);
    setOpen(false);
    onChange(String(r.id));
  };

  return <div class="marshrut-picker" data-test={`${path}-picker`}>
    <input type="search" class="bio-properties-panel-input" data-test={`${path}-value`}
      data-id={value || ""} autocomplete="off" role="combobox" aria-expanded={open ? "true" : "false"}
      placeholder={t("Start typing a name…")}
      value={query === null ? name : query}
      onFocus={() => { setOpen(true); search(query || ""); }}
      onInput={(e) => { setQuery(e.target.value); setOpen(true); search(e.target.value.trim()); }}
      onKeyDown={(e) => {
        if (e.key === "Enter" && results.length) { e.preventDefault(); pick(results[0]); }
        if (e.key === "Escape") { setOpen(false); setQuery(null); }
      }}
      onBlur={() => setTimeout(() => { setOpen(false); setQuery(null); }, 200)} />
    {open && <ul class="marshrut-picker-list" role="listbox">
      {results.map((r) => <li role="option" aria-selected={String(r.id) === String(value) ? "true" : "false"}>
        <button type="button" class="marshrut-picker-option" data-test="picker-option" data-id={r.id}
          onMouseDown={(e) => { e.preventDefault(); pick(r); }}>{r.name}</button></li>)}
      {!results.length && <li class="marshrut-picker-empty">{t("Nothing found")}</li>}
    </ul>}
  </div>;
}
