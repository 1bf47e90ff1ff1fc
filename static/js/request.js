// Warn, without refusing, when the incident is older than the retention period.
(function () {
  "use strict";
  var input = document.getElementById("id_incident_date");
  var warning = document.getElementById("old-incident-warning");
  if (!input || !warning) return;
  var days = parseInt(warning.textContent.match(/\d+/)[0], 10);
  function check() {
    if (!input.value) { warning.hidden = true; return; }
    var age = (Date.now() - new Date(input.value + "T12:00:00").getTime()) / 86400000;
    warning.hidden = !(age > days);
  }
  input.addEventListener("change", check);
  check();
})();
