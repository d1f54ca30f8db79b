// Keeps the counts of a bulk upload's progress page current without reloading it:
// polls the upload's small JSON endpoint (counts only, no patient data). Loaded as a
// file: the Content-Security-Policy forbids inline scripts. Without JavaScript the
// page shows the counts as of its loading.
//
// Markup: [data-bulk-progress][data-url][data-poll-seconds][data-done] holding
// [data-count="name"] elements (filled with the JSON's numbers), a <progress>,
// [data-when-done] (shown once every kit has an answer), [data-when-failed] (shown
// once a kit failed) and [data-when-stopped] (shown when polling stops early).
//
// Polling stops after data-poll-seconds (the session's idle timeout), so a screen
// left open still lets the portal sign its user out; and on any error, including a
// redirect to the login page once the session has ended.
(function () {
  "use strict";

  var INTERVAL_MS = 3000;
  var root = document.querySelector("[data-bulk-progress]");
  if (!root || !window.fetch || root.getAttribute("data-done") === "true") {
    return;
  }
  var url = root.getAttribute("data-url");
  var stopAt = Date.now() + 1000 * (parseInt(root.getAttribute("data-poll-seconds"), 10) || 900);

  function showAll(selector, visible) {
    Array.prototype.forEach.call(document.querySelectorAll(selector), function (element) {
      if (visible) {
        element.removeAttribute("hidden");
      }
    });
  }

  function update(data) {
    Array.prototype.forEach.call(root.querySelectorAll("[data-count]"), function (element) {
      var value = data[element.getAttribute("data-count")];
      if (typeof value === "number") {
        element.textContent = String(value);
      }
    });
    var bar = root.querySelector("progress");
    if (bar && typeof data.total === "number") {
      bar.max = Math.max(data.total, 1);
      bar.value = data.submitted + data.failed;
    }
    showAll("[data-when-done]", data.done === true);
    showAll("[data-when-failed]", data.failed > 0);
  }

  function stop() {
    showAll("[data-when-stopped]", true);
  }

  function poll() {
    if (Date.now() > stopAt) {
      stop();
      return;
    }
    fetch(url, { credentials: "same-origin", redirect: "error", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        update(data);
        if (!data.done) {
          window.setTimeout(poll, INTERVAL_MS);
        }
      })
      .catch(stop);
  }

  window.setTimeout(poll, INTERVAL_MS);
})();
