// Monthly reports: a month picker that jumps to the chosen month, and live progress of a month batch.
// Both are enhancements: without JavaScript the pages still show everything (reload for progress).
(function () {
  "use strict";

  function initMonthPicker() {
    var wrap = document.querySelector("[data-month-picker]");
    if (!wrap) { return; }
    var select = wrap.querySelector("select[data-month-url]");
    wrap.hidden = false;
    select.addEventListener("change", function () {
      window.location.href = select.getAttribute("data-month-url").replace("__MONTH__", encodeURIComponent(select.value));
    });
  }

  function initRunProgress() {
    var box = document.querySelector("[data-run-progress]");
    if (!box) { return; }
    var url = box.getAttribute("data-run-progress");
    var delay = 1000;

    function show(state) {
      ["status_label", "done", "total", "created", "failed", "message"].forEach(function (name) {
        var el = box.querySelector('[data-field="' + name + '"]');
        if (el) { el.textContent = state[name]; }
      });
      var bar = box.querySelector('progress[data-field="percent"]');
      if (bar) { bar.value = state.percent; bar.textContent = state.percent + "%"; }
      var link = box.querySelector("[data-when-finished]");
      if (link && state.finished) { link.hidden = false; }
    }

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (resp) {
          if (!resp.ok) { throw new Error("HTTP " + resp.status); }
          return resp.json();
        })
        .then(function (state) {
          show(state);
          delay = 1000;
          if (!state.finished) { window.setTimeout(poll, delay); }
        })
        .catch(function () {
          // Network hiccup (phone changing cells): back off and keep trying.
          delay = Math.min(delay * 2, 15000);
          window.setTimeout(poll, delay);
        });
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    initMonthPicker();
    initRunProgress();
  });
})();
