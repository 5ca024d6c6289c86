// The control dialog: select → confirm → operate (POST /api/v1/commands/select, /operate).
import { api, fmt } from "/static/js/app.js";

const dialog = document.getElementById("control-dialog");
let pending = null;

function choices(kind) {
  if (kind === "double") return [["Open", 1], ["Close", 2]];
  if (kind === "binary") return [["Off", 0], ["On", 1]];
  if (kind === "step") return [["Lower", -1], ["Raise", 1]];
  return null; // set-point: number input
}

export function openControl(point, kind, current) {
  if (!dialog) return;
  pending = null;
  dialog.querySelector("#control-point").textContent = point;
  dialog.querySelector("#control-current").textContent = kind === "double" ? fmt.position(current) : fmt.value(current);
  const box = dialog.querySelector("#control-choices");
  box.replaceChildren(box.querySelector("legend") || document.createElement("legend"));
  box.querySelector("legend").textContent = "Command";
  const options = choices(kind);
  if (options) options.forEach(([label, value], i) => {
    const id = `control-choice-${i}`;
    const input = Object.assign(document.createElement("input"), { type: "radio", name: "control-value", id, value: String(value), checked: i === 0 });
    const text = Object.assign(document.createElement("label"), { htmlFor: id, textContent: label });
    box.append(input, text);
  });
  else {
    const input = Object.assign(document.createElement("input"), { type: "number", step: "any", id: "control-setpoint", required: true });
    const text = Object.assign(document.createElement("label"), { htmlFor: "control-setpoint", textContent: "Set-point" });
    box.append(text, input);
  }
  dialog.dataset.point = point;
  dialog.querySelector("#control-step-select").hidden = false;
  dialog.querySelector("#control-step-confirm").hidden = true;
  dialog.querySelector("#control-done").hidden = true;
  dialog.querySelector("#control-result").textContent = "";
  dialog.showModal();
}

async function select() {
  const point = dialog.dataset.point;
  const radio = dialog.querySelector('input[name="control-value"]:checked');
  const value = radio ? Number(radio.value) : Number(dialog.querySelector("#control-setpoint").value);
  const result = dialog.querySelector("#control-result");
  try {
    pending = await api("commands/select", { method: "POST", body: { point, value, reason: dialog.querySelector("#control-reason").value } });
    dialog.querySelector("#control-summary").textContent = pending.summary;
    dialog.querySelector("#control-expiry").textContent = Math.round(pending.expires_in_s);
    dialog.querySelector("#control-step-select").hidden = true;
    dialog.querySelector("#control-step-confirm").hidden = false;
    dialog.querySelector("#control-operate").focus();
  } catch (e) { result.textContent = `Refused: ${e.message}`; }
}

async function operate() {
  const result = dialog.querySelector("#control-result");
  dialog.querySelector("#control-operate").disabled = true;
  try {
    const answer = await api("commands/operate", { method: "POST", body: { token: pending.token, confirm: true } });
    result.textContent = `${answer.status.toUpperCase()}: ${answer.reason || ""} (step ${answer.step})`;
    result.className = answer.status === "succeeded" ? "" : "error";
  } catch (e) { result.textContent = `Failed: ${e.message}`; result.className = "error"; }
  dialog.querySelector("#control-operate").disabled = false;
  dialog.querySelector("#control-step-confirm").hidden = true;
  dialog.querySelector("#control-done").hidden = false;
  pending = null;
}

async function cancel() {
  if (pending) { try { await api("commands/cancel", { method: "POST", body: { token: pending.token } }); } catch (e) { /* expired */ } }
  pending = null; dialog.close();
}

if (dialog) {
  dialog.querySelector("#control-select").addEventListener("click", select);
  dialog.querySelector("#control-operate").addEventListener("click", operate);
  dialog.querySelector("#control-cancel").addEventListener("click", cancel);
  dialog.querySelectorAll("[data-close]").forEach((b) => b.addEventListener("click", cancel));
}
