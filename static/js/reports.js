// Monthly reports: a month picker that jumps to the chosen month (a month batch's live progress is the
// [data-run-progress] box of app.js). An enhancement: without JavaScript the pages still show everything.
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

  document.addEventListener("DOMContentLoaded", function () {
    initMonthPicker();
  });
})();
