// dnnops dashboard: polls /v1/dashboard/NAME every few seconds (or reads the document a
// static report embedded in window.DNNOPS_DATA) and draws three views. Time series use
// uPlot; bar charts and tables are plain SVG and HTML. Colours: the Okabe-Ito palette,
// readable with every common kind of colour blindness.
"use strict";

const COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000"];
const REFRESH_MS = 5000;
const embedded = window.DNNOPS_DATA || null;
const charts = {};
let view = "executive";

const $ = (id) => document.getElementById(id);
const esc = (text) => String(text ?? "").replace(/[&<>"']/g, (c) => (
  { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const pct = (v, digits = 1) => (v === null || v === undefined || Number.isNaN(v)) ? "–" : `${(v * 100).toFixed(digits)}%`;
const num = (v, digits = 2) => (v === null || v === undefined || Number.isNaN(v)) ? "–" : Number(v).toFixed(digits);
// a money amount as a person reads it: two significant figures, grouped, never 5.24e-7
const twoFigures = (v) => Number(v.toPrecision(2)).toLocaleString(undefined, { maximumSignificantDigits: 2 });
// a stored ISO time in the viewer's zone, to the minute (no microseconds)
const stamp = (iso) => {
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? String(iso ?? "") : at.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
};
// an audit entry's details as a sentence: "version 3, reason customers complain"
function inWords(details) {
  if (details === null || typeof details !== "object") return String(details ?? "");
  return Object.entries(details).filter(([, v]) => v !== null && v !== undefined && v !== "").map(([k, v]) =>
    `${k.replaceAll("_", " ")} ${typeof v === "object" ? (Array.isArray(v) ? v.map((x) => inWords(x)).join("; ") : `(${inWords(v)})`) : typeof v === "number" ? num(v, Number.isInteger(v) ? 0 : 3) : v}`,
  ).join(", ");
}
// a link only to the web or a relative page: a configured URL is never run as script
const safeLink = (url, text) => (typeof url === "string" && /^(https?:\/\/|[^:]*$)/.test(url))
  ? `<a href="${esc(url)}">${esc(text)}</a>` : "–";
const when = (ts) => new Date(ts * 1000).toLocaleTimeString();

function table(columns, rows) {
  if (!rows.length) return '<p class="empty">nothing yet</p>';
  const head = columns.map((c) => `<th scope="col">${esc(c)}</th>`).join("");
  const body = rows.map((r) => `<tr>${r.map((v) => `<td>${v}</td>`).join("")}</tr>`).join("");
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function estimateCard(estimate) {
  // accuracy before labels: calibrated confidence (CBPE) with its 95% interval
  if (!estimate) return card("estimated accuracy", "–", "no calibrated predictions");
  const note = `${pct(estimate.low)}–${pct(estimate.high)}, ATC ${pct(estimate.atc)}` +
    (estimate.error === null ? "" : `; off by ${num(100 * estimate.error, 1)} pts on labels`);
  return card("estimated accuracy", pct(estimate.cbpe), estimate.reliable ? note : `UNRELIABLE: inputs left the training support; ${note}`, estimate.reliable ? "good" : "bad");
}

// a tiered version (the current one, else a canary): which tier answered, how often the
// first handed on
function tierCard(section) {
  if (!section) return "";
  const split = section.tiers;
  const shares = split.tiers.map((t) => `${t.member} ${pct(t.share, 0)}`).join(" · ");
  const rate = split.escalation_rate;
  return card(`tier split v${section.slis.version}`, rate === null ? "–" : `${pct(rate, 1)} escalated`,
    `${shares}; ${pct(split.expected_escalation_rate, 1)} on validation`,
    rate !== null && rate > 2 * split.expected_escalation_rate + 0.05 ? "warn" : "");
}

function card(label, value, detail = "", tone = "") {
  return `<div class="card"><div class="label">${esc(label)}</div>` +
    `<div class="value ${tone}">${esc(value)}</div><div class="detail">${esc(detail)}</div></div>`;
}

// -- time series ---------------------------------------------------------------------------

function lineChart(id, times, lines, options = {}) {
  const host = $(id);
  const filled = times.filter((_, i) => lines.some((l) => l.values[i] !== null && l.values[i] !== undefined));
  if (filled.length <= 1) {  // one bucket of data is a value, not a lone dot on an empty chart
    if (charts[id]) charts[id].plot.destroy();
    delete charts[id];
    const shown = lines.map((l) => {
      const value = l.values.find((v) => v !== null && v !== undefined);
      return value === undefined ? "" : `${esc(l.label)}: <strong>${num(value, 3)}</strong>`;
    }).filter(Boolean);
    host.innerHTML = `<p class="${shown.length ? "" : "empty"}">${shown.length ? shown.join(", ") + " (one bucket so far)" : "no data in this window"}</p>`;
    return;
  }
  const width = Math.max(320, host.clientWidth || 480);
  const data = [times, ...lines.map((l) => l.values.map((v) => (v === undefined ? null : v)))];
  const series = [{}, ...lines.map((l, i) => ({
    label: l.label, stroke: l.colour || COLOURS[i % COLOURS.length], width: 2, spanGaps: false,
    points: { show: true, size: 4 },
  }))];
  const key = `${id}:${lines.map((l) => l.label).join("|")}`;
  if (charts[id] && charts[id].key === key) {
    charts[id].plot.setData(data);
    return;
  }
  if (charts[id]) charts[id].plot.destroy();
  host.innerHTML = "";
  const plot = new uPlot({
    width, height: 200, series,
    scales: { x: { time: true }, y: options.range ? { range: options.range } : {} },
    axes: [{}, options.exponent
      ? { size: 70, values: (u, ticks) => ticks.map((v) => v.toExponential(1)) }
      : { size: 60 }],
  }, data, host);
  charts[id] = { key, plot };
}

function byVersion(doc, metric, scale = 1) {
  return Object.entries(doc.series.versions).map(([version, columns], i) => ({
    label: `v${version}`, colour: COLOURS[i % COLOURS.length],
    values: columns[metric].map((v) => (v === null ? null : v * scale)),
  }));
}

// -- bars (SVG) ----------------------------------------------------------------------------

function bars(labels, groups, height = 140) {
  const width = Math.max(260, labels.length * groups.length * 9 + 40);
  const max = Math.max(1e-9, ...groups.flatMap((g) => g.values));
  const slot = (width - 30) / labels.length;
  const barWidth = Math.max(2, (slot - 4) / groups.length);
  let svg = `<svg role="img" viewBox="0 0 ${width} ${height + 30}" width="100%" height="${height + 30}">`;
  labels.forEach((label, i) => {
    groups.forEach((g, j) => {
      const h = (g.values[i] / max) * height;
      const x = 30 + i * slot + j * barWidth;
      svg += `<rect class="bar" x="${x}" y="${height - h}" width="${barWidth - 1}" height="${h}" fill="${g.colour}"><title>${esc(g.label)} ${esc(label)}: ${num(g.values[i], 3)}</title></rect>`;
    });
  });
  svg += `<line x1="30" y1="${height}" x2="${width}" y2="${height}" stroke="#d0d7de"/>`;
  svg += `<text x="0" y="12" font-size="10">${num(max, 2)}</text></svg>`;
  const legend = groups.map((g) => `<span class="legend-swatch" style="background:${g.colour}"></span>${esc(g.label)}`).join(" ");
  return `${svg}<div class="detail">${legend}</div>`;
}

// -- views ---------------------------------------------------------------------------------

function current(doc) {
  return doc.sections.find((s) => s.slis.version === doc.current_version) || doc.sections[0] || null;
}

function healthDetail(health) {
  // each part as met or unknown: a part without data is left out of the score, never full marks
  const weights = { slo: 40, drift: 30, quality: 30 };
  const parts = Object.entries(health.parts).map(([name, share]) =>
    share === null ? `${name} unknown` : `${name} ${Math.round(share * weights[name])}/${weights[name]}`);
  return parts.join(", ") + (health.capped ? `; held below 100: ${health.capped}` : "");
}

function kpiValue(kpi, v) {
  // a rate as a percentage, a mean in the outcome's own units with two figures
  if (v === null || v === undefined) return "–";
  return kpi.kind === "rate" ? pct(v, 1) : twoFigures(v);
}

function kpiTable(sections) {
  // each version's business outcomes (monitor.kpis): value, 95% interval, how many arrived
  const rows = [];
  for (const section of sections) {
    for (const k of section.kpis || []) {
      rows.push([`v${section.slis.version}`, esc(k.name), kpiValue(k, k.value),
        k.value === null ? "no outcomes yet" : `${kpiValue(k, k.low)} to ${kpiValue(k, k.high)}`,
        `${k.outcomes}`, esc(`${k.better} is better`)]);
    }
  }
  if (!rows.length) return '<p class="empty">no KPIs: declare them in monitor.kpis and send outcomes to /v1/outcomes</p>';
  return table(["version", "KPI", "value", "95% interval", "outcomes", ""], rows);
}

function renderExecutive(doc) {
  const section = current(doc);
  const health = doc.health.score;
  const tone = health === null ? "" : health >= 80 ? "good" : health >= 60 ? "warn" : "bad";
  const slis = section ? section.slis : null;
  const quality = section && section.quality ? section.quality.metrics : {};
  const drift = section && section.drift ? section.drift : null;
  const cost = section && section.cost ? section.cost.per_1k_predictions : null;
  const version = doc.versions.find((v) => String(v.version) === doc.current_version);
  $("exec-cards").innerHTML = [
    card("health", health === null ? "no data" : `${health}/100`, healthDetail(doc.health), tone),
    card("current version", doc.current_version ? `v${doc.current_version}` : "–",
      version ? version.aliases.join(", ") : ""),
    card("traffic", slis ? `${num(slis.throughput_per_s, 1)}/s` : "–", slis ? `${slis.predictions} predictions` : ""),
    regression(doc)
      ? card("MAE on labels", num(quality.mae, 3), section && section.quality ? `${section.quality.labels} labels, RMSE ${num(quality.rmse, 3)}` : "no labels yet")
      : card("accuracy on labels", pct(quality.accuracy), section && section.quality ? `${section.quality.labels} labels` : "no labels yet"),
    regression(doc) ? "" : estimateCard(section && section.estimated_accuracy),
    card("drifted features", drift ? pct(drift.share, 0) : "–", drift && drift.drifted ? "DRIFT" : "", drift && drift.drifted ? "bad" : "good"),
    card(`cost / million predictions${section && section.cost ? " (" + esc(section.cost.currency) + ")" : ""}`, cost === null ? "–" : twoFigures(cost * 1000), "model CPU x cpu_second_price"),
    tierCard(section && section.tiers ? section : doc.sections.find((s) => s.tiers)),
  ].join("");
  const t = doc.series.t;
  lineChart("chart-traffic", t, byVersion(doc, "predictions"));
  if (regression(doc)) {
    $("caption-quality").textContent = "Mean absolute error on labels, by version";
    lineChart("chart-accuracy", t, byVersion(doc, "mae"));
  } else {
    // on labels (solid) against estimated from calibrated confidence before labels
    const estimated = byVersion(doc, "estimated_accuracy").map((line, i) => (
      { ...line, label: `${line.label} estimated`, colour: COLOURS[(i + 3) % COLOURS.length] }));
    lineChart("chart-accuracy", t, [...byVersion(doc, "accuracy"), ...estimated], { range: [0, 1] });
  }
  lineChart("chart-drift", t, [{ label: "drift share", values: doc.series.drift_share, colour: COLOURS[5] }], { range: [0, 1] });
  const price = doc.cpu_second_price;
  lineChart("chart-cost", t, [{ label: "per 1k", colour: COLOURS[2],
    values: doc.series.endpoint.cpu_ms_per_prediction.map((v) => (v === null ? null : v * price)) }],
  { exponent: true });
  $("exec-kpis").innerHTML = kpiTable(doc.sections);
  $("exec-versions").innerHTML = table(["version", "aliases", "status", regression(doc) ? "test MAE" : "test accuracy", "gates", "created"],
    doc.versions.map((v) => [`v${v.version}`, esc(v.aliases.join(", ")), esc(v.status), regression(doc) ? num(v.mae, 3) : pct(v.accuracy), gates(v.gates_passed), esc(stamp(v.created_at))]));
  $("exec-decisions").innerHTML = table(["at", "who", "what", "details"],
    doc.decisions.slice(0, 12).map((d) => [esc(stamp(d.at)), esc(d.actor), esc(d.action.replaceAll("_", " ")), esc(inWords(d.details))]));
}

function renderOncall(doc) {
  const t = doc.series.t;
  const e = doc.series.endpoint;
  lineChart("chart-latency", t, [
    { label: "P50", values: e.latency_p50_ms, colour: COLOURS[0] },
    { label: "P95", values: e.latency_p95_ms, colour: COLOURS[1] },
    { label: "P99", values: e.latency_p99_ms, colour: COLOURS[5] },
  ]);
  lineChart("chart-success", t, [{ label: "success rate", values: e.success_rate, colour: COLOURS[2] },
    { label: "refused as invalid (4xx)", values: e.refused_share, colour: COLOURS[5] }], { range: [0, 1] });
  const rows = [];
  for (const section of doc.sections) {
    for (const o of section.slo || []) {
      const burns = (section.alerts || []).filter((a) => a.objective === o.name);
      rows.push([`v${section.slis.version}`, esc(o.name), pct(o.target, 2), pct(o.current, 2),
        o.met === null ? '<span class="empty">no data</span>' : o.met === false ? '<span class="bad">missed</span>' : '<span class="good">met</span>',
        pct(o.error_budget_remaining, 0), burns.map((b) => `${esc(b.severity)} ${num(b.short_burn_rate, 1)}x`).join(", ") || "–"]);
    }
  }
  $("oncall-slo").innerHTML = table(["version", "objective", "target", "current", "status", "budget left", "burning"], rows);
  const active = doc.alerts.filter((a) => a.status === "firing");
  $("oncall-alerts").innerHTML = table(["severity", "kind", "summary", "evidence", "runbook", "since", "count"],
    active.map((a) => {
      const { runbook_url: runbook, ...evidence } = a.details || {};
      return [`<span class="badge ${a.severity === "page" ? "bad" : "warn"}">${esc(a.severity)}</span>`, esc(a.kind), esc(a.summary),
        esc(inWords(evidence)), safeLink(runbook, "runbook"), esc(stamp(a.first_seen)), a.count];
    }));
  const live = doc.live || {};
  const weights = Object.entries(live.versions || {}).map(([v, info]) =>
    [`v${esc(v)}`, `${num(info.weight, 0)}%`, info.shadow ? "shadow" : v === live.live_version ? "stable" : v === live.canary_version ? "canary" : "", info.ready ? "ready" : "loading"]);
  let html = table(["version", "traffic", "role", "state"], weights);
  const rollout = live.rollout || doc.rollouts[0];
  if (rollout) {
    html += `<p>rollout ${rollout.id} of v${rollout.candidate}: <strong>${esc(rollout.status)}</strong>, step ${rollout.step + 1} of ${rollout.steps.length} (${rollout.weight}%), ${rollout.failed_checks} failed check(s). ${esc(rollout.reason)}</p>`;
    const check = rollout.last_check;
    if (check) {
      html += table(["gate", "outcome", "value", "limit", "detail"], check.gates.map((g) =>
        [esc(g.gate), `<span class="${g.outcome === "fail" ? "bad" : "good"}">${esc(g.outcome)}</span>`, num(g.value, 3), num(g.limit, 3), esc(g.message)]));
    }
  }
  $("oncall-rollout").innerHTML = html;
  // replays before traffic: each candidate run offline on logged production inputs
  $("oncall-replays").innerHTML = doc.replays.length
    ? table(["at", "candidate", "against", "rows", "agreement", "verdict", "why"], doc.replays.map((r) =>
      [esc(stamp(r.at)), `v${r.version}`, `v${r.against}`, r.rows, pct(r.agreement, 1),
        `<span class="${r.passed ? "good" : "bad"}">${r.passed ? "passes" : "refused"}</span>`, esc(r.message)]))
    : '<p class="empty">no replay yet: dnnops replay NAME@VERSION --since 1d</p>';
}

function renderDebug(doc) {
  $("debug-features").innerHTML = doc.features.length ? doc.features.map((f) =>
    `<figure><figcaption>${esc(f.feature)}: ${esc(f.method)} ${num(f.score, 3)} ${f.drifted ? '<span class="bad">drifted</span>' : ""}</figcaption>` +
    bars(f.bins, [{ label: "reference", values: f.reference, colour: COLOURS[0] }, { label: "live", values: f.live, colour: COLOURS[1] }]) + "</figure>",
  ).join("") : '<p class="empty">no logged inputs in this window</p>';
  const section = current(doc);
  const quality = section && section.quality;
  if (regression(doc)) {
    renderRegressionDebug(section);
    return;
  }
  if (quality) {
    const matrix = quality.confusion_matrix;
    const max = Math.max(1, ...matrix.flat());
    const names = quality.classes || matrix.map((_, i) => i);
    const rows = matrix.map((row, i) => [`<strong>${esc(String(names[i]))}</strong>`, ...row.map((v) =>
      `<span style="display:block;background:rgba(0,114,178,${(v / max).toFixed(2)});color:${v / max > 0.5 ? "#fff" : "#1b1f24"}">${v}</span>`)]);
    $("debug-confusion").innerHTML = table(["truth \\ predicted", ...names.map((n) => esc(String(n)))], rows);
  } else {
    $("debug-confusion").innerHTML = '<p class="empty">no labels in this window</p>';
  }
  renderSamples(doc.samples);
  renderExplanations(section);
  const histogram = section ? section.slis.confidence_histogram : [];
  const labels = histogram.map((_, i) => `${(i / 10).toFixed(1)}-${((i + 1) / 10).toFixed(1)}`);
  $("debug-confidence").innerHTML = histogram.length ? bars(labels, [{ label: `v${section.slis.version}`, values: histogram, colour: COLOURS[2] }]) : '<p class="empty">no predictions</p>';
}

function renderSamples(samples) {
  // an image or text model's inputs as a person sees them: the window's latest beside held-out ones
  if (!samples) {
    $("debug-samples").innerHTML = "";
    return;
  }
  const shown = (items) => items.length ? items.map((item) => samples.kind === "image" && item.startsWith("data:image/jpeg;base64,")
    ? `<img src="${esc(item)}" alt="logged input" width="64">` : `<p class="sample">${esc(item)}</p>`).join("")
    : '<p class="empty">none</p>';
  $("debug-samples").innerHTML = `<h2>Sample inputs: held-out against live</h2><div class="grid">` +
    `<figure><figcaption>held-out (reference)</figcaption>${shown(samples.reference)}</figure>` +
    `<figure><figcaption>latest in this window</figcaption>${shown(samples.live)}</figure></div>`;
}

function renderExplanations(section) {
  // global attributions of the sampled live predictions against the validation split's
  const explained = section && section.explanations;
  if (!explained) {
    $("debug-explanations").innerHTML = '<p class="empty">no explanations stored in this window (monitor.explain.sample)</p>';
    return;
  }
  const features = Object.keys(explained.importance);
  const reference = explained.reference || {};
  const verdict = explained.drifted === null ? "too few to judge" : explained.drifted ? '<span class="bad">attribution drift</span>' : "no attribution drift";
  $("debug-explanations").innerHTML =
    `<p>${explained.explained} explained (${pct(explained.coverage, 2)} of predictions), ${esc(explained.method)}; ` +
    `shift from validation ${num(explained.shift, 3)}: ${verdict}</p>` +
    bars(features, [{ label: "validation", values: features.map((f) => reference[f] || 0), colour: COLOURS[0] },
      { label: "live", values: features.map((f) => explained.importance[f]), colour: COLOURS[1] }]);
}

function regression(doc) {
  return doc.task === "regression";
}

function gates(passed) {
  return passed === null || passed === undefined ? "not evaluated" : passed ? "passed" : "failed";
}

function renderRegressionDebug(section) {
  $("caption-labels").textContent = "Residuals (predicted - label) on recent labels";
  $("caption-outputs").textContent = "Predicted values: the version's test predictions against live";
  const residuals = section && section.quality && section.quality.residuals;
  if (residuals) {
    const edges = residuals.edges;
    const labels = residuals.counts.map((_, i) => `${num(edges[i], 2)}..${num(edges[i + 1], 2)}`);
    $("debug-confusion").innerHTML = bars(labels, [{ label: `v${section.slis.version}`, values: residuals.counts, colour: COLOURS[0] }]);
  } else {
    $("debug-confusion").innerHTML = '<p class="empty">no labels in this window</p>';
  }
  const drift = section && section.prediction_drift;
  $("debug-confidence").innerHTML = drift
    ? `<p>${esc(drift.method)} ${num(drift.score, 3)} (limit ${num(drift.threshold, 3)})${drift.drifted ? ' <span class="bad">drifted</span>' : ""}</p>` +
      bars(drift.bins, [{ label: "reference", values: drift.reference, colour: COLOURS[0] }, { label: "live", values: drift.current, colour: COLOURS[1] }])
    : '<p class="empty">no predictions</p>';
}

// A server with tokens needs a read token: open /dashboard#token=... once; the fragment
// never reaches the server's logs, and the token stays in this tab only.
function authorized() {
  const found = location.hash.match(/token=([^&]+)/);
  if (found) {
    sessionStorage.setItem("dnnops-token", decodeURIComponent(found[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  const token = sessionStorage.getItem("dnnops-token");
  return token ? { headers: { Authorization: `Bearer ${token}` } } : {};
}

async function trace(event) {
  event.preventDefault();
  const id = $("trace-id").value.trim();
  if (embedded) {
    $("trace-result").innerHTML = '<p class="empty">the tracer needs a running server</p>';
    return;
  }
  const response = await fetch(`/v1/predictions/${encodeURIComponent(id)}`, authorized());
  const body = await response.json();
  if (!response.ok) {
    $("trace-result").innerHTML = `<p class="bad">${esc(body.error)}</p>`;
    return;
  }
  const p = body.prediction;
  $("trace-result").innerHTML = table(["id", "version", "status", "output", "label", "latency ms", "at"],
    [[esc(p.id), `v${esc(p.version)}`, p.status, esc(p.output), esc(body.label ?? "–"), num(p.latency_ms), when(p.ts)]]) +
    `<pre id="trace-inputs">${esc(JSON.stringify(p.inputs))}</pre>` +
    (body.shadows.length ? `<p>shadow answers: ${body.shadows.map((s) => `v${esc(s.version)} → ${esc(s.output)}`).join(", ")}</p>` : "");
}

// -- loop ----------------------------------------------------------------------------------

function render(doc) {
  if (view === "executive") renderExecutive(doc);
  if (view === "oncall") renderOncall(doc);
  if (view === "debug") renderDebug(doc);
  $("updated").textContent = `${doc.endpoint} · updated ${when(doc.generated_at)}`;
  document.body.dataset.ready = "true";
}

let latest = null;

async function refresh() {
  const name = $("endpoint").value;
  if (!name) return;
  if (embedded) {
    latest = embedded.endpoints[name];
    render(latest);
    return;
  }
  try {
    const response = await fetch(`/v1/dashboard/${encodeURIComponent(name)}?since=${$("window").value}`, authorized());
    if (!response.ok) throw new Error((await response.json()).error);
    latest = await response.json();
    render(latest);
  } catch (error) {
    $("updated").textContent = `refresh failed: ${error.message}`;
  }
}

async function start() {
  const names = embedded ? Object.keys(embedded.endpoints) : (await (await fetch("/v1/endpoints")).json()).endpoints;
  $("endpoint").innerHTML = names.map((n) => `<option>${esc(n)}</option>`).join("");
  const query = new URLSearchParams(location.search);
  const wanted = query.get("view");
  const since = query.get("since");
  if (since && !embedded) {  // any duration the server accepts: 5m, 2h, 3d
    if (![...$("window").options].some((o) => o.value === since)) {
      $("window").add(new Option(since, since));
    }
    $("window").value = since;
  }
  for (const button of document.querySelectorAll("nav button")) {
    button.addEventListener("click", () => show(button.dataset.view));
  }
  $("endpoint").addEventListener("change", refresh);
  $("window").addEventListener("change", refresh);
  $("tracer").addEventListener("submit", trace);
  if (embedded) $("window").disabled = true;
  show(wanted || "executive");
  if (!embedded) setInterval(refresh, REFRESH_MS);
}

function show(name) {
  view = name;
  for (const button of document.querySelectorAll("nav button")) {
    button.setAttribute("aria-selected", String(button.dataset.view === name));
  }
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== name;
  if (latest) render(latest);
  else refresh();
}

start();
