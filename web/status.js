(function () {
  "use strict";
  var failedSince = null;
  function clock(d) { return d.toISOString().substring(11, 19); }
  function tick() {
    fetch("live", { cache: "no-store" }).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.text();
    }).then(function (html) {
      failedSince = null;
      var old = document.getElementById("live");
      var t = document.createElement("template");
      t.innerHTML = html.trim();
      if (old && t.content.firstElementChild) { old.replaceWith(t.content.firstElementChild); }
    }).catch(function () {
      if (failedSince === null) { failedSince = new Date(); }
      var c = document.getElementById("live-clock");
      if (c) {
        c.textContent = "dbprobe not answering since " + clock(failedSince) + " UTC: what you see is old";
        c.className = "live-clock lost";
      }
    });
  }
  function refreshReport() {
    fetch("report", { cache: "no-store" }).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      var main = document.querySelector("main"), fresh = doc.querySelector("main"), live = document.getElementById("live");
      if (!main || !fresh || !live) { return; }
      var s = live.nextElementSibling;
      while (s && s.tagName === "SCRIPT") { s = s.nextElementSibling; }
      while (s) { var n = s.nextSibling; s.remove(); s = n; }
      while (fresh.firstChild) { main.appendChild(document.adoptNode(fresh.firstChild)); }
    }).catch(function () {});
  }
  setInterval(tick, 1000);
  setInterval(refreshReport, 10000);
})();
