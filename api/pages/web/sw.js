// The service worker (served at /sw.js, scope /): keeps the app shell (the Scan and Device
// pages, the bundled modules and stylesheets, the manifest and icons) and the latest signed
// trust bundle, so the app opens and judges with no network. Pages and the bundle: network
// first, the cached copy when the network is gone; a page that answered with a redirect (no
// session) is never cached. Everything else passes through untouched.
const CACHE = "borderledger-shell-v1"; // the same name in static/offline.js
// Fetched at install: files only. The pages are cached as the officer opens them (network
// first below, and by the page itself on its first visit, static/offline.js): fetching a page
// here would end a disabled user's session behind the page's back.
const PAGES = ["/scan", "/device"];
const SHELL = [
  "/static/app.js",
  "/static/app.css",
  "/static/offline.js",
  "/static/offline.css",
  "/manifest.webmanifest",
  "/icons/icon-192.png",
  "/icons/icon-512.png",
];
const CACHED = new Set([...PAGES, ...SHELL, "/v1/trust-bundle", "/v1/trust-bundle/key"]);

async function keep(cache, path) {
  try {
    const response = await fetch(path, { credentials: "same-origin", cache: "no-cache" });
    if (response.ok && !response.redirected) await cache.put(path, response);
  } catch {
    // offline at install: the shell fills in on the next visit
  }
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => Promise.all(SHELL.map((path) => keep(cache, path))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

async function networkFirst(request, path) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok && !response.redirected) await cache.put(path, response.clone());
    return response;
  } catch (exc) {
    const cached = await cache.match(path);
    if (cached) return cached;
    throw exc;
  }
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (!CACHED.has(url.pathname)) return;
  event.respondWith(networkFirst(event.request, url.pathname));
});
