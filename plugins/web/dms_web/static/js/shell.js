// Every page: live-connection status, the critical-alarm banner with flash and beep, the service worker.
import { api, live } from "/static/js/app.js";

const status = document.getElementById("live-status");
live.on("status", (s) => { status.textContent = s === "live" ? "● live" : "○ disconnected"; status.className = `status ${s === "live" ? "ok" : "down"}`; });

// Critical alarms: banner, flash and a beep generated with WebAudio (no audio file).
let audio = null;
const unlock = () => { audio ||= new AudioContext(); if (audio.state === "suspended") audio.resume(); };
addEventListener("pointerdown", unlock, { once: true }); addEventListener("keydown", unlock, { once: true });
export function beep(times = 3) {
  if (!audio || audio.state !== "running") return false;
  const t0 = audio.currentTime;
  for (let i = 0; i < times; i++) {
    const osc = audio.createOscillator(), gain = audio.createGain();
    osc.type = "square"; osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.0001, t0 + i * 0.35); gain.gain.exponentialRampToValueAtTime(0.25, t0 + i * 0.35 + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + i * 0.35 + 0.22);
    osc.connect(gain).connect(audio.destination); osc.start(t0 + i * 0.35); osc.stop(t0 + i * 0.35 + 0.25);
  }
  return true;
}
const banner = document.getElementById("alarm-banner");
let known = new Set();
async function refreshCritical() {
  try {
    const data = await api("alarms", { query: { priority: "critical", unacknowledged: "true" } });
    const ids = new Set(data.alarms.map((a) => a.id));
    const fresh = [...ids].some((id) => !known.has(id));
    known = ids;
    banner.hidden = ids.size === 0;
    banner.textContent = `${ids.size} critical alarm${ids.size === 1 ? "" : "s"} unacknowledged`;
    banner.classList.toggle("flash", ids.size > 0);
    if (fresh) beep();
  } catch (e) { /* the alarm manager may not run in this deployment */ }
}
let timer = null;
live.on("alarm", () => { clearTimeout(timer); timer = setTimeout(refreshCritical, 200); });
refreshCritical();
banner?.addEventListener("click", () => { location.href = "/alarms?priority=critical"; });

if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
