// Warn, without refusing, when the incident is older than the retention period: read from the
// date's day, month and year boxes as they are typed.
(function () {
  "use strict";
  var warning = document.getElementById("old-incident-warning");
  var boxes = ["day", "month", "year"].map(function (part) {
    return document.getElementById("id_incident_date_" + part);
  });
  if (!warning || boxes.indexOf(null) !== -1) return;
  var days = parseInt(warning.textContent.match(/\d+/)[0], 10);
  function check() {
    var day = parseInt(boxes[0].value, 10);
    var month = parseInt(boxes[1].value, 10);
    var year = parseInt(boxes[2].value, 10);
    if (!day || !month || !(year > 999)) { warning.hidden = true; return; }
    var age = (Date.now() - new Date(year, month - 1, day, 12).getTime()) / 86400000;
    warning.hidden = !(age > days);
  }
  boxes.forEach(function (box) { box.addEventListener("input", check); });
  check();
})();
