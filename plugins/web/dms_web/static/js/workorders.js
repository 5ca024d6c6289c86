// Work-order board: one column per state; operators move orders along the workflow.
import { api, live, el, fmt, canControl } from "/static/js/app.js";

const COLUMNS = ["new", "assigned", "dispatched", "en_route", "on_site", "resolved"];
const NEXT = { new: ["assigned", "cancelled"], assigned: ["dispatched", "new", "cancelled"], dispatched: ["en_route", "cancelled"],
  en_route: ["on_site", "cancelled"], on_site: ["resolved"], resolved: ["closed"] };
const board = document.getElementById("board");
const message = document.getElementById("wo-message");

async function move(order, state) {
  const body = { state };
  if (state === "assigned") body.crew = prompt("Crew (empty: nearest qualified crew)", "") || "auto";
  try { await api(`workorders/${order.id}/transition`, { method: "POST", body }); message.textContent = `Order ${order.id} → ${state}`; }
  catch (e) { message.textContent = `Order ${order.id}: ${e.message}`; }
  refresh();
}

function card(order) {
  return el("article", { class: "order", "data-order": order.id },
    el("strong", {}, `#${order.id} `), order.description || "(no description)",
    el("div", { class: "muted" }, `incident ${order.incident_id}${order.crew ? ` · crew ${order.crew}` : ""} · ${fmt.datetime(order.updated)}`),
    canControl ? el("div", { class: "actions" }, (NEXT[order.state] || []).map((s) => el("button", { type: "button", onclick: () => move(order, s) }, `→ ${s.replace("_", " ")}`))) : null);
}

async function refresh() {
  try {
    const [{ orders }, { incidents }] = await Promise.all([api("workorders"), api("incidents", { query: { status: "open" } })]);
    board.replaceChildren(...COLUMNS.map((state) => el("section", { "aria-label": state },
      el("h2", {}, state.replace("_", " ")), orders.filter((o) => o.state === state).map(card))));
    document.querySelector("#incidents tbody").replaceChildren(...incidents.map((i) =>
      el("tr", {}, el("td", {}, i.id), el("td", {}, fmt.datetime(i.created)), el("td", {}, i.title), el("td", {}, i.source), el("td", {}, i.element || ""))));
  } catch (e) { message.textContent = e.status === 503 ? "The work-order service is not running in this deployment." : e.message; }
}

document.getElementById("new-incident")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    const incident = await api("incidents", { method: "POST", body: { title: form.title.value, element: form.element.value } });
    await api("workorders", { method: "POST", body: { incident: incident.id, description: form.title.value } });
    form.reset(); message.textContent = `Incident ${incident.id} opened`;
  } catch (e) { message.textContent = e.message; }
  refresh();
});
live.on("alarm", () => setTimeout(refresh, 500));
refresh();
setInterval(refresh, 15000);
