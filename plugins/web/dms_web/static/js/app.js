// Leitstand HMI core module: API calls with the CSRF token, the shared live connection,
// small DOM helpers. Pages (and the grid views) import from here:
//   import { api, live, el, fmt } from "/static/js/app.js";
export const csrfToken = document.querySelector('meta[name="csrf-token"]')?.content || "";
export const canControl = document.body.dataset.canControl === "true";
export const role = document.body.dataset.role || "";

/** fetch a JSON API path; state-changing calls carry the CSRF token. Throws ApiError. */
export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}
export async function api(path, { method = "GET", body, query } = {}) {
  const url = new URL(path.startsWith("/") ? path : `/api/v1/${path}`, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v === undefined || v === null || v === "") continue;
    for (const item of Array.isArray(v) ? v : [v]) url.searchParams.append(k, item);
  }
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  if (response.status === 401) { location.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`; throw new ApiError(401, "logged out"); }
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new ApiError(response.status, (data && data.error) || response.statusText);
  return data;
}

/** Create an element: el("td", {class: "num"}, "text", child). Text is never parsed as HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  return node;
}

export const fmt = {
  value(v, digits = 3) { return v === null || v === undefined ? "–" : Number.isInteger(v) ? String(v) : Number(v).toPrecision(digits + 2).replace(/\.?0+$/, ""); },
  time(t) { return t ? new Date(t * 1000).toLocaleTimeString() : "–"; },
  datetime(t) { return t ? new Date(t * 1000).toLocaleString() : "–"; },
  position(v) { return ({ 0: "intermediate", 1: "open", 2: "closed", 3: "bad" })[v] ?? fmt.value(v); },
};

/** The shared WebSocket: live.points(names, cb) / live.on("alarm" | "topology" | "status", cb). */
class Live {
  constructor() { this.handlers = {}; this.pointHandlers = new Map(); this.wanted = new Set(); this.all = false; this.delay = 500; this.connect(); }
  connect() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    this.ws = ws;
    ws.onopen = () => { this.delay = 500; this.emit("status", "live"); this.resubscribe(); };
    ws.onclose = () => { this.emit("status", "disconnected"); setTimeout(() => this.connect(), this.delay); this.delay = Math.min(this.delay * 2, 10000); };
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "points") for (const row of message.points) for (const cb of this.pointHandlers.get(row.name) || []) cb(row);
      if (message.type === "points") this.emit("points", message.points);
      else this.emit(message.type, message);
    };
  }
  resubscribe() {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    if (this.all) this.ws.send(JSON.stringify({ subscribe: "*" }));
    else if (this.wanted.size) this.ws.send(JSON.stringify({ subscribe: [...this.wanted] }));
  }
  points(names, callback) {
    for (const name of names) { this.wanted.add(name); if (!this.pointHandlers.has(name)) this.pointHandlers.set(name, []); this.pointHandlers.get(name).push(callback); }
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ subscribe: [...names] }));
  }
  allPoints(callback) { this.all = true; this.on("points", (rows) => rows.forEach(callback)); this.resubscribe(); }
  on(type, callback) { (this.handlers[type] ||= []).push(callback); }
  emit(type, payload) { for (const cb of this.handlers[type] || []) { try { cb(payload); } catch (e) { console.error(e); } } }
}
export const live = new Live();
