// Live preview of a message template: POSTs the typed fields (with the CSRF token) to the
// admin preview endpoint and shows the rendered text, the SMS encoding/segments and any error.
(function () {
  const form = document.getElementById("template-form");
  if (!form || !form.dataset.previewUrl) return;  // viewers get no preview
  const url = form.dataset.previewUrl;
  const errors = document.getElementById("preview-errors");
  const text = document.getElementById("preview-text");
  const subject = document.getElementById("preview-subject");
  const sms = document.getElementById("preview-sms");
  const htmlForm = document.getElementById("preview-html-form");  // posts into the sandboxed frame
  let timer = null;
  let sequence = 0;

  function field(name) {
    const input = form.elements.namedItem(name);
    return input ? input.value : "";
  }

  async function refresh() {
    const mine = ++sequence;
    const body = new URLSearchParams();
    body.set("csrf_token", field("csrf_token"));
    body.set("subject", field("subject"));
    body.set("body_text", field("body_text"));
    body.set("body_html", field("body_html"));
    let data;
    try {
      const response = await fetch(url, {
        method: "POST",
        body: body,
        headers: {"X-CSRFToken": field("csrf_token"), "Accept": "application/json"},
        credentials: "same-origin",
      });
      data = await response.json();
    } catch (err) {
      errors.textContent = "Preview unavailable: " + err;
      return;
    }
    if (mine !== sequence) return; // a newer request is on its way
    const messages = Object.entries(data.errors || {}).map(([name, message]) => name + ": " + message);
    errors.textContent = messages.join("\n");
    text.textContent = data.body_text || "";
    if (subject) subject.textContent = data.subject || "";
    if (sms && data.sms) {
      sms.textContent = data.sms.encoding + " · " + data.sms.units + " characters · " +
        data.sms.segments + (data.sms.segments === 1 ? " segment" : " segments");
    }
    if (htmlForm) {
      ["subject", "body_text", "body_html"].forEach((name) => { htmlForm.elements.namedItem(name).value = field(name); });
      htmlForm.submit();
    }
  }

  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  });
  refresh();
})();
