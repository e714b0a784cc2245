// JSON calls to /api/v1 from the editor pages: same-origin cookies plus the page's CSRF token.
// Failures throw an ApiError carrying the server's {code, message, fields, errors}.

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
    this.fields = error.fields || {};
    this.errors = error.errors || [];
  }
}

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

export async function api(method, path, body) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch("/api/v1" + path, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

const cache = new Map();

/** GET with a per-page cache (pickers ask for the same lists again and again). */
export function cached(path) {
  if (!cache.has(path)) {
    cache.set(path, api("GET", path).catch((err) => { cache.delete(path); throw err; }));
  }
  return cache.get(path);
}

/** Every page of a paged list (users). */
export async function allPages(path) {
  const items = [];
  for (let page = 1; page < 50; page++) {
    const sep = path.includes("?") ? "&" : "?";
    const data = await cached(`${path}${sep}page=${page}&per_page=500`);
    items.push(...data.items);
    if (items.length >= data.total || !data.items.length) break;
  }
  return items;
}
