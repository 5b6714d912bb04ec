"""The dashboard's single page: plain HTML and JavaScript that polls the JSON endpoints.

Routes live in the URL fragment: ``#/`` lists studies, ``#/study/NAME`` shows a study's plots and trials,
``#/study/NAME/trial/N`` one trial. Every ``POLL_MS`` the page asks whether the study changed (``view?since=SEQ``:
a few bytes while it did not); after a change it fetches the shown page of the trial table and the data of the
shown plots, which the server has already cut to what is drawn. The two default plots (history and learning curves)
are drawn on a canvas by the page itself, so the first view needs no plotting library; plotly.js (4.6 MB) is loaded
only when a plot it draws (parallel, slice, contour, timeline, importance) is opened.
"""

from __future__ import annotations

import functools

__all__ = ["PAGE", "POLL_MS", "plotly_js"]

POLL_MS = 500  # milliseconds between checks for changes


@functools.cache
def plotly_js() -> bytes:
    """plotly.js from the installed plotly package (served locally: the page needs no network)."""
    import plotly.offline

    return plotly.offline.get_plotlyjs().encode()


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>lmtune dashboard</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0; color: #222; }
header { background: #1f3b57; color: white; padding: 0.6rem 1.5rem; display: flex; gap: 1.5rem; align-items: center; }
header a { color: white; text-decoration: none; font-weight: 600; }
main { padding: 1rem 1.5rem; max-width: 1400px; }
table { border-collapse: collapse; font-size: 0.88rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ddd; padding: 0.2rem 0.5rem; text-align: left; }
th { background: #f3f3f3; }
tbody tr:hover { background: #f6f9fc; cursor: pointer; }
.COMPLETE { color: #1f77b4; } .PRUNED { color: #ff7f0e; } .FAILED { color: #d62728; }
.RUNNING { color: #2ca02c; } .PAUSED { color: #9467bd; } .WAITING { color: #7f7f7f; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
.plot { min-height: 380px; border: 1px solid #eee; }
.canvas-plot .plot-title { font-size: 0.95rem; font-weight: 600; padding: 0.4rem 0.6rem 0; }
.canvas-plot .legend { font-size: 0.8rem; padding: 0 0.6rem 0.4rem; }
.canvas-plot .legend .traces { margin-right: 0.9rem; }
.canvas-plot .legend i { display: inline-block; width: 0.8rem; height: 0.25rem; margin-right: 0.3rem; vertical-align: middle; }
.canvas-plot .note { opacity: 0.7; }
#status { font-size: 0.8rem; opacity: 0.8; margin-left: auto; }
.failure { color: #d62728; white-space: pre-wrap; }
button { margin-right: 0.3rem; }
</style>
</head>
<body>
<header><a href="#/">lmtune dashboard</a><span id="crumb"></span><span id="status">connecting…</span></header>
<main id="main"></main>
<script>
"use strict";
const POLL_MS = __POLL_MS__;
const PLOTS = ["history", "intermediate", "parallel", "slice", "contour", "timeline", "importance"];
const CANVAS_PLOTS = {history: drawHistory, intermediate: drawCurves};
const COLORS = {COMPLETE: "#1f77b4", PRUNED: "#ff7f0e", FAILED: "#d62728", RUNNING: "#2ca02c", PAUSED: "#9467bd", WAITING: "#7f7f7f"};
let view = {route: null, study: null, seq: -1, page: 0, drawnSeq: {}, plotsShown: ["history", "intermediate"]};
let plotly = null;
function loadPlotly() {
  plotly = plotly || new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = "/static/plotly.min.js"; s.onload = resolve; s.onerror = () => reject(new Error("plotly.js did not load"));
    document.head.appendChild(s);
  });
  return plotly;
}

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const num = (v) => (v === null || v === undefined) ? "–" : (typeof v === "number" ? Number(v.toPrecision(6)) : v);
const $ = (id) => document.getElementById(id);
async function getJSON(url) {
  const r = await fetch(url, {cache: "no-store"});
  if (!r.ok) throw new Error((await r.json()).error || r.statusText);
  return r.json();
}
function route() {
  const parts = location.hash.replace(/^#\\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "study" && parts.length >= 2) {
    return parts[2] === "trial" ? {name: "trial", study: parts[1], number: Number(parts[3])} : {name: "study", study: parts[1]};
  }
  return {name: "studies"};
}

async function renderStudies() {
  const studies = await getJSON("/api/studies");
  $("crumb").textContent = "";
  const rows = studies.map((s) => `<tr data-href="#/study/${encodeURIComponent(s.name)}"><td>${esc(s.name)}</td>` +
    `<td>${s.direction}</td><td>${s.n_trials}</td><td>${Object.entries(s.states).filter(([, n]) => n).map(([k, n]) =>
    `<span class="${k}">${k.toLowerCase()} ${n}</span>`).join(", ")}</td><td>${num(s.best_value)}</td>` +
    `<td>${s.best_number ?? "–"}</td></tr>`).join("");
  $("main").innerHTML = `<h2>Studies</h2><table id="studies"><thead><tr><th>study</th><th>direction</th><th>trials</th>` +
    `<th>states</th><th>best value</th><th>best trial</th></tr></thead><tbody>${rows}</tbody></table>` +
    (studies.length ? "" : "<p>No study in this storage yet.</p>");
}

function studySkeleton(name) {
  $("crumb").innerHTML = `/ ${esc(name)}`;
  const buttons = PLOTS.map((k) => `<button data-plot="${k}">${k}</button>`).join("");
  $("main").innerHTML = `<h2 id="study-title">${esc(name)}</h2><p id="study-summary"></p>` +
    `<p>Plots: ${buttons}</p><div class="grid" id="plots"></div>` +
    `<h3>Trials</h3><p><button id="newer">newer</button><button id="older">older</button> <span id="page-info"></span></p>` +
    `<table id="trials"><thead></thead><tbody></tbody></table>`;
  document.querySelectorAll("button[data-plot]").forEach((b) => b.onclick = () => {
    const k = b.dataset.plot;
    view.plotsShown = view.plotsShown.includes(k) ? view.plotsShown.filter((x) => x !== k) : [...view.plotsShown, k];
    view.drawnSeq = {}; drawPlots();
  });
  const turn = (page) => { view.page = page; view.seq = -1; refreshStudy(view.study); };
  $("newer").onclick = () => turn(Math.max(0, view.page - 1));
  $("older").onclick = () => turn(view.page + 1);
}

async function refreshStudy(name) {
  const page = view.page;
  const data = await getJSON(`/api/studies/${encodeURIComponent(name)}/view?page=${page}&since=${view.seq}`);
  if (data.unchanged || page !== view.page || name !== view.study) return;
  view.seq = data.seq;
  view.page = data.page;
  renderTable(data);
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));  // paint the table first
  drawPlots();
}

function renderTable(data) {
  const names = data.columns;
  $("study-summary").innerHTML = `${data.n_trials} trials (` + Object.entries(data.states).map(([k, n]) =>
    `<span class="${k}">${k.toLowerCase()} ${n}</span>`).join(", ") + `); best ` +
    (data.best ? `<a href="#/study/${encodeURIComponent(view.study)}/trial/${data.best.number}">#${data.best.number}</a>: ${num(data.best.value)}` : "–");
  $("page-info").textContent = `page ${data.page + 1} of ${data.pages}`;
  document.querySelector("#trials thead").innerHTML = `<tr><th>#</th><th>state</th><th>value</th>` +
    names.map((n) => `<th>${esc(n)}</th>`).join("") + `<th>steps</th><th>worker</th><th>duration (s)</th></tr>`;
  document.querySelector("#trials tbody").innerHTML = data.rows.map((t) => {
    const duration = t.started_at ? ((t.finished_at ?? Date.now() / 1000) - t.started_at).toFixed(1) : "";
    return `<tr data-number="${t.number}" data-href="#/study/${encodeURIComponent(view.study)}/trial/${t.number}">` +
      `<td>${t.number}</td><td class="${t.state}">${t.state}</td><td>${num(t.value)}</td>` +
      names.map((n) => `<td>${esc(num(t.params[n]))}</td>`).join("") +
      `<td>${t.last_step ?? ""}</td><td>${esc(t.worker_id)}</td><td>${duration}</td></tr>`;
  }).join("");
}

async function drawPlots() {
  const box = $("plots");
  const pending = [];
  for (const k of PLOTS) {
    let div = $(`plot-${k}`);
    if (!view.plotsShown.includes(k)) { if (div) div.remove(); continue; }
    if (!div) { div = document.createElement("div"); div.id = `plot-${k}`; div.className = "plot"; box.appendChild(div); }
    if (view.drawnSeq[k] === view.seq) continue;
    const seq = view.seq;
    const study = encodeURIComponent(view.study);
    const drawn = CANVAS_PLOTS[k]
      ? getJSON(`/api/studies/${study}/series/${k}`).then((data) => CANVAS_PLOTS[k](div, data))
      : Promise.all([getJSON(`/api/studies/${study}/plots/${k}`), loadPlotly()])
        .then(([fig]) => Plotly.react(div, fig.data, {...fig.layout, autosize: true}, {displaylogo: false, responsive: true}));
    pending.push(drawn.then(() => { view.drawnSeq[k] = seq; }).catch((e) => { div.textContent = `${k}: ${e.message}`; }));
  }
  await Promise.all(pending);
}

function drawHistory(div, d) {
  const shown = d.shown < d.n ? `${d.shown} of ${d.n} values shown (each bin's lowest and highest)` : "";
  canvasPlot(div, {title: "Optimisation history", xlabel: "trial", ylabel: `value (${d.direction})`, note: d.n ? shown : "no COMPLETE trial yet",
    traces: [{name: "value", color: COLORS.COMPLETE, mode: "markers", x: d.points.x, y: d.points.y},
             {name: "best so far", color: "#d62728", mode: "steps", x: d.best.x, y: d.best.y}]});
}

function drawCurves(div, d) {
  const note = !d.n ? "no trial has reported an intermediate value yet" : (d.shown < d.n ? `${d.shown} of ${d.n} curves shown (best, latest and a sample)` : "");
  canvasPlot(div, {title: "Intermediate values", xlabel: "step", ylabel: "reported value", note,
    traces: d.traces.map((t) => ({name: t.state.toLowerCase(), color: COLORS[t.state], mode: "lines", x: t.x, y: t.y}))});
}

function ticks(lo, hi, count) {
  if (!(hi > lo)) { hi = lo + 1; lo -= 1; }
  const raw = (hi - lo) / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return {lo, hi, out};
}

function canvasPlot(div, spec) {
  div.classList.add("canvas-plot");
  div.innerHTML = `<div class="plot-title">${esc(spec.title)}</div><canvas></canvas><div class="legend">` +
    spec.traces.map((t) => `<span class="traces"><i style="background:${t.color}"></i>${esc(t.name)}</span>`).join("") +
    (spec.note ? `<span class="note">${esc(spec.note)}</span>` : "") + `</div>`;
  const canvas = div.querySelector("canvas");
  const w = Math.max(300, div.clientWidth - 2), h = 320, ratio = window.devicePixelRatio || 1;
  canvas.width = w * ratio; canvas.height = h * ratio; canvas.style.width = `${w}px`; canvas.style.height = `${h}px`;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const t of spec.traces) for (let i = 0; i < t.x.length; i++) {
    if (t.x[i] === null || t.y[i] === null) continue;
    x0 = Math.min(x0, t.x[i]); x1 = Math.max(x1, t.x[i]); y0 = Math.min(y0, t.y[i]); y1 = Math.max(y1, t.y[i]);
  }
  if (x0 === Infinity) { x0 = 0; x1 = 1; y0 = 0; y1 = 1; }
  const left = 64, right = 12, top = 10, bottom = 40;
  const xt = ticks(x0, x1, 8), yt = ticks(y0, y1, 6);
  const pad = (yt.hi - yt.lo) * 0.04;
  const X = (v) => left + (v - xt.lo) / (xt.hi - xt.lo) * (w - left - right);
  const Y = (v) => h - bottom - (v - yt.lo + pad) / (yt.hi - yt.lo + 2 * pad) * (h - top - bottom);
  ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = "#444"; ctx.strokeStyle = "#eee"; ctx.lineWidth = 1;
  ctx.textAlign = "center";
  for (const v of xt.out) { ctx.beginPath(); ctx.moveTo(X(v), top); ctx.lineTo(X(v), h - bottom); ctx.stroke(); ctx.fillText(num(v), X(v), h - bottom + 14); }
  ctx.textAlign = "right";
  for (const v of yt.out) { ctx.beginPath(); ctx.moveTo(left, Y(v)); ctx.lineTo(w - right, Y(v)); ctx.stroke(); ctx.fillText(num(v), left - 4, Y(v) + 4); }
  ctx.textAlign = "center"; ctx.fillText(spec.xlabel, (left + w - right) / 2, h - 6);
  ctx.save(); ctx.translate(12, (top + h - bottom) / 2); ctx.rotate(-Math.PI / 2); ctx.fillText(spec.ylabel, 0, 0); ctx.restore();
  for (const t of spec.traces) {
    ctx.strokeStyle = t.color; ctx.fillStyle = t.color;
    if (t.mode === "markers") {
      ctx.globalAlpha = 0.7;
      for (let i = 0; i < t.x.length; i++) ctx.fillRect(X(t.x[i]) - 2, Y(t.y[i]) - 2, 4, 4);
      ctx.globalAlpha = 1;
      continue;
    }
    ctx.lineWidth = t.mode === "steps" ? 2 : 1;
    ctx.beginPath();
    let open = false;
    for (let i = 0; i < t.x.length; i++) {
      if (t.x[i] === null) { open = false; continue; }
      if (!open) { ctx.moveTo(X(t.x[i]), Y(t.y[i])); open = true; continue; }
      if (t.mode === "steps") ctx.lineTo(X(t.x[i]), Y(t.y[i - 1]));
      ctx.lineTo(X(t.x[i]), Y(t.y[i]));
    }
    ctx.stroke();
  }
  canvas.dataset.drawn = String(spec.traces.reduce((n, t) => n + t.x.length, 0));
}

async function renderTrial(name, number) {
  $("crumb").innerHTML = `/ <a href="#/study/${encodeURIComponent(name)}">${esc(name)}</a> / trial ${number}`;
  const t = await getJSON(`/api/studies/${encodeURIComponent(name)}/trials/${number}`);
  const params = Object.entries(t.params).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(num(v))}</td></tr>`).join("");
  const attrs = Object.entries(t.user_attrs).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(JSON.stringify(v).slice(0, 300))}</td></tr>`).join("");
  $("main").innerHTML = `<h2 id="trial-title">Trial ${t.number} <span class="${t.state}">${t.state}</span></h2>` +
    `<p>value ${num(t.value)}; worker ${esc(t.worker_id)}; duration ${num(t.duration)} s</p>` +
    (t.failure_reason ? `<p class="failure" id="failure">failure reason: ${esc(t.failure_reason)}</p>` : "") +
    `<h3>Parameters</h3><table id="params"><tbody>${params}</tbody></table>` +
    `<div class="plot" id="curve"></div>` + (attrs ? `<h3>User attributes</h3><table><tbody>${attrs}</tbody></table>` : "");
  const steps = Object.keys(t.intermediate).map(Number);
  if (steps.length) {
    await loadPlotly();
    await Plotly.react("curve", [{x: steps, y: Object.values(t.intermediate), mode: "lines+markers", name: "reported"}],
      {title: "Intermediate values", xaxis: {title: {text: "step"}}, yaxis: {title: {text: "value"}}, template: "plotly_white"},
      {displaylogo: false});
  } else { $("curve").textContent = "no intermediate values reported"; }
}

async function tick() {
  const r = route();
  const key = JSON.stringify(r);
  try {
    if (key !== view.route) {
      view = {...view, route: key, study: r.study ?? null, seq: -1, page: 0, drawnSeq: {}};
      if (r.name === "study") studySkeleton(r.study);
    }
    if (r.name === "studies") await renderStudies();
    else if (r.name === "study") await refreshStudy(r.study);
    else if (r.name === "trial") await renderTrial(r.study, r.number);
    $("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    $("status").textContent = `error: ${e.message}`;
  }
}

let timer = null;
async function loop() { clearTimeout(timer); await tick(); timer = setTimeout(loop, POLL_MS); }
document.addEventListener("click", (ev) => {
  const row = ev.target.closest("tr[data-href]");
  if (row && !ev.target.closest("a")) location.hash = row.dataset.href;
});
window.addEventListener("hashchange", loop);
loop();
</script>
</body>
</html>
""".replace("__POLL_MS__", str(POLL_MS))
