/* "Back" links ([data-history-back]) go back in the browser's history; without script,
   or with no page to go back to, they follow their href (the start page). A static file
   rather than a javascript: link, so the Content Security Policy can forbid inline script. */
(function () {
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-history-back]");
    if (!link || window.history.length < 2) return;
    event.preventDefault();
    window.history.back();
  });
})();
