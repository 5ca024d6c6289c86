// Service worker: makes the HMI installable (PWA) and keeps the static shell available.
// Data (API, WebSocket, pages) always come from the network: a control room must never see stale values.
const CACHE = "leitstand-static-v1";
const SHELL = ["/static/css/app.css", "/static/js/app.js", "/static/js/shell.js", "/static/icons/icon.svg"];
self.addEventListener("install", (event) => { event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting())); });
self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k)))).then(() => self.clients.claim()));
});
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || !url.pathname.startsWith("/static/")) return;
  event.respondWith(fetch(event.request).then((response) => {
    const copy = response.clone(); caches.open(CACHE).then((c) => c.put(event.request, copy)); return response;
  }).catch(() => caches.match(event.request)));
});
