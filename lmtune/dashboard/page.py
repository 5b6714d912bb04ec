"""The dashboard's single page: plain HTML and JavaScript that polls the JSON endpoints.

Routes live in the URL fragment: ``#/`` lists studies, ``#/study/NAME`` shows a study's plots and trials,
``#/study/NAME/trial/N`` one trial. Trials are fetched incrementally (``?since=SEQ``) every ``POLL_MS``; plots
are redrawn only when the study changed. The trial table shows one page of rows at a time so large studies
stay quick.
"""

from __future__ import annotations

import functools

__all__ = ["PAGE", "POLL_MS", "plotly_js"]

POLL_MS = 1000  # milliseconds between refreshes


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
#status { font-size: 0.8rem; opacity: 0.8; margin-left: auto; }
.failure { color: #d62728; white-space: pre-wrap; }
button { margin-right: 0.3rem; }
</style>
<script src="/static/plotly.min.js"></script>
</head>
<body>
<header><a href="#/">lmtune dashboard</a><span id="crumb"></span><span id="status">connecting…</span></header>
<main id="main"></main>
<script>
"use strict";
const POLL_MS = __POLL_MS__;
const PAGE_ROWS = 100;
const PLOTS = ["history", "intermediate", "parallel", "slice", "contour", "timeline", "importance"];
let view = {route: null, study: null, seq: -1, trials: new Map(), page: 0, drawnSeq: {}, plotsShown: ["history", "intermediate"]};

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
  $("newer").onclick = () => { view.page = Math.max(0, view.page - 1); renderTable(); };
  $("older").onclick = () => { view.page += 1; renderTable(); };
}

async function refreshStudy(name) {
  const data = await getJSON(`/api/studies/${encodeURIComponent(name)}/trials?since=${view.seq}`);
  for (const t of data.trials) view.trials.set(t.number, t);
  const changed = data.trials.length > 0 || view.seq < 0;
  view.seq = data.seq;
  view.direction = data.direction;
  if (changed) {
    renderTable();
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));  // paint the table first
    drawPlots();
  }
}

function renderTable() {
  const all = [...view.trials.values()].sort((a, b) => b.number - a.number);
  const names = [];
  for (const t of all.slice(0, 500)) for (const k of Object.keys(t.params)) if (!names.includes(k)) names.push(k);
  const pages = Math.max(1, Math.ceil(all.length / PAGE_ROWS));
  view.page = Math.min(view.page, pages - 1);
  const rows = all.slice(view.page * PAGE_ROWS, (view.page + 1) * PAGE_ROWS);
  const counts = {};
  for (const t of all) counts[t.state] = (counts[t.state] || 0) + 1;
  const done = all.filter((t) => t.state === "COMPLETE" && t.value !== null);
  const best = done.length ? done.reduce((a, b) => (view.direction === "maximize" ? b.value > a.value : b.value < a.value) ? b : a) : null;
  $("study-summary").innerHTML = `${all.length} trials (` + Object.entries(counts).map(([k, n]) =>
    `<span class="${k}">${k.toLowerCase()} ${n}</span>`).join(", ") + `); best ` +
    (best ? `<a href="#/study/${encodeURIComponent(view.study)}/trial/${best.number}">#${best.number}</a>: ${num(best.value)}` : "–");
  $("page-info").textContent = `page ${view.page + 1} of ${pages}`;
  document.querySelector("#trials thead").innerHTML = `<tr><th>#</th><th>state</th><th>value</th>` +
    names.map((n) => `<th>${esc(n)}</th>`).join("") + `<th>steps</th><th>worker</th><th>duration (s)</th></tr>`;
  document.querySelector("#trials tbody").innerHTML = rows.map((t) => {
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
    pending.push(getJSON(`/api/studies/${encodeURIComponent(view.study)}/plots/${k}`)
      .then((fig) => Plotly.react(div, fig.data, {...fig.layout, autosize: true}, {displaylogo: false, responsive: true}))
      .then(() => { view.drawnSeq[k] = seq; })
      .catch((e) => { div.textContent = `${k}: ${e.message}`; }));
  }
  await Promise.all(pending);
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
      view = {...view, route: key, study: r.study ?? null, seq: -1, trials: new Map(), page: 0, drawnSeq: {}};
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
