// Trends from the historian (uPlot, vendored), extended live from /ws.
import uPlot from "/static/vendor/uplot/uPlot.esm.js";
import { api, live } from "/static/js/app.js";

const form = document.getElementById("trend-form");
const box = document.getElementById("chart");
const message = document.getElementById("trend-message");
const COLOURS = ["#58a6ff", "#3fb950", "#d29922", "#f778ba", "#a5d6ff", "#ffa657", "#7ee787", "#ff7b72"];
let plot = null, names = [], data = null, labels = [];

function aggregateFor(range) { return range > 6 * 3600 ? "15min" : range > 3600 ? "1min" : "raw"; }

async function show() {
  names = [...form.point.selectedOptions].map((o) => o.value).slice(0, 8);
  if (!names.length) { message.textContent = "Choose one or more points."; return; }
  const range = Number(form.range.value);
  const now = Date.now() / 1000;
  labels = names.map((n) => ({ label: n, dash: null }));
  try {
    const { series } = await api("historian/series", { query: { point: names, since: now - range, aggregate: aggregateFor(range) } });
    let all = series;
    if (form.forecast.checked) {  // the stored forecasts of the same points, up to a day ahead, dashed
      const { forecasts } = await api("historian/forecasts", { query: { point: names, since: now - range, until: now + 86400 } });
      all = [...series, ...forecasts];
      labels = [...labels, ...forecasts.map((f) => ({ label: `${f.point} (forecast)`, dash: [8, 6], of: names.indexOf(f.point) }))];
    }
    const times = [...new Set(all.flatMap((s) => s.time))].sort((a, b) => a - b);
    const index = new Map(times.map((t, i) => [t, i]));
    data = [times, ...all.map((s) => { const col = new Array(times.length).fill(null); s.time.forEach((t, i) => { col[index.get(t)] = s.value[i]; }); return col; })];
    message.textContent = `${times.length} samples (${aggregateFor(range)})` + (form.forecast.checked ? `, ${labels.length - names.length} forecast series` : "");
  } catch (e) {
    message.textContent = e.status === 503 ? "No historian in this deployment: showing live values only." : e.message;
    data = [[], ...names.map(() => [])];
    labels = names.map((n) => ({ label: n, dash: null }));
  }
  plot?.destroy();
  plot = new uPlot({
    width: box.clientWidth - 16, height: 360,
    axes: [{ stroke: "#9aa7b4", grid: { stroke: "#3a445255" } }, { stroke: "#9aa7b4", grid: { stroke: "#3a445255" } }],
    series: [{}, ...labels.map((l, i) => ({ label: l.label, stroke: COLOURS[(l.of ?? i) % COLOURS.length], width: 2, spanGaps: true, dash: l.dash || undefined }))],
  }, data, box);
  live.points(names, onValue);
}

function onValue(row) {
  if (!plot || !form.live.checked || row.time === null) return;
  const k = names.indexOf(row.name);
  if (k < 0) return;
  data[0].push(row.time);
  data.forEach((col, i) => { if (i > 0) col.push(i === k + 1 ? row.value : null); });  // forecast columns get gaps
  plot.setData(data);
}

form.addEventListener("submit", (event) => { event.preventDefault(); show(); });
addEventListener("resize", () => plot?.setSize({ width: box.clientWidth - 16, height: 360 }));
if (form.point.selectedOptions.length) show();
