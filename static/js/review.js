// Committee review: small enhancements; every page works without them.
(function () {
  "use strict";
  // Cockpit filters apply as soon as a choice changes (the 筛选 button stays for keyboards and no-JS).
  document.addEventListener("change", function (e) {
    var sel = e.target;
    if (sel.tagName === "SELECT" && sel.form && sel.form.classList.contains("filters") && sel.form.hasAttribute("data-autosubmit")) {
      sel.form.submit();
    }
  });
})();
