// Add and remove rows of a Django formset (the kit registration's addresses).
// Loaded as a file: the Content-Security-Policy forbids inline scripts. Without
// JavaScript the page still works with the rows the server rendered; a row is
// removed there by ticking its "Remove this address" box.
//
// Markup: [data-formset][data-formset-prefix] holding the management form,
// [data-formset-list] with one [data-formset-form] per row, a <template
// data-formset-empty> (the formset's empty_form, "__prefix__" for its index),
// and buttons [data-formset-add] / [data-formset-remove] (hidden until wired).
(function () {
  "use strict";

  function setup(root) {
    var prefix = root.getAttribute("data-formset-prefix");
    var total = root.querySelector("#id_" + prefix + "-TOTAL_FORMS");
    var maxForms = root.querySelector("#id_" + prefix + "-MAX_NUM_FORMS");
    var list = root.querySelector("[data-formset-list]");
    var template = root.querySelector("template[data-formset-empty]");
    var addButton = root.querySelector("[data-formset-add]");
    if (!total || !list || !template || !addButton) {
      return;
    }

    function visibleRows() {
      return Array.prototype.filter.call(list.querySelectorAll("[data-formset-form]"), function (row) {
        return !row.hidden;
      });
    }

    function update() {
      var rows = visibleRows();
      var limit = maxForms ? parseInt(maxForms.value, 10) : 1000;
      addButton.disabled = parseInt(total.value, 10) >= limit;
      rows.forEach(function (row) {
        var remove = row.querySelector("[data-formset-remove]");
        if (remove) {
          remove.disabled = rows.length <= 1; // at least one address
        }
      });
    }

    function wire(row) {
      var checkbox = row.querySelector('input[type="checkbox"][name$="-DELETE"]');
      var remove = row.querySelector("[data-formset-remove]");
      if (!checkbox || !remove) {
        return;
      }
      var checkboxWrapper = checkbox.closest(".form-check, .mb-3") || checkbox;
      checkboxWrapper.hidden = true;
      remove.hidden = false;
      if (checkbox.checked) {
        row.hidden = true;
      }
      remove.addEventListener("click", function () {
        checkbox.checked = true;
        row.hidden = true;
        update();
        addButton.focus();
      });
    }

    addButton.hidden = false;
    addButton.addEventListener("click", function () {
      var index = parseInt(total.value, 10);
      var fragment = template.content.cloneNode(true);
      fragment.querySelectorAll("[id], [name], [for], [aria-describedby]").forEach(function (element) {
        ["id", "name", "for", "aria-describedby"].forEach(function (attribute) {
          var value = element.getAttribute(attribute);
          if (value) {
            element.setAttribute(attribute, value.split("__prefix__").join(String(index)));
          }
        });
      });
      var row = fragment.querySelector("[data-formset-form]");
      list.appendChild(fragment);
      total.value = String(index + 1);
      wire(row);
      update();
      var first = row.querySelector("input, select, textarea");
      if (first) {
        first.focus();
      }
    });

    list.querySelectorAll("[data-formset-form]").forEach(wire);
    update();
  }

  document.querySelectorAll("[data-formset]").forEach(setup);
})();
