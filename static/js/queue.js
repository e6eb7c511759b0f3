// Live queue (docs/reference.md#agent-console): the server tells us by server-sent events
// when anything happened on any ticket; the list is then fetched again and swapped in place.
// Without JavaScript the page is the same list, refreshed by reloading.
(function () {
  "use strict";
  var list = document.getElementById("queue-list");
  if (!list || !window.EventSource || !window.fetch) { return; }
  var busy = false;
  function selected() {
    var picked = {};
    list.querySelectorAll("input[name=ticket]:checked").forEach(function (box) { picked[box.value] = true; });
    return picked;
  }
  function refresh() {
    if (busy) { return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("queue-list");
        if (!fresh) { return; }
        var picked = selected();
        var focused = document.activeElement && document.activeElement.id;
        list.innerHTML = fresh.innerHTML;
        list.querySelectorAll("input[name=ticket]").forEach(function (box) { box.checked = !!picked[box.value]; });
        if (focused && document.getElementById(focused)) { document.getElementById(focused).focus(); }
        var live = document.getElementById("live");
        if (live) { live.textContent = "Updated " + new Date().toLocaleTimeString(); }
        list.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  var source = new EventSource("/agent/queue/events");
  source.addEventListener("activity", refresh);
})();
