// flamewatch status page: redraw <main> when the daemon has news, without reloading the page.
// Polls /fragment?since=<version>; the server answers 204 when nothing changed. A bearer token may be
// given in the address's fragment (#token=...), which browsers never send to the server or its logs.
(function () {
  "use strict";
  var main = document.getElementById("status");
  var live = document.getElementById("live");
  var token = new URLSearchParams(location.hash.slice(1)).get("token");
  var headers = token ? { Authorization: "Bearer " + token } : {};
  var interval = 2000;

  function poll() {
    fetch("fragment?since=" + encodeURIComponent(main.dataset.version), { headers: headers, cache: "no-store" })
      .then(function (response) {
        live.classList.toggle("stale", !response.ok);
        if (response.status !== 200) return;
        var version = response.headers.get("X-Flamewatch-Version");
        return response.text().then(function (html) {
          main.innerHTML = html;  // drawn and escaped by the server
          if (version) main.dataset.version = version;
        });
      })
      .catch(function () { live.classList.add("stale"); })
      .then(function () { setTimeout(poll, interval); });
  }
  setTimeout(poll, interval);
})();
