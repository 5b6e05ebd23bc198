// Registers the site's service worker (sw.js), which keeps the site available offline and,
// on hosts that cannot send the COOP/COEP headers, adds them itself so that the page becomes
// cross-origin isolated and the threaded engine can run. The first visit is not isolated yet
// (the worker does not control the page that registered it), so the page reloads once.
(function () {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return;
  var reloadedKey = 'pipit-coi-reloaded';
  navigator.serviceWorker.register('./sw.js').then(
    function (registration) {
      function reloadOnce() {
        if (window.crossOriginIsolated || sessionStorage.getItem(reloadedKey)) return;
        sessionStorage.setItem(reloadedKey, '1');
        window.location.reload();
      }
      if (registration.active && !navigator.serviceWorker.controller) reloadOnce();
      navigator.serviceWorker.addEventListener('controllerchange', reloadOnce);
    },
    function (error) {
      console.warn('[pipit] service worker not registered; the site needs the network', error);
    },
  );
})();
