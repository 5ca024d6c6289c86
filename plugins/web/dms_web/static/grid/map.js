// Geographic map: /grid/api/geo drawn with Leaflet (vendored, local); no tiles unless the page
// names a tile URL; lines and equipment coloured by energisation, nodes by voltage; click → panel.
import * as L from "/static/vendor/leaflet/leaflet-src.esm.js";
import { getJSON, liveState, bandFor, voltageColour, worst, showElement, info } from "./common.js";

const host = document.getElementById("grid-map");
const geo = await getJSON("/geo");
const local = geo.coordinates !== "wgs84";
const map = L.map(host, { crs: local ? L.CRS.Simple : L.CRS.EPSG3857, zoomSnap: 0.25, minZoom: local ? -5 : 1, attributionControl: !!host.dataset.tiles, preferCanvas: false });
if (host.dataset.tiles && !local) L.tileLayer(host.dataset.tiles, { attribution: host.dataset.attribution || "", maxZoom: 19 }).addTo(map);

const css = getComputedStyle(document.documentElement);
const colour = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
const LIVE = colour("--energised", "#3fb950"), DEAD = colour("--deenergised", "#6e7681"), FG = colour("--fg", "#e6edf3"), BG = colour("--bg", "#0d1117");
const layers = new Map(); // id -> [layer, feature]
const kv = new Map();
const order = { substation: 0, line: 1, transformer: 2, load: 3, pv: 3, battery: 3, source: 3, machine: 3, shunt: 3, node: 4, switch: 5 };
const features = [...geo.features].sort((a, b) => (order[a.properties.kind] ?? 3) - (order[b.properties.kind] ?? 3));

function pointLayer(feature, latlng) {
  const k = feature.properties.kind;
  if (k === "node") return L.circleMarker(latlng, { radius: 5, weight: 1.5, color: BG, fillColor: "#8b949e", fillOpacity: 1 });
  if (k === "switch") return L.circleMarker(latlng, { radius: 6, weight: 2.5, color: FG, fillColor: LIVE, fillOpacity: 1 });
  if (k === "transformer") return L.circleMarker(latlng, { radius: 9, weight: 3, color: LIVE, fill: false });
  if (k === "source") return L.circleMarker(latlng, { radius: 10, weight: 3, color: "#58a6ff", fill: false });
  return L.circleMarker(latlng, { radius: 3.5, weight: 1.5, color: FG, fillColor: k === "pv" ? "#ffb000" : "#9aa7b4", fillOpacity: 0.9 });
}

const layer = L.geoJSON({ type: "FeatureCollection", features }, {
  coordsToLatLng: (c) => (local ? L.latLng(c[1], c[0]) : L.latLng(c[1], c[0])),
  pointToLayer: pointLayer,
  style: (f) => f.properties.kind === "substation"
    ? { color: "#58a6ff", weight: 1.5, dashArray: "6 4", fillColor: "#58a6ff", fillOpacity: 0.08 }
    : { color: LIVE, weight: 3.5, opacity: 0.95 },
  onEachFeature: (f, l) => {
    layers.set(f.properties.id, [l, f]);
    l.bindTooltip(`${f.properties.name} (${f.properties.type})`, { sticky: true });
    l.on("click", () => showElement(f.properties.id));
  },
}).addTo(map);
if (geo.bbox) {
  const [x0, y0, x1, y1] = geo.bbox;
  map.fitBounds([[y0, x0], [y1, x1]], { padding: [30, 30] });
} else map.fitBounds(layer.getBounds());
// node voltage levels come with the diagram layout
getJSON("/diagram").then((d) => { for (const n of d.nodes) kv.set(n.id, n.kv); }).catch(() => {});

function apply(state) {
  const deadEq = new Set(state.deenergised_equipment), deadNodes = new Set(state.deenergised_nodes);
  for (const [id, [l, f]] of layers) {
    const k = f.properties.kind;
    if (k === "substation") continue;
    if (k === "node") {
      const dead = deadNodes.has(id), vm = worst(state.voltages[id]);
      l.setStyle({ fillColor: dead ? "#30363d" : voltageColour(vm, bandFor(state.bands, kv.get(id))), color: dead ? DEAD : BG });
      l.setTooltipContent(`${f.properties.name}${vm === null ? "" : ` · ${vm.toFixed(4)} pu`}${dead ? " · de-energised" : ""}`);
      continue;
    }
    const dead = deadEq.has(id);
    if (k === "switch") {
      const open = state.switches[id]?.open ?? f.properties.open;
      const abnormal = open !== (state.switches[id]?.normal_open ?? f.properties.normal_open);
      l.setStyle({ fillColor: open ? BG : dead ? DEAD : LIVE, color: abnormal ? colour("--warn", "#d29922") : FG });
      l.getElement?.()?.setAttribute("data-open", String(open));
    } else if (k === "line" || k === "transformer") {
      l.setStyle({ color: dead ? DEAD : LIVE, dashArray: dead ? "6 6" : null });
    } else {
      l.setStyle({ color: dead ? DEAD : FG });
    }
    l.getElement?.()?.setAttribute("data-energised", String(!dead));
  }
  const r = state.result;
  info(r ? `${r.study} (${r.solver}) · ${new Date(r.finished * 1000).toLocaleTimeString()}${local ? " · schematic coordinates" : ""}` : "no power-flow result yet");
  host.dataset.ready = "true";
}

const live = liveState(apply, { band: new URLSearchParams(location.search).get("band") });
window.gridMap = { map, refresh: live.refresh };
