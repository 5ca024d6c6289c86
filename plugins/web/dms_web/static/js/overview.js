// Overview: live values of the listed points; control buttons open the confirmation dialog.
import { live, fmt } from "/static/js/app.js";
import { openControl } from "/static/js/control.js";

const rows = new Map([...document.querySelectorAll("#points tbody tr")].map((tr) => [tr.dataset.point, tr]));
const current = new Map();
live.points([...rows.keys()], (row) => {
  const tr = rows.get(row.name);
  if (!tr) return;
  current.set(row.name, row.value);
  const cell = tr.querySelector(".value");
  cell.textContent = tr.dataset.kind === "double" ? fmt.position(row.value) : fmt.value(row.value);
  cell.dataset.value = row.value === null ? "" : String(row.value);
  cell.classList.remove("changed"); void cell.offsetWidth; cell.classList.add("changed");
  const q = tr.querySelector(".quality");
  q.textContent = row.good ? "good" : `0x${row.quality.toString(16)}`;
  q.className = `quality ${row.good ? "" : "bad"}`;
  tr.querySelector(".time").textContent = fmt.time(row.time);
});
document.querySelectorAll("button[data-control]").forEach((button) =>
  button.addEventListener("click", () => openControl(button.dataset.control, button.dataset.kind, current.get(button.dataset.control))));
