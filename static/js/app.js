// Small progressive enhancements; every page works without them.
(function () {
  "use strict";
  document.addEventListener("click", function (e) {
    var t = e.target.closest("[data-toggle-nav]");
    if (t) {
      var nav = document.getElementById(t.getAttribute("aria-controls"));
      var open = nav.classList.toggle("open");
      t.setAttribute("aria-expanded", open ? "true" : "false");
    }
  });
  // Confirmation for destructive actions: <form data-confirm="…">
  document.addEventListener("submit", function (e) {
    var f = e.target;
    var msg = f.getAttribute && f.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { e.preventDefault(); return; }
    // Avoid double submissions on slow mobile networks.
    var btn = f.querySelector("button[type=submit]:not([data-keep-enabled])");
    if (btn && !f.hasAttribute("data-no-disable")) {
      setTimeout(function () { btn.disabled = true; }, 0);
      setTimeout(function () { btn.disabled = false; }, 8000);
    }
  });
  // Wide tables and charts scroll sideways on a phone: a wrapper that overflows must be reachable by
  // keyboard to be scrolled (WCAG 2.1.1; axe "scrollable-region-focusable").
  function focusableScrollers() {
    document.querySelectorAll(".table-wrap, .chart-wrap").forEach(function (el) {
      if (el.hasAttribute("tabindex") && !el.hasAttribute("data-auto-tabindex")) { return; }
      if (el.scrollWidth > el.clientWidth) {
        el.setAttribute("tabindex", "0");
        el.setAttribute("data-auto-tabindex", "");
      } else if (el.hasAttribute("data-auto-tabindex")) {
        el.removeAttribute("tabindex");
        el.removeAttribute("data-auto-tabindex");
      }
    });
  }
  focusableScrollers();
  var resizeTimer;
  window.addEventListener("resize", function () { clearTimeout(resizeTimer); resizeTimer = setTimeout(focusableScrollers, 200); });

  // Live progress of a background run (a month's reports, a ledger import): <section data-run-progress="JSON
  // URL"> is polled; each [data-field="name"] inside shows state[name], a <progress data-field="percent">
  // the bar (no figure while percent is null: busy without a count). When the run has finished,
  // [data-when-finished] elements appear, or with data-run-reload the page reloads to show the outcome.
  // Without JavaScript the page shows the state it was rendered with (reload for progress).
  function initRunProgress() {
    var box = document.querySelector("[data-run-progress]");
    if (!box) { return; }
    var url = box.getAttribute("data-run-progress");
    var delay = 1000;

    function show(state) {
      box.querySelectorAll("[data-field]").forEach(function (el) {
        var name = el.getAttribute("data-field");
        if (el.tagName === "PROGRESS") {
          if (state[name] === null) { el.removeAttribute("value"); el.textContent = ""; }
          else { el.value = state[name]; el.textContent = state[name] + "%"; }
        } else if (Object.prototype.hasOwnProperty.call(state, name)) {
          el.textContent = state[name];
        }
      });
      if (state.finished) {
        box.querySelectorAll("[data-when-finished]").forEach(function (el) { el.hidden = false; });
      }
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
          else if (box.hasAttribute("data-run-reload")) { window.location.reload(); }
        })
        .catch(function () {
          // Network hiccup (phone changing cells): back off and keep trying.
          delay = Math.min(delay * 2, 15000);
          window.setTimeout(poll, delay);
        });
    }
    poll();
  }
  initRunProgress();
})();
