// Small page behaviours without inline scripts (the CSP forbids them):
// - the main menu's drop-downs (<details class="navgroup">, the user menu): one open at a
//   time, closed by a click elsewhere or Escape; without this script each still opens and
//   closes on its own;
// - record pickers (macros.picker): a ticked choice moves up to the chosen ones, so a new
//   search keeps it; Enter in the search box searches instead of submitting the form.
(function () {
  "use strict";
  var MENUS = "details.navgroup, details.usermenu";
  function closeAll(except) {
    document.querySelectorAll(MENUS).forEach(function (d) {
      if (d !== except) { d.removeAttribute("open"); }
    });
  }
  document.addEventListener("click", function (ev) {
    closeAll(ev.target.closest(MENUS));
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") { closeAll(null); }
    if (ev.key === "Enter" && ev.target.matches && ev.target.matches(".picker-search")) {
      ev.preventDefault();
      ev.target.dispatchEvent(new Event("search", { bubbles: true }));
    }
  });
  function settle(picker) {
    var chosen = picker.querySelector(".picker-chosen");
    if (!chosen) { return; }
    picker.querySelectorAll(".picker-options input:checked").forEach(function (input) {
      var label = input.closest("label");
      if (input.type === "radio") {  // one company: the one chosen before goes
        chosen.querySelectorAll("label.is-chosen").forEach(function (l) { l.remove(); });
      }
      label.classList.add("is-chosen");
      chosen.appendChild(label);
    });
    if (!picker.querySelector(".picker-chosen input:checked")) {
      var none = chosen.querySelector(".picker-none input");
      if (none) { none.checked = true; }
    }
  }
  document.addEventListener("change", function (ev) {
    var picker = ev.target.closest && ev.target.closest(".picker");
    if (picker) { settle(picker); }
  });
  document.addEventListener("htmx:afterSwap", function (ev) {
    var picker = ev.target.closest && ev.target.closest(".picker");
    if (picker) { settle(picker); }
  });
}());
