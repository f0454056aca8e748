// Runs before the page is drawn (not deferred): tells the stylesheet that script is on, so the
// phone menu can start closed (without script it stays open), and reports the browser's time
// zone in a cookie the server uses when the user has not chosen one.
document.documentElement.classList.add("js");
try {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone) document.cookie = `tz=${encodeURIComponent(zone)}; path=/; max-age=31536000; samesite=lax`;
} catch (_) { /* an old browser: times stay in UTC */ }
