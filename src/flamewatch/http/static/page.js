// flamewatch status page: redraw <main> when the daemon has news, without reloading the page.
// Polls /fragment?since=<version>; the server answers 204 when nothing changed. A bearer token may be
// given in the address's fragment (#token=...), which browsers never send to the server or its logs:
// the page then arrives as an empty shell, and this script fetches its data with the token as a header.
(function () {
  "use strict";
  var main = document.getElementById("status");
  var live = document.getElementById("live");
  var token = new URLSearchParams(location.hash.slice(1)).get("token");
  var headers = token ? { Authorization: "Bearer " + token } : {};
  var interval = 2000;

  function say(text) {  // a message of ours, as text
    var p = document.createElement("p");
    p.className = "empty";
    p.id = "waiting";
    p.textContent = text;
    main.replaceChildren(p);
  }

  function poll() {
    fetch("fragment?since=" + encodeURIComponent(main.dataset.version), { headers: headers, cache: "no-store" })
      .then(function (response) {
        live.classList.toggle("stale", !response.ok);
        if (response.status === 401) {
          say(token ? "The token in this address is wrong." :
            "This status page needs its token: open it as " + location.origin + location.pathname + "#token=...");
          return;
        }
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
  // The shell (no version yet) asks at once; a page drawn with its data waits for the next change.
  setTimeout(poll, main.dataset.version === "" ? 0 : interval);
})();
