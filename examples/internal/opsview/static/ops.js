// The operator view: polls /ops/api/series every second and draws it with
// uPlot. Each chart's element gets data-points (samples drawn) and
// data-series (lines drawn), for tests and the curious.
"use strict";
const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const charts = {};
window.__opsCharts = charts; // for tests: each chart's uPlot instance holds what it drew

function width(el) { return Math.max(300, el.clientWidth || 540); }

// draw makes or updates chart id with x and named columns.
function draw(id, x, cols, opts) {
  const el = document.getElementById(id);
  const names = cols.map(c => c.name);
  const key = names.join("\u0000");
  const data = [x].concat(cols.map(c => c.values));
  let c = charts[id];
  if (!c || c.key !== key) {
    if (c) { c.plot.destroy(); }
    const series = [{}].concat(cols.map((col, i) => Object.assign({
      label: col.name, stroke: col.stroke || palette[i % palette.length], width: 1.5, spanGaps: false,
    }, col.opts || {})));
    const plot = new uPlot(Object.assign({
      width: width(el), height: 200, series: series,
      scales: { x: { time: true } },
      axes: [{}, { size: 60 }],
      legend: { live: false },
    }, opts || {}), data, el);
    c = charts[id] = { plot: plot, key: key };
  } else {
    c.plot.setData(data);
  }
  el.dataset.points = String(x.length);
  el.dataset.series = String(cols.length);
}

function named(m, prefix, opts) {
  return Object.keys(m || {}).sort().map(k => ({ name: (prefix || "") + k, values: m[k], opts: opts }));
}

function fmtTime(s) { return new Date(s).toLocaleTimeString(); }

function esc(s) { const d = document.createElement("div"); d.textContent = s == null ? "" : String(s); return d.innerHTML; }

function render(s) {
  const x = s.time;
  draw("publish", x, named(s.publish_rate));
  draw("consume", x, named(s.consume_rate));
  draw("lag", x, named(s.lag));
  const lat = [];
  Object.keys(s.p99_ms || {}).sort().forEach((g, i) => {
    const stroke = palette[i % palette.length];
    lat.push({ name: "P99 " + g, values: s.p99_ms[g], stroke: stroke });
    if (s.p50_ms && s.p50_ms[g]) { lat.push({ name: "P50 " + g, values: s.p50_ms[g], stroke: stroke, opts: { dash: [4, 4] } }); }
  });
  draw("latency", x, lat);
  draw("failures", x, [{ name: "retries/s", values: s.retry_rate }, { name: "dead letters", values: s.dead_letters, stroke: "#d62728" }]);
  draw("reach", x, named(s.brokers_up, "", { paths: uPlot.paths.stepped({ align: 1 }) }), { scales: { x: { time: true }, y: { range: [-0.1, 1.1] } } });
  draw("alerts", x, [
    { name: "active", values: s.alerts_active, stroke: "#ff7f0e" },
    { name: "raised", values: s.alerts_raised, stroke: "#d62728" },
    { name: "cleared", values: s.alerts_cleared, stroke: "#2ca02c" },
  ]);
  const up = s.brokers_up || {};
  const last = x.length - 1;
  const b = Object.keys(up).sort().map(n => {
    const v = up[n][last];
    return '<span class="' + (v === 1 ? "up" : "down") + '">' + esc(n) + ": " + (v === 1 ? "reachable" : v === 0 ? "DOWN" : "unknown") + "</span>";
  });
  document.getElementById("brokers").innerHTML = "brokers: " + (b.length ? b.join("") : "–");
  const log = (s.alert_log || []).slice().reverse();
  document.getElementById("alertlog").innerHTML = log.length ? log.map(a =>
    "<tr><td>" + esc(new Date(a.time).toLocaleTimeString()) + '</td><td class="' + (a.cleared ? "cleared" : "raised") + '">' +
    (a.cleared ? "cleared" : "raised") + "</td><td>" + esc(a.kind) + "</td><td>" + esc(a.subject) + "</td><td>" + esc(a.message) + "</td></tr>").join("")
    : '<tr><td colspan="5">none</td></tr>';
  document.getElementById("span").textContent = Math.round(s.samples * s.interval_seconds) + " s";
  document.body.dataset.points = String(s.samples);
}

async function tick() {
  try {
    const r = await fetch("/ops/api/series", { cache: "no-store" });
    if (!r.ok) { throw new Error("HTTP " + r.status); }
    render(await r.json());
    document.getElementById("status").textContent = "live, updated " + fmtTime(Date.now());
  } catch (e) {
    document.getElementById("status").textContent = "cannot reach the server (" + e.message + "), retrying";
  }
}

tick();
setInterval(tick, 1000);
