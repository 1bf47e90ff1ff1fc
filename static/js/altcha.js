// Proof of work for the public request form (the ALTCHA protocol, served from this site; no
// third-party script). The server's challenge is SHA-256(salt + number) for a secret number; the
// browser finds the number and sends it back signed, which costs a person a second and a flood
// of automated submissions a great deal.
(function () {
  "use strict";
  var form = document.getElementById("request-form");
  if (!form) return;
  var challenge = JSON.parse(document.getElementById("altcha-challenge").textContent);
  var field = form.querySelector("input[name=altcha]");
  var status = document.getElementById("altcha-status");
  var button = form.querySelector("button[type=submit]");
  button.disabled = true;
  status.textContent = "Checking you are not a robot (a second or two)…";
  var encoder = new TextEncoder();
  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }
  async function solve() {
    for (var n = 0; n <= challenge.maxnumber; n++) {
      var digest = await crypto.subtle.digest("SHA-256", encoder.encode(challenge.salt + n));
      if (hex(digest) === challenge.challenge) return n;
    }
    return null;
  }
  solve().then(function (number) {
    if (number === null) {
      status.textContent = "The check failed: reload the page and try again.";
      return;
    }
    field.value = btoa(JSON.stringify({
      algorithm: challenge.algorithm, challenge: challenge.challenge, number: number,
      salt: challenge.salt, signature: challenge.signature
    }));
    status.textContent = "Check done: you can send the form.";
    button.disabled = false;
  });
})();
