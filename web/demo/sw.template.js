// The site's service worker, written by web/scripts/build-site.mjs (the precache list and
// version are filled in there). Two jobs:
//  - offline: every file of the site is cached on install and served from the cache first;
//  - cross-origin isolation where the host cannot send headers: responses it serves get
//    Cross-Origin-Opener-Policy / -Embedder-Policy, which browsers honour from a service worker.
const VERSION = __VERSION__;
const FILES = __FILES__;
const CACHE = `pipit-site-${VERSION}`;

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(FILES.map((f) => new Request(f, { cache: 'reload' }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('pipit-site-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

function isolated(response) {
  // Opaque and error responses cannot be rewritten; they pass through as they are.
  if (response.status === 0 || response.type === 'opaque') return response;
  const headers = new Headers(response.headers);
  headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  headers.set('Cross-Origin-Resource-Policy', 'same-origin');
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      // The page itself is looked up without its query (?model=...).
      const cached = await cache.match(request, { ignoreSearch: request.mode === 'navigate' });
      if (cached) return isolated(cached);
      try {
        return isolated(await fetch(request));
      } catch (error) {
        return new Response(`offline, and ${url.pathname} was not cached`, { status: 503, headers: { 'Content-Type': 'text/plain' } });
      }
    })(),
  );
});
