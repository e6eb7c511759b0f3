// Ctrl+Enter (or Cmd+Enter) sends the form the text is typed in: the reply form mails the
// customer, the note form only ever adds a note. Nothing else changes without JavaScript.
(function () {
  "use strict";
  document.querySelectorAll("form.compose textarea").forEach(function (area) {
    area.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && area.value.trim() !== "") {
        event.preventDefault();
        var form = area.form;
        if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
      }
    });
  });
})();
