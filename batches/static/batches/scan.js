/* Keyboard-wedge scanners type the code and press Enter. In a field marked
   data-enter-next (a temperature, the first of two scans) Enter moves to the next
   field instead of submitting, so the last scan is what submits the form. */
document.addEventListener("keydown", function (event) {
  var field = event.target;
  if (event.key !== "Enter" || !field.matches || !field.matches("[data-enter-next]")) return;
  event.preventDefault();
  var next = document.getElementById(field.getAttribute("data-enter-next"));
  if (next) { next.focus(); if (next.select) next.select(); }
});
