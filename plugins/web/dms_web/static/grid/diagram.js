// Single-line diagram: draws /grid/api/diagram as SVG and applies /grid/api/state live
// (switch positions, energised/de-energised colouring, node voltage colouring); click → panel.
import { getJSON, svg, liveState, bandFor, voltageColour, worst, showElement, info } from "./common.js";

const host = document.getElementById("grid-diagram");
const byId = new Map(); // element id -> SVG group
const nodeKv = new Map();
let view = null, full = null;

function glyph(kind, x, y) {
  const s = 6;
  switch (kind) {
    case "load": return svg("path", { d: `M${x - s},${y - s / 2} L${x + s},${y - s / 2} L${x},${y + s} Z` });
    case "source": return svg("g", {}, svg("circle", { cx: x, cy: y, r: s + 2 }), svg("circle", { cx: x, cy: y, r: s - 2 }));
    case "pv": return svg("g", {}, svg("rect", { x: x - s, y: y - s, width: 2 * s, height: 2 * s }), svg("path", { d: `M${x - s},${y + s} L${x + s},${y - s}` }));
    case "battery": return svg("g", {}, svg("rect", { x: x - s, y: y - s / 2, width: 2 * s, height: s }), svg("path", { d: `M${x - s / 2},${y - s} L${x + s / 2},${y - s}` }));
    case "machine": return svg("g", {}, svg("circle", { cx: x, cy: y, r: s + 1 }), svg("text", { x: x - 3, y: y + 4, class: "gd-label small" }, "G"));
    case "shunt": return svg("path", { d: `M${x - s},${y - 2} L${x + s},${y - 2} M${x - s},${y + 2} L${x + s},${y + 2}` });
    default: return svg("circle", { cx: x, cy: y, r: s });
  }
}

