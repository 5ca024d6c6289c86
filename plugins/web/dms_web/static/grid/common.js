// Shared by the grid views: JSON fetches, voltage colours, live state, the element panel.
export const API = document.querySelector("[data-api]")?.dataset.api || "/grid/api";
const SVG_NS = "http://www.w3.org/2000/svg";

export async function getJSON(path) {
  const response = await fetch(`${API}${path}`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

/** An SVG element with attributes; children appended. */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) if (value !== null && value !== undefined) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

export function html(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value; else if (value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

/** The band [low, high] for a nominal voltage (nearest configured level within 10 %). */
export function bandFor(bands, kv) {
  if (!bands) return [0.9, 1.1];
  let best = null;
  if (kv) for (const [level, band] of Object.entries(bands.levels || {})) {
    const l = Number(level);
    if (Math.abs(l - kv) <= 0.1 * l && (!best || Math.abs(l - kv) < Math.abs(best[0] - kv))) best = [l, band];
  }
  return best ? best[1] : bands.default || [0.9, 1.1];
}

/** Node colour: blue below the band, green inside (shading to yellow near the edges), red above; grey without value. */
export function voltageColour(vm, band) {
  if (vm === null || vm === undefined || Number.isNaN(vm)) return "#8b949e";
  const [low, high] = band;
  if (vm < low) return "#4f8cff";
  if (vm > high) return "#ff5b4f";
  const t = Math.abs((vm - (low + high) / 2) / ((high - low) / 2)); // 0 centre .. 1 edge
  const hue = 130 - 80 * t * t;
  return `hsl(${hue.toFixed(0)}, 70%, 50%)`;
}

/** Worst (furthest from 1 pu) phase voltage of a node, or null. */
export function worst(phases) {
  if (!phases) return null;
  let out = null;
  for (const v of phases) if (v !== null && v !== undefined && (out === null || Math.abs(v - 1) > Math.abs(out - 1))) out = v;
  return out;
}

/**
 * Live state: fetches /state now, on WebSocket topology/point messages (the web app's shared socket,
 * when present) and every `pollMs` as a fallback; calls onState(state) each time.
 */
export function liveState(onState, { pollMs = 5000, band = null } = {}) {
  let timer = null, pending = null;
  const query = band ? `?band=${encodeURIComponent(band)}` : "";
  async function refresh() {
    pending = null;
    try { onState(await getJSON(`/state${query}`)); info(""); } catch (error) { info(`state unavailable: ${error.message}`); }
  }
  const soon = () => { if (!pending) pending = setTimeout(refresh, 150); };
  refresh();
  timer = setInterval(refresh, pollMs);
  import("/static/js/app.js").then(({ live }) => {
    live.on("topology", soon);
    live.on("points", soon);
    live.on("status", (s) => { if (s === "live") soon(); });
  }).catch(() => { /* without the web app's socket: polling only */ });
  return { refresh, stop: () => clearInterval(timer) };
}

export function info(text) {
  const node = document.getElementById("grid-info");
  if (node && node.dataset.text !== text) { node.dataset.text = text; node.textContent = text; }
}

const fmtValue = (v) => (v === null || v === undefined ? "–" : typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(4).replace(/0+$/, "").replace(/\.$/, "")) : String(v));

/** Show the values of an element (from /element/{id}) in the side panel. */
export async function showElement(id) {
  const panel = document.getElementById("grid-panel");
  if (!panel) return;
  let detail;
  try { detail = await getJSON(`/element/${encodeURIComponent(id)}`); } catch (error) { panel.hidden = false; panel.textContent = error.message; return; }
  panel.replaceChildren();
  const close = html("button", { type: "button", class: "close", "aria-label": "Close panel", text: "×" });
  close.addEventListener("click", () => { panel.hidden = true; document.dispatchEvent(new CustomEvent("grid-select", { detail: null })); });
  panel.append(close, html("h2", { text: detail.name }), html("p", { class: "muted", text: `${detail.cim_class}${detail.energised === false ? " · de-energised" : detail.energised ? " · energised" : ""}` }));
  const rows = [];
  for (const [key, value] of Object.entries(detail.attributes || {})) rows.push([key, fmtValue(value)]);
  if (detail.kv) rows.push(["kv", fmtValue(detail.kv)]);
  const result = detail.result || {};
  if (Array.isArray(result.vm_pu)) rows.push(["vm_pu (L1, L2, L3)", result.vm_pu.map(fmtValue).join(", ")]);
  else if (result.vm_pu) for (const [node, v] of Object.entries(result.vm_pu)) rows.push([`vm_pu ${node}`, (v || []).map(fmtValue).join(", ")]);
  for (const key of ["i_ka", "p_from_mw", "q_from_mvar", "loading_percent"]) if (result[key]) rows.push([key, result[key].map(fmtValue).join(", ")]);
  if (rows.length) {
    const table = html("table", { class: "values" });
    for (const [k, v] of rows) table.append(html("tr", {}, html("th", { scope: "row", text: k }), html("td", { class: "num", text: v })));
    panel.append(table);
  }
  if (detail.points && detail.points.length) {
    panel.append(html("h3", { text: "Measurement points" }));
    const table = html("table", { class: "values points" });
    for (const p of detail.points) {
      table.append(html("tr", { "data-point": p.point }, html("th", { scope: "row", text: p.point }),
        html("td", { class: `num${p.good === false ? " bad" : ""}`, text: `${fmtValue(p.value)} ${p.unit || ""}` })));
    }
    panel.append(table);
  }
  if (detail.trend_url) panel.append(html("p", {}, html("a", { href: detail.trend_url, class: "trend-link", text: "History (trend) →" })));
  panel.hidden = false;
}
