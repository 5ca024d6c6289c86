// Alarm list: filters, acknowledge, shelve; refreshed on every alarm event from /ws.
import { api, live, el, fmt, canControl } from "/static/js/app.js";

const form = document.getElementById("alarm-filters");
const body = document.querySelector("#alarm-table tbody");
const message = document.getElementById("alarm-message");
const params = new URLSearchParams(location.search);
for (const [k, v] of params) { const input = form.elements[k]; if (input) { if (input.type === "checkbox") input.checked = true; else input.value = v; } }

function query() {
  const q = {};
  for (const input of form.elements) {
    if (!input.name) continue;
    if (input.type === "checkbox") { if (input.checked) q[input.name] = "true"; }
    else if (input.value) q[input.name] = input.value;
  }
  return q;
}

async function act(alarm, verb, payload) {
  try {
    await api(`alarms/${encodeURIComponent(alarm.id)}/${verb}`, { method: "POST", body: payload });
    message.textContent = `${verb}: ${alarm.message}`;
  } catch (e) { message.textContent = `${verb} refused: ${e.message}`; }
  refresh();
}

function row(alarm) {
  const unacked = alarm.state.startsWith("unacked");
  const actions = canControl ? el("td", {},
    unacked ? el("button", { type: "button", class: "primary", "data-action": "ack", onclick: () => act(alarm, "acknowledge", {}) }, "Acknowledge") : null, " ",
    alarm.shelved_until ? el("button", { type: "button", onclick: () => act(alarm, "unshelve", {}) }, "Unshelve")
      : el("button", { type: "button", "data-action": "shelve", onclick: () => {
          const minutes = Number(prompt("Shelve for how many minutes?", "60"));
          if (minutes > 0) act(alarm, "shelve", { duration_s: minutes * 60, reason: "shelved from the alarm list" });
        } }, "Shelve…")) : null;
  return el("tr", { class: `prio-${alarm.priority} ${unacked ? "unacked" : ""}`, "data-alarm": alarm.id },
    el("td", { class: "prio" }, alarm.priority), el("td", {}, fmt.datetime(alarm.raised_at)), el("td", {}, alarm.message),
    el("td", {}, alarm.source), el("td", {}, alarm.category),
    el("td", { class: "state" }, alarm.state + (alarm.shelved_until ? " (shelved)" : "")), actions);
}

async function refresh() {
  try {
    const data = await api("alarms", { query: query() });
    body.replaceChildren(...data.alarms.map(row));
    document.getElementById("alarm-empty").hidden = data.alarms.length > 0;
    document.getElementById("alarm-counts").textContent = `(${data.alarms.length} shown)`;
  } catch (e) { message.textContent = e.message; }
}
form.addEventListener("submit", (event) => { event.preventDefault(); history.replaceState(null, "", `?${new URLSearchParams(query())}`); refresh(); });
let timer = null;
live.on("alarm", () => { clearTimeout(timer); timer = setTimeout(refresh, 150); });
live.on("status", (s) => { if (s === "live") refresh(); });
refresh();
