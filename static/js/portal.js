// recoverydesk: the one script of the customer pages. Every page works without it; it only
// saves a step: the time-zone list starts on the zone this browser runs in, unless a zone was
// already chosen (a form sent back keeps the choice).
(function () {
  "use strict";
  var zone = document.getElementById("failed_at_zone");
  if (!zone || zone.getAttribute("data-guess") !== "browser") {
    return;
  }
  var guess;
  try {
    guess = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  for (var i = 0; i < zone.options.length; i++) {
    if (zone.options[i].value === guess) {
      zone.selectedIndex = i;
      return;
    }
  }
})();
