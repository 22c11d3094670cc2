// Watches a test send: polls the delivery status endpoint and updates the box in place (no reload).
(function () {
  "use strict";
  var box = document.querySelector(".watch[data-watch-url]");
  if (!box) return;
  var url = box.dataset.watchUrl, polls = 0, maxPolls = 180;
  var value = box.querySelector(".watch-value"), list = box.querySelector(".watch-explanation");
  var order = { pending: 0, queued: 1, sending: 1, sent: 2, delivered: 3 };

  function render(data) {
    var text = data.status;
    if (data.status === "failed") text += ": " + (data.error_message || "no message from the provider");
    if (data.status === "suppressed") text += ": " + (data.reason || "");
    if (data.simulated) text += " (simulated)";
    value.textContent = text;
    value.className = "watch-value status status-" + data.status;
    box.dataset.status = data.status;
    var reached = order.hasOwnProperty(data.status) ? order[data.status] : -1;
    box.querySelectorAll(".watch-steps li").forEach(function (li) {
      var step = order[li.dataset.step];
      li.classList.toggle("done", reached >= step);
      li.classList.toggle("failed", data.status === "failed" && reached < step);
    });
    list.textContent = "";
    (data.explanation || []).forEach(function (line) {
      var li = document.createElement("li");
      li.textContent = line;
      list.appendChild(li);
    });
  }

  function finished(data) {
    if (data.done) return true;
    // Email and simulated sends have no delivery receipt: "sent" is as far as they go. SMS waits for Twilio's callback.
    return data.settled && (data.channel !== "sms" || data.simulated);
  }

  function poll() {
    polls += 1;
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) {
        render(data);
        if (!finished(data) && polls < maxPolls) setTimeout(poll, 1000);
      })
      .catch(function () { if (polls < maxPolls) setTimeout(poll, 3000); });
  }
  poll();
})();
