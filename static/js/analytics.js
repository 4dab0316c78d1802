// First-party page views and time on page. Sends one small JSON beacon to
// /a/events when the page is hidden or left (visibilitychange / pagehide), which
// is the last moment a browser reliably lets a page talk to its server. Nothing
// is sent when the browser asks not to be tracked; the server checks again.
(() => {
  const endpoint = document.currentScript && document.currentScript.dataset.endpoint;
  if (!endpoint || !navigator.sendBeacon) return;
  if (navigator.doNotTrack === "1" || window.doNotTrack === "1" || navigator.globalPrivacyControl) return;

  let visibleSince = document.visibilityState === "visible" ? Date.now() : null;
  let visibleMs = 0;
  let sent = false;

  const send = () => {
    if (sent) return;
    if (visibleSince !== null) visibleMs += Date.now() - visibleSince;
    visibleSince = null;
    sent = true;
    const event = {
      name: "page_view",
      properties: {
        path: location.pathname + location.search,
        title: document.title.slice(0, 300),
        seconds_on_page: Math.round(visibleMs / 100) / 10,
      },
    };
    // A string body is sent as text/plain: no CORS preflight, which beacons cannot do.
    navigator.sendBeacon(endpoint, JSON.stringify(event));
  };

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") send();
  });
  window.addEventListener("pagehide", send);
  // Back/forward cache: a restored page is a new view.
  window.addEventListener("pageshow", (e) => {
    if (!e.persisted) return;
    sent = false;
    visibleMs = 0;
    visibleSince = Date.now();
  });
})();
