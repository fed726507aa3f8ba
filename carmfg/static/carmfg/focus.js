/* Scanner-first: the field a page offers (marked autofocus) has the focus when the page
   opens, also after a redirect to an anchor such as #action. There browsers skip
   autofocus and, once the page has loaded, move the focus to the anchor (or to the
   page, when the anchor cannot take it): a keyboard-wedge scanner would then type into
   nothing. So the field is focused again after that, unless the user has already
   focused something. */
(function () {
  function focusOffered() {
    var field = document.querySelector("[autofocus]");
    var current = document.activeElement;
    if (!field || (current && current !== document.body && current !== document.documentElement)) return;
    field.focus({ preventScroll: !!window.location.hash });
  }
  document.addEventListener("DOMContentLoaded", focusOffered);
  window.addEventListener("load", function () { window.setTimeout(focusOffered, 0); });
})();
