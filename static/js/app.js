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
})();
