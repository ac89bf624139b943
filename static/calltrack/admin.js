/* calltrack's few behaviours on top of django-unfold's admin (loaded through UNFOLD["SCRIPTS"]). */
(function () {
  "use strict";

  // Campaign handlers: a row added with "Add another" gets the next position, not a copy of the blank form's 0.
  document.addEventListener("formset:added", function (event) {
    var name = event.detail && event.detail.formsetName;
    if (name !== "campaign_handlers") { return; }
    var row = event.target.closest ? event.target : null;
    var mine = row && row.querySelector("input[name$='-position']");
    if (!mine) { return; }
    var highest = -1;
    document.querySelectorAll("input[name^='campaign_handlers-'][name$='-position']").forEach(function (input) {
      if (input === mine || input.name.indexOf("__prefix__") !== -1) { return; }
      var value = parseInt(input.value, 10);
      if (!isNaN(value) && value > highest) { highest = value; }
    });
    mine.value = String(highest + 1);
  });

  // Conversion rules: the postback window applies to postback rules only; hide it for the other kinds.
  function togglePostbackWindow(select) {
    var prefix = select.name.replace(/-kind$/, "");
    var input = document.querySelector("[name='" + prefix + "-postback_window']");
    if (!input) { return; }
    var box = input.closest(".field-postback_window") || input.closest("[class*='field-']") || input.parentNode;
    box.style.display = select.value === "postback" ? "" : "none";
  }
  function bindKinds(root) {
    root.querySelectorAll("select[name^='conversion_rules-'][name$='-kind']").forEach(function (select) {
      if (select.dataset.ctBound) { return; }
      select.dataset.ctBound = "1";
      togglePostbackWindow(select);
      select.addEventListener("change", function () { togglePostbackWindow(select); });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { bindKinds(document); });
  document.addEventListener("formset:added", function () { bindKinds(document); });

  // A "Copy" button next to a value shown once (a new webhook secret): copies the element data-copy-target names.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy-target]") : null;
    if (!button) { return; }
    var source = document.querySelector(button.getAttribute("data-copy-target"));
    if (!source) { return; }
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard) { navigator.clipboard.writeText(source.textContent.trim()).then(done); return; }
    var range = document.createRange();
    range.selectNodeContents(source);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    document.execCommand("copy");
    done();
  });
})();
