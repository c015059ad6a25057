// The drawing page's service worker (served at /sw.js, so its scope is the whole page): it keeps
// the page, its scripts, LiteRT.js and the model the page runs on the device, so that after one
// visit the "on this device" mode works with the server stopped or out of reach.
// Network first, the cache when the network fails or is slow: a new kmnist or a new model version
// reaches the page whenever the server answers. Requests to the APIs are never cached: an answer
// from the server is always the server's.
"use strict";

const CACHE = "kmnist-page-1";
const PAGE = [
  "/", "/static/style.css", "/static/app.js", "/static/compare.js", "/static/device.js",
  "/static/prepare.js",
  "/static/vendor/litertjs/litert.js", "/static/vendor/litertjs/wasm-utils.js",
  "/static/vendor/litertjs/litert_wasm_compat_internal.js",
  "/static/vendor/litertjs/litert_wasm_compat_internal.wasm",
];
const SLOW_MS = 4000; // with a copy at hand, wait this long for the network, then use the copy

function kept(url) {
  return url.origin === self.location.origin &&
    (PAGE.includes(url.pathname) || /^\/v1\/models\/[^/]+\/tflite\/[^/]+\.tflite$/.test(url.pathname));
}

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) { return cache.addAll(PAGE); })
    .then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (name) { return name !== CACHE; })
      .map(function (name) { return caches.delete(name); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("fetch", function (event) {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || !kept(url)) return; // the browser's own handling
  event.respondWith(networkFirst(event.request, url.pathname));
});

async function networkFirst(request, key) {
  const cache = await caches.open(CACHE);
  const copy = await cache.match(key);
  const fresh = fetch(request).then(function (response) {
    if (response.ok) cache.put(key, response.clone());
    return response;
  });
  if (!copy) return fresh;
  const slow = new Promise(function (resolve) { setTimeout(resolve, SLOW_MS, copy); });
  return Promise.race([fresh.catch(function () { return copy; }), slow]);
}
