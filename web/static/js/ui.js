// Small page behaviours without inline scripts (the CSP forbids them):
// - the main menu's drop-downs (<details class="navgroup">, the user menu): one open at a
//   time, closed by a click elsewhere or Escape; without this script each still opens and
//   closes on its own;
// - Enter in a record picker's search box searches instead of submitting the record form.
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
}());
