// Network applications: VVO setpoints to approve, FLISR switching orders to step through,
// protection coordination and time-current plots. Steps run through the control dialog.
import { api, canControl, el } from "/static/js/app.js";
import { openControl } from "/static/js/control.js";

const message = document.getElementById("app-message");
const num = (v, digits = 4) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));

async function operate(pointName) {
  try {
    const point = await api(`points/${pointName.split("/").map(encodeURIComponent).join("/")}`);
    openControl(point.name, point.kind, point.value);
  } catch (e) { message.textContent = `${pointName}: ${e.message}`; }
}

function stepButton(point, label) {
  if (!canControl || !point) return el("span", { class: "muted" }, point ? "" : "no SCADA point");
  return el("button", { type: "button", onclick: () => operate(point) }, label);
}

function vvo(result) {
  const d = result.data;
  const rows = ["v_min_pu", "v_max_pu", "losses_mw", "demand_mw", "violation"].map((k) =>
    el("tr", {}, el("th", { scope: "row" }, k), el("td", { class: "num" }, num(d.before?.[k])), el("td", { class: "num" }, num(d.after?.[k]))));
  const setpoints = (d.setpoints || []).map((s) => el("tr", {}, el("td", {}, s.text), el("td", {}, s.point || "–"),
    el("td", {}, stepButton(s.point, s.kind === "tap" ? `Operate (${Math.round(s.after - s.before) > 0 ? "raise" : "lower"} ${Math.abs(Math.round(s.after - s.before))} step(s))` : "Operate"))));
  return [
    el("p", {}, `${result.message} — mode ${d.mode}, objective ${d.objective}${d.feasible === false ? " — band NOT reachable" : ""}`),
    el("table", {}, el("caption", {}, "Before and after"), el("thead", {}, el("tr", {}, el("th", {}, ""), el("th", { class: "num" }, "before"), el("th", { class: "num" }, "after"))), el("tbody", {}, rows)),
    el("table", {}, el("caption", {}, "Setpoints (approve each)"), el("tbody", {}, setpoints.length ? setpoints : [el("tr", {}, el("td", {}, "no change needed"))])),
  ];
}

function flisr(result) {
  const d = result.data;
  const steps = (d.steps || []).map((s, i) => el("tr", {}, el("td", { class: "num" }, i + 1), el("td", {}, s.action.toUpperCase()), el("td", {}, s.name),
    el("td", {}, s.purpose), el("td", {}, stepButton(s.point, `${s.action === "open" ? "Open" : "Close"} ${s.name}`))));
  const order = el("pre", { class: "switching-order" }, d.switching_order || "");
  return [
    el("p", {}, result.message),
    el("table", {}, el("caption", {}, `Fault below ${d.tripped_name}: ${d.faulted} — step through in order`),
      el("thead", {}, el("tr", {}, ...["#", "action", "switch", "purpose", ""].map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, steps)),
    el("details", {}, el("summary", {}, "Printable switching order"), order,
      el("button", { type: "button", onclick: () => { const w = open("", "_blank"); w.document.body.append(el("pre", {}, d.switching_order)); w.print(); } }, "Print")),
  ];
}

function protection(result) {
  const d = result.data;
  const violations = (d.violations || []).map((v) => el("li", {}, typeof v === "string" ? v : v.message || JSON.stringify(v)));
  return [el("p", {}, result.message), violations.length ? el("ul", {}, violations) : el("p", {}, "All device pairs coordinated.")];
}

const RENDER = { vvo, flisr, protection_check: protection };
const BOX = { vvo: "vvo", flisr: "flisr", protection_check: "protection" };

async function load() {
  try {
    const { results } = await api("applications");
    for (const result of results) document.getElementById(BOX[result.study]).replaceChildren(...RENDER[result.study](result));
  } catch (e) { message.textContent = e.message; }
}

document.querySelectorAll("[data-run]").forEach((button) => button.addEventListener("click", async () => {
  button.disabled = true;
  message.textContent = `running ${button.dataset.run} …`;
  try {
    const result = await api(`applications/${button.dataset.run}/run`, { method: "POST" });
    message.textContent = result.message;
    await load();
  } catch (e) { message.textContent = e.message; } finally { button.disabled = false; }
}));

document.getElementById("tcc-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const node = event.target.node.value.trim();
  if (node) document.getElementById("tcc").replaceChildren(el("img", { src: `/api/v1/protection/plot?node=${encodeURIComponent(node)}`, alt: `Time-current curves of the devices protecting ${node}` }));
});

load();
setInterval(load, 10000);
