// Live SLA countdown on ticket pages: <... class="sla-countdown" data-due="ISO" data-warn="ISO" data-state="...">
(function () {
  "use strict";
  function format(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    var parts = [];
    if (d) parts.push(d + "d");
    if (d || h) parts.push(h + "h");
    parts.push(m + "m");
    if (!d) parts.push((s % 60) + "s");
    return parts.join(" ");
  }
  function tick(el) {
    var state = el.dataset.state;
    if (state === "paused" || state === "none" || state === "no_sla") return;
    var due = Date.parse(el.dataset.due), warn = el.dataset.warn ? Date.parse(el.dataset.warn) : null;
    var now = Date.now(), left = due - now;
    if (left <= 0) {
      el.textContent = "breached " + format(left) + " ago";
      el.className = "sla-countdown text-danger";
    } else {
      el.textContent = format(left) + " left";
      el.className = "sla-countdown " + (warn !== null && now >= warn ? "text-warning" : "text-success");
    }
  }
  var clocks = document.querySelectorAll(".sla-countdown[data-due]");
  if (!clocks.length) return;
  function all() { clocks.forEach(tick); }
  all();
  setInterval(all, 1000);
})();
