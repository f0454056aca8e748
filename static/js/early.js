// Runs before the page is drawn (not deferred): tells the stylesheet that script is on, so the
// phone menu can start closed (without script it stays open), and reports the browser's time
// zone in a cookie the server uses when the user has not chosen one.
document.documentElement.classList.add("js");
try {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  // Zone names are plain cookie characters; the server reads the value as it is (no decoding).
  if (/^[A-Za-z0-9_+\-/]+$/.test(zone)) {
    document.cookie = `tz=${zone}; path=/; max-age=31536000; samesite=lax`;
  }
} catch (_) { /* an old browser: times stay in UTC */ }
