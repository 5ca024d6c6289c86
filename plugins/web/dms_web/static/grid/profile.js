// Voltage profile along a feeder: /grid/api/profile/{feeder} as SVG — voltage per phase against the
// distance from the substation, the limit band shaded; refreshed live; click a point → panel.
import { getJSON, svg, showElement, info } from "./common.js";

const host = document.getElementById("grid-profile");
const select = document.getElementById("grid-feeder");
const PHASES = [["L1", "#ffb000"], ["L2", "#58a6ff"], ["L3", "#d2a8ff"]];
const band = new URLSearchParams(location.search).get("band");

const { feeders } = await getJSON("/feeders");
for (const f of feeders) select.append(new Option(`${f.name} (${f.nodes} nodes)`, f.id));
const wanted = select.dataset.selected;
if (wanted && feeders.some((f) => f.id === wanted || f.name === wanted)) select.value = feeders.find((f) => f.id === wanted || f.name === wanted).id;

function ticks(lo, hi, n) {
  const span = hi - lo || 1, step0 = span / n, mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toFixed(6)));
  return out;
}

function draw(profile) {
  const rect = host.getBoundingClientRect();
  const W = Math.max(rect.width, 480), H = Math.max(rect.height, 320);
  const m = { l: 70, r: 24, t: 28, b: 52 };
  const pts = profile.points;
  const [low, high] = profile.band;
  const values = pts.flatMap((p) => (p.vm_pu || []).filter((v) => v !== null));
  const vmin = Math.min(low, ...values) - 0.01, vmax = Math.max(high, ...values) + 0.01;
  const dmax = Math.max(0.1, ...pts.map((p) => p.distance_km)) * 1.03;
  const X = (d) => m.l + (d / dmax) * (W - m.l - m.r);
  const Y = (v) => m.t + (1 - (v - vmin) / (vmax - vmin)) * (H - m.t - m.b);
  const root = svg("svg", { role: "img", id: "grid-profile-svg", viewBox: `0 0 ${W} ${H}`, "aria-label": `Voltage profile of feeder ${profile.feeder.name}: voltage against distance from the substation` });
  const grid = svg("g", { class: "gp-grid" }), axes = svg("g", { class: "gp-axis" });
  for (const t of ticks(0, dmax, 10)) {
    grid.append(svg("line", { x1: X(t), x2: X(t), y1: m.t, y2: H - m.b }));
    axes.append(svg("text", { x: X(t), y: H - m.b + 18, "text-anchor": "middle" }, String(t)));
  }
  for (const t of ticks(vmin, vmax, 8)) {
    grid.append(svg("line", { x1: m.l, x2: W - m.r, y1: Y(t), y2: Y(t) }));
    axes.append(svg("text", { x: m.l - 8, y: Y(t) + 4, "text-anchor": "end" }, t.toFixed(3)));
  }
  axes.append(svg("line", { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }), svg("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }),
    svg("text", { x: (W + m.l) / 2, y: H - 12, "text-anchor": "middle" }, "distance from the substation (km)"),
    svg("text", { x: 16, y: (H - m.b + m.t) / 2, transform: `rotate(-90 16 ${(H - m.b + m.t) / 2})`, "text-anchor": "middle" }, "voltage (pu)"));
  const bandRect = svg("rect", { class: "gp-band", x: m.l, width: W - m.l - m.r, y: Y(high), height: Y(low) - Y(high) });
  root.append(grid, bandRect, axes);
  const byNode = new Map(pts.map((p) => [p.node, p]));
  PHASES.forEach(([name, colour], k) => {
    const segs = svg("g", { class: "gp-segs", "data-phase": name });
    for (const p of pts) {
      const parent = byNode.get(p.parent);
      const v = p.vm_pu?.[k], pv = parent?.vm_pu?.[k];
      if (!parent || v == null || pv == null) continue;
      segs.append(svg("line", { class: "gp-seg", stroke: colour, x1: X(parent.distance_km), y1: Y(pv), x2: X(p.distance_km), y2: Y(v) }));
    }
    root.append(segs);
  });
  PHASES.forEach(([name, colour], k) => {
    const dots = svg("g", { class: "gp-pts", "data-phase": name });
    for (const p of pts) {
      const v = p.vm_pu?.[k];
      if (v == null) continue;
      const dot = svg("circle", { class: `gp-pt${v < low || v > high ? " out" : ""}`, fill: colour, cx: X(p.distance_km), cy: Y(v), r: 4.5, "data-node": p.node },
        svg("title", {}, `${p.name}: ${p.distance_km.toFixed(2)} km, ${name} ${v.toFixed(4)} pu`));
      dot.addEventListener("click", () => showElement(p.node));
      dots.append(dot);
    }
    root.append(dots);
  });
  root.append(svg("text", { class: "gp-title", x: m.l + 6, y: m.t - 10 }, `${profile.feeder.name}: band ${low}–${high} pu`));
  host.replaceChildren(root);
  const r = profile.result;
  info(r ? `${r.study} (${r.solver}) · ${new Date(r.finished * 1000).toLocaleTimeString()}` : "no power-flow result yet: distances only");
  if (!values.length) host.append(Object.assign(document.createElement("p"), { className: "muted", textContent: "No voltages yet (no power-flow result)." }));
  host.dataset.ready = "true";
}

let pending = null;
async function refresh() {
  pending = null;
  if (!select.value) { info("no feeders in this model"); return; }
  try { draw(await getJSON(`/profile/${encodeURIComponent(select.value)}${band ? `?band=${encodeURIComponent(band)}` : ""}`)); }
  catch (error) { info(`profile unavailable: ${error.message}`); }
}
select.addEventListener("change", () => {
  const url = new URL(location.href); url.searchParams.set("feeder", select.value); history.replaceState(null, "", url);
  refresh();
});
addEventListener("resize", () => { if (!pending) pending = setTimeout(refresh, 200); });
setInterval(refresh, 5000);
import("/static/js/app.js").then(({ live }) => live.on("topology", () => { if (!pending) pending = setTimeout(refresh, 150); })).catch(() => {});
await refresh();
window.gridProfile = { refresh };
