// The 记录活动 form on a phone: show only the chosen agreements' parties, hide what a plan does not need,
// preview chosen photos, refuse files over the upload limits before sending. Every form still works without this file.
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

  // Sizes are checked when files are chosen and again before sending: a request over the server's limit is refused
  // before the form is read, and everything typed would be lost. The limits and messages come from the page
  // ([data-upload-limits]: the same words as the server's).
  function mb(bytes) {
    var v = bytes / 1048576;
    return v === Math.round(v) ? String(v) : v.toFixed(1);
  }

  function sizeLabel(bytes) {
    return bytes >= 1048576 ? (bytes / 1048576).toFixed(1) + " MB" : Math.round(bytes / 1024) + " KB";  // as the server
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (m, key) { return key in values ? values[key] : m; });
  }

  function uploadProblem(form) {
    var limits = form.hasAttribute("data-upload-limits") ? form : form.querySelector("[data-upload-limits]");
    if (!limits) { return null; }
    var maxFile = Number(limits.getAttribute("data-max-file-bytes"));
    var maxTotal = Number(limits.getAttribute("data-max-total-bytes"));
    var total = Number(limits.getAttribute("data-existing-bytes")) || 0;
    var problem = null;
    each(form.querySelectorAll("input[type=file]"), function (input) {
      each(input.files || [], function (file) {
        total += file.size;
        if (!problem && maxFile && file.size > maxFile) {
          problem = fill(limits.getAttribute("data-msg-file"), {name: file.name, size: sizeLabel(file.size), max: sizeLabel(maxFile)});
        }
      });
    });
    if (!problem && maxTotal && total > maxTotal) {
      problem = fill(limits.getAttribute("data-msg-total"), {max: mb(maxTotal), total: (total / 1048576).toFixed(1)});
    }
    return {limits: limits, message: problem};
  }

  function checkUploads(form) {
    var found = uploadProblem(form);
    if (!found) { return true; }
    var box = found.limits.querySelector("[data-upload-error]") || form.querySelector("[data-upload-error]");
    if (box) {
      box.textContent = found.message || "";
      box.hidden = !found.message;
    }
    if (found.message) {
      found.limits.classList.add("has-error");
      found.limits.setAttribute("data-size-error", "");
    } else if (found.limits.hasAttribute("data-size-error")) {  // only undo what this check marked
      found.limits.classList.remove("has-error");
      found.limits.removeAttribute("data-size-error");
    }
    return !found.message;
  }

  // Phone photos (12–50 MP, 5–10 MB each) are scaled down in the browser before they are sent: the server keeps at
  // most 4096 px and re-encodes anyway, and four photos straight from a camera are over the upload limit.
  // Only JPEG/PNG over DOWNSCALE_SIDE px are touched; a result that is not smaller is dropped.
  var DOWNSCALE_SIDE = 2560;
  var DOWNSCALE_MIN_BYTES = 1536 * 1024;

  var downscaleSupported = null;
  function canDownscale() {
    if (downscaleSupported === null) {
      downscaleSupported = !!(window.createImageBitmap && window.DataTransfer && window.File &&
                              HTMLCanvasElement.prototype.toBlob);
      // Older engines (Chromium < 60, inside some in-app browsers) have DataTransfer but cannot construct one.
      try { if (downscaleSupported) { new DataTransfer(); } } catch (err) { downscaleSupported = false; }
    }
    return downscaleSupported;
  }
  var DOWNSCALE_TIMEOUT_MS = 20000;  // never hold the form longer than this: the original files are sent instead

  function downscaled(file) {
    if (!/^image\/(jpeg|png)$/.test(file.type) || file.size < DOWNSCALE_MIN_BYTES) { return Promise.resolve(file); }
    return createImageBitmap(file, {imageOrientation: "from-image"}).then(function (bitmap) {
      var side = Math.max(bitmap.width, bitmap.height);
      if (side <= DOWNSCALE_SIDE) { bitmap.close(); return file; }
      var scale = DOWNSCALE_SIDE / side;
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      var ctx = canvas.getContext("2d");
      ctx.fillStyle = "#fff";  // a PNG's transparent parts become white in the JPEG
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.imageSmoothingQuality = "high";
      ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      bitmap.close();
      return new Promise(function (resolve) {
        canvas.toBlob(function (blob) {
          if (!blob || blob.size >= file.size) { resolve(file); return; }
          var name = file.name.replace(/\.(jpe?g|png)$/i, "") + ".jpg";
          resolve(new File([blob], name, {type: "image/jpeg", lastModified: file.lastModified}));
        }, "image/jpeg", 0.88);
      });
    }).catch(function () { return file; });  // not decodable here: the server decides
  }

  function downscaleInput(form, input) {
    var files = Array.prototype.slice.call(input.files || []);
    if (!files.length || !canDownscale()) { return Promise.resolve(); }
    form.setAttribute("data-processing", "");
    var done = false;
    var work = Promise.all(files.map(downscaled)).then(function (result) {
      if (done) { return; }  // timed out: the original files stay chosen
      if (result.some(function (f, i) { return f !== files[i]; })) {
        var dt = new DataTransfer();
        result.forEach(function (f) { dt.items.add(f); });
        input.files = dt.files;
      }
    });
    var timeout = new Promise(function (resolve) { setTimeout(resolve, DOWNSCALE_TIMEOUT_MS); });
    // Whatever goes wrong (a throw, a hang), the form is released with the files as chosen.
    return Promise.race([work, timeout]).catch(function () {}).then(function () { done = true; });
  }

  function guardUploads(form) {
    var pending = 0;
    var submitWhenReady = false;

    function send() {
      if (form.requestSubmit) { form.requestSubmit(); } else if (checkUploads(form)) { form.submit(); }
    }

    form.addEventListener("change", function (e) {
      var input = e.target;
      if (input.type !== "file") { return; }
      if (!input.hasAttribute("data-downscale")) { checkUploads(form); return; }
      pending += 1;
      form.setAttribute("data-processing", "");
      downscaleInput(form, input).catch(function () {}).then(function () {
        pending -= 1;
        if (pending) { return; }
        form.removeAttribute("data-processing");
        if (input.hasAttribute("data-preview")) { preview(input); }
        var ok = checkUploads(form);
        if (submitWhenReady) {
          submitWhenReady = false;
          if (ok) { send(); }
        }
      });
    });
    form.addEventListener("submit", function (e) {
      if (pending) {  // photos still being scaled down: send them once they are ready
        e.preventDefault();
        e.stopPropagation();
        submitWhenReady = true;
        return;
      }
      if (checkUploads(form)) { return; }
      e.preventDefault();
      e.stopPropagation();  // nothing was sent: app.js must not disable the button
      var box = form.querySelector("[data-upload-error]:not([hidden])");
      if (box && box.scrollIntoView) { box.scrollIntoView({block: "center"}); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    each(document.querySelectorAll("[data-activity-form], [data-attachment-form]"), guardUploads);
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
