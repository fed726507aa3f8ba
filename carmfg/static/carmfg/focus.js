/* Scanner-first: the field a page offers (marked autofocus) has the focus when the page
   opens, also after a redirect to an anchor such as #action. Browsers skip autofocus
   when the address names an element, and a keyboard-wedge scanner would then type
   into nothing. Nothing is moved if the user has already focused something. */
document.addEventListener("DOMContentLoaded", function () {
  var field = document.querySelector("[autofocus]");
  if (!field || (document.activeElement && document.activeElement !== document.body)) return;
  field.focus({ preventScroll: true });
});
