// robohost dashboard: confirmations, buttons through the API, live refresh, the equity chart.
// Served from this origin only (the Content-Security-Policy allows no inline script); builds no HTML from
// strings: refreshed regions come from the server's own escaped pages, parsed with DOMParser.
"use strict";

(function () {
  const body = document.body;
  const refreshMs = Math.max(1, Number(body.dataset.refresh || 5)) * 1000;
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  let waiting = false; // a request to the server awaits its answer: refresh every second
  let timer = null;

  function schedule(ms) {
    if (timer) clearTimeout(timer);
    timer = setTimeout(refresh, ms);
  }

  async function refresh() {
    try {
      if (!document.hidden && document.querySelector("[data-live]")) {
        const response = await fetch(location.href, { credentials: "same-origin", headers: { "X-Live": "1" } });
        if (response.redirected && new URL(response.url).pathname === "/login") {
          location.assign(response.url); // signed out elsewhere, or the session expired
          return;
        }
        if (response.ok) {
          const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
          document.querySelectorAll("[data-live][id]").forEach(function (old) {
            const replacement = fresh.getElementById(old.id);
            if (replacement) old.replaceWith(document.importNode(replacement, true));
          });
          const result = document.getElementById("action-result");
          waiting = !!(result && result.textContent.indexOf("waiting for the server") >= 0);
        }
      }
      await drawChart();
    } catch (error) {
      // the server may be restarting: try again at the next tick
    }
    schedule(waiting ? 1000 : refreshMs);
  }

  function setResult(text) {
    const result = document.getElementById("action-result");
    if (result) result.textContent = text;
  }

  async function viaApi(form) {
    const response = await fetch(form.dataset.api, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
    });
    const answer = await response.json().catch(function () { return {}; });
    const url = new URL(location.href);
    url.searchParams.delete("request");
    url.searchParams.delete("notice");
    if (!response.ok) {
      setResult(typeof answer.detail === "string" ? answer.detail : "refused (" + response.status + ")");
      return;
    }
    if (answer.request_id) {
      url.searchParams.set("request", answer.request_id);
      setResult("request " + answer.request_id + " (" + answer.action + "): waiting for the server…");
      waiting = true;
    } else if (answer.resumed) {
      url.searchParams.set("notice", "resumed (it had halted: " + answer.was_halted_because + ")");
    }
    history.replaceState(null, "", url);
    schedule(200);
  }

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    if (form.dataset.api && window.fetch) {
      event.preventDefault();
      viaApi(form).catch(function () { setResult("the server did not answer; try again"); });
    }
  });

  let drawnAt = null;

  async function drawChart() {
    const chart = document.getElementById("equity-chart");
    if (!chart || !window.Plotly) return;
    const response = await fetch(chart.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const data = await response.json();
    const equity = data.equity;
    const last = equity.t_ms.length;
    const stamp = last + ":" + (last ? equity.t_ms[last - 1] + ":" + equity.equity[last - 1] : "");
    if (stamp === drawnAt) return;
    const x = equity.t_ms.map(function (ms) { return new Date(ms); });
    const traces = [
      { x: x, y: equity.equity, type: "scatter", mode: "lines", name: "equity", line: { color: "#2563eb", width: 1.6 } },
      {
        x: x, y: equity.drawdown.map(function (d) { return d * 100; }), type: "scatter", mode: "lines",
        name: "drawdown %", yaxis: "y2", fill: "tozeroy", line: { color: "#dc2626", width: 1 },
      },
    ];
    const layout = {
      margin: { l: 60, r: 20, t: 10, b: 40 }, height: 380, showlegend: false, hovermode: "x unified",
      xaxis: { type: "date", anchor: "y2" },
      yaxis: { domain: [0.34, 1], title: { text: "equity" } },
      yaxis2: { domain: [0, 0.28], title: { text: "drawdown %" }, rangemode: "tozero" },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    };
    await window.Plotly.react(chart, traces, layout, { displaylogo: false, displayModeBar: false, responsive: true });
    drawnAt = stamp;
    chart.dataset.drawn = String(equity.t_ms.length);
  }

  document.addEventListener("visibilitychange", function () { if (!document.hidden) schedule(0); });
  if (document.getElementById("equity-chart")) {
    window.addEventListener("load", function () { drawChart().catch(function () {}); });
  }
  if (document.querySelector("[data-live]")) {
    const result = document.getElementById("action-result");
    waiting = !!(result && result.textContent.indexOf("waiting for the server") >= 0);
    schedule(waiting ? 1000 : refreshMs);
  }
})();
