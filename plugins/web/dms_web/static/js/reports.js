// Daily report: SAIFI/SAIDI/CAIDI, losses, limit violations; CSV and PDF from the same API.
import { api, el } from "/static/js/app.js";

const form = document.getElementById("report-form");
const day = (offset) => new Date(Date.now() + offset * 86400000).toISOString().slice(0, 10);
form.since.value ||= day(-6); form.until.value ||= day(0);
const num = (v, d = 3) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));

async function show() {
  const query = { since: `${form.since.value}T00:00:00Z`, until: `${form.until.value}T23:59:59Z` };
  const qs = new URLSearchParams(query);
  document.getElementById("r-csv").href = `/api/v1/reports/daily?format=csv&${qs}`;
  document.getElementById("r-pdf").href = `/api/v1/reports/daily?format=pdf&${qs}`;
  try {
    const report = await api("reports/daily", { query });
    document.querySelector("#report tbody").replaceChildren(...report.days.map((r) => el("tr", {},
      el("th", { scope: "row" }, r.day), el("td", { class: "num" }, num(r.saifi)), el("td", { class: "num" }, num(r.saidi_min, 1)),
      el("td", { class: "num" }, num(r.caidi_min, 1)), el("td", { class: "num" }, num(r.maifi)), el("td", { class: "num" }, r.interruptions ?? "–"),
      el("td", { class: "num" }, num(r.losses_mwh)), el("td", { class: "num" }, r.limit_violations ?? "–"))));
    const sum = (k) => report.days.reduce((a, r) => a + (r[k] || 0), 0);
    document.getElementById("kpis").replaceChildren(
      el("div", { class: "kpi" }, "SAIFI", el("b", {}, num(sum("saifi")))), el("div", { class: "kpi" }, "SAIDI (min)", el("b", {}, num(sum("saidi_min"), 1))),
      el("div", { class: "kpi" }, "Losses (MWh)", el("b", {}, num(sum("losses_mwh")))), el("div", { class: "kpi" }, "Limit violations", el("b", {}, sum("limit_violations"))));
    const missing = Object.entries(report.sources).filter(([, ok]) => !ok).map(([k]) => k);
    document.getElementById("report-message").textContent = missing.length ? `Not available in this deployment: ${missing.join(", ")}` : "";
  } catch (e) { document.getElementById("report-message").textContent = e.message; }
}
form.addEventListener("submit", (event) => { event.preventDefault(); show(); });
show();
