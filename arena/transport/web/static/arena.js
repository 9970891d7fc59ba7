// The little the pages do in the browser itself: the turn's countdown, focus on the turn's first
// action (keyboard play), clearing the typed action once sent, and the training page's charts.
(function () {
  function tick() {
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (el) {
      var left = Math.max(0, Math.round((Number(el.dataset.deadline) - Date.now()) / 1000));
      el.textContent = left + " s";
    });
  }
  setInterval(tick, 250);

  document.addEventListener("htmx:oobAfterSwap", function (evt) {
    var target = evt.detail && evt.detail.target;
    if (target && target.id === "turn") {
      var first = target.querySelector("button.action") || target.querySelector("#say-text");
      if (first && !document.activeElement.closest("#turn")) { first.focus(); }
    }
  });
  document.addEventListener("htmx:wsAfterSend", function (evt) {
    var input = document.getElementById("say-text");
    if (input && evt.target && evt.target.id === "say") { input.value = ""; }
  });

  var charts = document.getElementById("charts");
  if (!charts || typeof uPlot === "undefined") { return; }
  var palette = ["#1a66d2", "#d2551a", "#2a9d3a", "#9b2ad2", "#b8860b", "#555", "#c2185b", "#00838f"];
  function draw(data) {
    charts.textContent = "";
    var width = Math.min(charts.clientWidth || 600, 900);
    Object.keys(data.charts).forEach(function (title) {
      var series = data.charts[title], names = Object.keys(series);
      var box = document.createElement("figure");
      box.className = "chart";
      box.setAttribute("aria-label", title);
      charts.appendChild(box);
      new uPlot({
        title: title, width: width, height: 220, scales: { x: { time: false } },
        axes: [{ label: "iteration" }, {}],
        series: [{ label: "iteration" }].concat(names.map(function (name, i) {
          return { label: name, stroke: palette[i % palette.length], width: 2, spanGaps: true };
        })),
      }, [data.x].concat(names.map(function (name) { return series[name]; })), box);
    });
    charts.dataset.drawn = String(data.x.length);
  }
  function refresh() {
    fetch(charts.dataset.metrics, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { draw(data); } });
  }
  refresh();
  setInterval(refresh, 10000);
})();
