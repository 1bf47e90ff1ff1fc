// A redaction job's progress, polled from its JSON endpoint every two seconds while it is being
// made; when it has finished, the page is loaded again to show the copy (or why it failed).
// Without script the page's refresh link does the same by hand.
(function () {
  "use strict";
  document.querySelectorAll("[data-redaction-job]").forEach(function (box) {
    if (box.dataset.polling) return;
    box.dataset.polling = "yes";
    var url = box.getAttribute("data-redaction-job");
    var bar = box.querySelector("[data-job-progress]");
    var percent = box.querySelector("[data-job-percent]");
    var status = box.querySelector("[data-job-status]");
    if (!bar) return;
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error(response.status);
          return response.json();
        })
        .then(function (job) {
          bar.value = job.progress;
          bar.textContent = job.progress + "%";
          if (percent) percent.textContent = job.progress + "%";
          if (status) status.textContent = job.status_text;
          if (job.finished) { window.location.reload(); return; }
          window.setTimeout(poll, 2000);
        })
        .catch(function () { window.setTimeout(poll, 10000); });
    }
    window.setTimeout(poll, 1000);
  });
})();
