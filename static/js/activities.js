// The 记录活动 form on a phone: show only the chosen agreements' parties, hide what a plan does not need,
// preview chosen photos. Every form still works without this file.
(function () {
  "use strict";

  function each(list, fn) { Array.prototype.forEach.call(list, fn); }

  function chosenAgreements(form) {
    var ids = [];
    each(form.querySelectorAll("[data-agreement-choice]"), function (el) {
      if (el.type === "hidden" || el.checked) { ids.push(el.value); }
    });
    return ids;
  }

  // Parties of the chosen agreements are shown and pre-checked (co-building is joint: by default
  // everyone took part); parties of no chosen agreement are hidden and unchecked.
  function syncParties(form, justChanged) {
    var ids = chosenAgreements(form);
    each(form.querySelectorAll("[data-party-checks] li[data-agreements]"), function (li) {
      var mine = li.getAttribute("data-agreements").split(" ");
      var visible = ids.length === 0 || mine.some(function (id) { return ids.indexOf(id) >= 0; });
      var box = li.querySelector("input[type=checkbox]");
      var wasHidden = li.hidden;
      li.hidden = !visible;
      if (box.hasAttribute("data-own")) { return; }
      if (!visible) { box.checked = false; }
      else if (justChanged && (wasHidden || mine.indexOf(justChanged) >= 0)) { box.checked = true; }
    });
  }

  function syncStatus(form) {
    var planned = form.querySelector("[data-status-choice][value=planned]");
    form.classList.toggle("is-planned", !!(planned && planned.checked));
    checkFuture(form);
  }

  function checkFuture(form) {
    var hint = form.querySelector("[data-future-hint]");
    var date = form.querySelector("input[type=date]");
    var held = form.querySelector("[data-status-choice][value=held]");
    if (!hint || !date || !held) { return; }
    var today = new Date();
    var iso = today.getFullYear() + "-" + String(today.getMonth() + 1).padStart(2, "0") + "-" + String(today.getDate()).padStart(2, "0");
    hint.hidden = !(held.checked && date.value && date.value > iso);
  }

  function preview(input) {
    var box = input.closest("fieldset").querySelector("[data-upload-preview]");
    if (!box) { return; }
    box.textContent = "";
    each(input.closest("fieldset").querySelectorAll("input[type=file]"), function (inp) {
      each(inp.files || [], function (file) {
        if (/^image\//.test(file.type) && window.URL && URL.createObjectURL) {
          var img = document.createElement("img");
          img.alt = file.name;
          img.src = URL.createObjectURL(file);
          img.onload = function () { URL.revokeObjectURL(img.src); };
          box.appendChild(img);
        } else {
          var chip = document.createElement("span");
          chip.className = "file-chip";
          chip.textContent = file.name;
          box.appendChild(chip);
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    each(document.querySelectorAll("[data-activity-form]"), function (form) {
      syncParties(form, null);
      syncStatus(form);
      form.addEventListener("change", function (e) {
        var t = e.target;
        if (t.hasAttribute("data-agreement-choice")) { syncParties(form, t.checked ? t.value : null); }
        if (t.hasAttribute("data-status-choice")) { syncStatus(form); }
        if (t.type === "date") { checkFuture(form); }
        if (t.hasAttribute("data-preview")) { preview(t); }
      });
    });
  });
})();