function draw(layout) {
  const root = svg("svg", {
    role: "img", "aria-label": `Single-line diagram of ${layout.model}`, id: "grid-svg",
    viewBox: `0 0 ${layout.width} ${layout.height}`, "data-model": layout.model,
  });
  const layers = ["stations", "edges", "attachments", "symbols", "nodes", "labels"].map((name) => svg("g", { class: `gd-layer-${name}` }));
  root.append(...layers);
  const [stations, edges, attachments, symbols, nodes, labels] = layers;
  for (const st of layout.stations) {
    const [x0, y0, x1, y1] = st.box;
    stations.append(svg("g", { class: "gd-station", "data-id": st.id },
      svg("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0 }),
      svg("text", { x: x0 + 6, y: y0 - 6 }, st.name)));
  }
  const pos = new Map(layout.nodes.map((n) => [n.id, n]));
  for (const e of layout.edges) {
    const line = (pts) => pts.map(([x, y], i) => `${i ? "L" : "M"}${x},${y}`).join(" ");
    const d = [line(e.points), ...(e.legs || []).map(line)].join(" ");
    const group = svg("g", { class: `gd-el gd-el-${e.kind}`, "data-id": e.id, "data-kind": e.kind, tabindex: "0", role: "button", "aria-label": `${e.type} ${e.name}` },
      svg("title", {}, `${e.name} (${e.type}${e.length_km ? `, ${e.length_km} km` : ""})`),
      svg("path", { d, class: "gd-hit" }),
      svg("path", { d, class: `gd-edge ${e.kind}${e.tie ? " tie" : ""}${e.in_service ? "" : " oos"}` }));
    edges.append(group);
    const [mx, my] = e.mid;
    if (e.kind === "switch") {
      const size = e.type === "breaker" ? 14 : 12;
      const sym = svg("g", { class: "gd-switch", "data-id": e.id },
        svg("rect", { x: mx - size / 2, y: my - size / 2, width: size, height: size, rx: e.type === "breaker" ? 1 : 3 }));
      group.append(sym);
      group.dataset.open = String(e.open); group.dataset.normalOpen = String(e.normal_open);
      labels.append(svg("text", { x: mx - 14, y: my - 11, class: "gd-label small" }, e.name));
    } else if (e.kind === "transformer") {
      group.append(svg("g", { class: "gd-xfmr" }, svg("circle", { cx: mx - 6, cy: my, r: 9 }), svg("circle", { cx: mx + 6, cy: my, r: 9 })));
      labels.append(svg("text", { x: mx - 20, y: my - 14, class: "gd-label small" }, e.name));
    }
    byId.set(e.id, group);
  }
  for (const a of layout.attachments) {
    const n = pos.get(a.node);
    const group = svg("g", { class: `gd-el gd-att gd-att-${a.kind}`, "data-id": a.id, "data-kind": a.kind, tabindex: "0", role: "button", "aria-label": `${a.kind} ${a.name}` },
      svg("title", {}, `${a.name} (${a.cim_class})`),
      svg("path", { d: `M${n.x},${n.y} L${a.x},${a.y - 6}` }), glyph(a.kind, a.x, a.y));
    attachments.append(group);
    byId.set(a.id, group);
  }
  for (const n of layout.nodes) {
    nodeKv.set(n.id, n.kv);
    const circle = svg("circle", { cx: n.x, cy: n.y, r: n.station ? 8 : 6.5, class: "gd-node" });
    const group = svg("g", { class: "gd-el gd-node-el", "data-id": n.id, "data-kind": "node", tabindex: "0", role: "button", "aria-label": `node ${n.name}` },
      svg("title", {}, n.name), circle);
    nodes.append(group);
    labels.append(svg("text", { x: n.x + 9, y: n.y - 8, class: "gd-label" }, n.name));
    byId.set(n.id, group);
  }
  symbols.remove();
  host.replaceChildren(root);
  full = [0, 0, layout.width, layout.height];
  setView(full);
  panZoom(root);
  root.addEventListener("click", (event) => {
    const target = event.target.closest(".gd-el");
    if (target && !root.dataset.dragged) select(target.dataset.id);
  });
  root.addEventListener("keydown", (event) => {
    const target = event.target.closest?.(".gd-el");
    if (target && (event.key === "Enter" || event.key === " ")) { event.preventDefault(); select(target.dataset.id); }
  });
  return root;
}

function select(id) {
  for (const el of host.querySelectorAll(".gd-selected")) el.classList.remove("gd-selected");
  if (id && byId.has(id)) byId.get(id).classList.add("gd-selected");
  if (id) showElement(id);
}
document.addEventListener("grid-select", (event) => { if (!event.detail) select(null); });

function setView(box) {
  view = box;
  host.querySelector("svg")?.setAttribute("viewBox", box.map((v) => v.toFixed(1)).join(" "));
}

function panZoom(root) {
  let start = null;
  root.addEventListener("wheel", (event) => {
    event.preventDefault();
    const rect = root.getBoundingClientRect();
    const scale = Math.max(view[2] / rect.width, view[3] / rect.height);
    const px = view[0] + (event.clientX - rect.left - (rect.width - view[2] / scale) / 2) * scale;
    const py = view[1] + (event.clientY - rect.top - (rect.height - view[3] / scale) / 2) * scale;
    const f = event.deltaY > 0 ? 1.2 : 1 / 1.2;
    setView([px - (px - view[0]) * f, py - (py - view[1]) * f, view[2] * f, view[3] * f]);
  }, { passive: false });
  root.addEventListener("pointerdown", (event) => { start = [event.clientX, event.clientY, view[0], view[1]]; delete root.dataset.dragged; });
  root.addEventListener("pointermove", (event) => {
    if (!start) return;
    const dx = event.clientX - start[0], dy = event.clientY - start[1];
    if (Math.abs(dx) + Math.abs(dy) < 4 && !root.dataset.dragged) return;
    root.dataset.dragged = "1"; root.classList.add("dragging");
    const rect = root.getBoundingClientRect();
    const scale = Math.max(view[2] / rect.width, view[3] / rect.height);
    setView([start[2] - dx * scale, start[3] - dy * scale, view[2], view[3]]);
  });
  const end = () => { start = null; root.classList.remove("dragging"); setTimeout(() => delete root.dataset.dragged, 0); };
  root.addEventListener("pointerup", end); root.addEventListener("pointerleave", end);
}

function apply(state) {
  const deadEq = new Set(state.deenergised_equipment), deadNodes = new Set(state.deenergised_nodes);
  for (const [id, group] of byId) {
    const kind = group.dataset.kind;
    if (kind === "node") {
      const dead = deadNodes.has(id);
      const vm = worst(state.voltages[id]);
      const circle = group.querySelector("circle");
      circle.classList.toggle("dead", dead);
      circle.style.fill = dead ? "" : voltageColour(vm, bandFor(state.bands, nodeKv.get(id)));
      group.dataset.vm = vm === null ? "" : String(vm);
      group.dataset.energised = String(!dead);
      group.querySelector("title").textContent = `${group.getAttribute("aria-label").slice(5)}${vm === null ? "" : ` · ${vm.toFixed(4)} pu`}${dead ? " · de-energised" : ""}`;
      continue;
    }
    const dead = deadEq.has(id);
    group.dataset.energised = String(!dead);
    for (const el of group.querySelectorAll(".gd-edge, .gd-xfmr, .gd-switch")) el.classList.toggle("dead", dead);
    if (group.classList.contains("gd-att")) group.classList.toggle("dead", dead);
    if (kind === "switch" && state.switches[id]) {
      const { open, normal_open: normal } = state.switches[id];
      group.dataset.open = String(open);
      const sym = group.querySelector(".gd-switch");
      sym.classList.toggle("open", open);
      sym.classList.toggle("abnormal", open !== normal);
    }
  }
  const r = state.result;
  info(r ? `${r.study} (${r.solver})${r.converged ? "" : " not converged"} · ${new Date(r.finished * 1000).toLocaleTimeString()}` : "no power-flow result yet");
  host.dataset.stateTime = String(state.time);
  host.dataset.ready = "true";
}

const layout = await getJSON("/diagram");
draw(layout);
document.getElementById("grid-fit")?.addEventListener("click", () => setView(full));
const live = liveState(apply, { band: new URLSearchParams(location.search).get("band") });
window.gridDiagram = { layout, refresh: live.refresh, select };
