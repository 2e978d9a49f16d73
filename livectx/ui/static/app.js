// The livectx dashboard: polls /api/dashboard and redraws. Plain DOM + SVG, no build step, no library.
// Untrusted text (dead-letter records, feature values) only ever goes through textContent.
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

function fmt(v, digits = 1) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") return Number.isInteger(v) ? v.toLocaleString() : v.toFixed(digits);
  return String(v);
}

function seconds(v) {
  if (v === null || v === undefined) return "–";
  return v < 1 ? `${(v * 1000).toFixed(0)} ms` : `${v.toFixed(2)} s`;
}

function table(id, head, rows, rowAttrs = () => ({})) {
  const t = document.getElementById(id);
  t.replaceChildren(el("tr", {}, ...head.map((h) => el("th", {}, h))));
  if (!rows.length) t.append(el("tr", {}, el("td", { colspan: head.length, class: "muted" }, "none")));
  rows.forEach((r, i) => t.append(el("tr", rowAttrs(i), ...r.map((c) =>
    c instanceof Node ? el("td", {}, c) : el("td", { class: typeof c === "number" ? "num" : "" }, fmt(c))))));
}

function failed(part) {
  return part && part.error ? el("span", { class: "bad" }, part.error) : null;
}

// A line chart of one or more series over time; the svg carries data-points (how many it drew).
function chart(title, seriesList, unit) {
  const W = 360, H = 140, L = 44, B = 18, T = 8;
  const all = seriesList.flatMap((s) => s.points);
  const svg = el("svg:svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, "data-points": String(all.length) });
  if (all.length) {
    const t0 = Math.min(...all.map((p) => p.t)), t1 = Math.max(...all.map((p) => p.t));
    const ymax = Math.max(...all.map((p) => p.v)) || 1;
    const x = (t) => L + (t1 > t0 ? ((t - t0) / (t1 - t0)) * (W - L - 6) : (W - L) / 2);
    const y = (v) => H - B - (v / ymax) * (H - B - T);
    svg.append(el("svg:text", { x: 2, y: T + 8 }, unit(ymax)), el("svg:text", { x: 2, y: H - B }, unit(0)));
    svg.append(el("svg:text", { x: L, y: H - 4 }, new Date(t0 * 1000).toLocaleTimeString()));
    for (const s of seriesList) {
      const pts = s.points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
      svg.append(el("svg:polyline", { class: s.cls, points: pts, "data-series": s.cls, "data-count": String(s.points.length) }));
      const last = s.points[s.points.length - 1];
      svg.append(el("svg:circle", { cx: x(last.t), cy: y(last.v), r: 2.5, class: s.cls }));
    }
  }
  const legend = seriesList.map((s) => `${s.cls} ${s.points.length ? unit(s.points[s.points.length - 1].v) : "–"}`);
  return el("div", { class: "chart-box" }, el("div", { class: "title" }, title), svg,
    el("div", { class: "muted" }, legend.join("  ·  ")));
}

function renderPipelines(p, metrics) {
  if (failed(p)) { document.getElementById("topics").replaceChildren(failed(p)); return; }
  table("topics", ["topic", "partitions", "end offset", "records/s"],
    p.topics.map((t) => [t.topic, t.partitions, t.end_offset, t.records_per_s === null ? "–" : fmt(t.records_per_s)]));
  table("groups", ["group", "state", "lag (records)", "partitions"], p.groups.map((g) => [g.group, g.state, g.lag,
    el("span", { class: "mono" }, g.partitions.map((x) => `${x.topic}[${x.partition}] ${x.lag}`).join(", "))]));
  const rates = document.getElementById("rates");
  rates.replaceChildren(...Object.entries(metrics.rates || {}).map(([group, pts]) =>
    chart(group, [{ cls: "rate", points: pts.map((q) => ({ t: q.t, v: q.events_per_s })) }], (v) => `${fmt(v)}/s`)));
  if (!rates.children.length) rates.append(el("span", { class: "muted" }, "no feature worker with --metrics-port running"));
  table("targets", ["target", "job", "group", "worker", "state"], Object.entries(metrics.targets || {}).map(([name, t]) =>
    [name, t.labels.job, t.labels.consumer_group, t.labels.worker_id,
      el("span", { class: t.up ? "ok" : "bad" }, t.up ? "up" : `down: ${t.error}`)]));
}

function renderFreshness(metrics) {
  const box = document.getElementById("freshness-charts");
  const views = Object.entries(metrics.freshness || {});
  box.replaceChildren(...views.map(([view, pts]) => {
    const c = chart(view, [
      { cls: "p50", points: pts.map((q) => ({ t: q.t, v: q.p50 })) },
      { cls: "p99", points: pts.map((q) => ({ t: q.t, v: q.p99 })) },
    ], seconds);
    c.setAttribute("data-view", view);
    return c;
  }));
  if (!views.length) box.append(el("span", { class: "muted" }, "no freshness observed yet (workers' /metrics)"));
}

function renderDeadLetters(d, metrics) {
  const chips = document.getElementById("dlq-reasons");
  if (failed(d)) { chips.replaceChildren(failed(d)); return; }
  const counted = metrics.dead_letters_by_reason || {};
  const kinds = new Set([...Object.keys(d.by_reason), ...Object.keys(counted)]);
  chips.replaceChildren(el("span", { class: "muted" }, `${d.topic}: `), ...[...kinds].sort().map((k) =>
    el("span", { "data-reason": k }, `${k}: ${d.by_reason[k] || 0} in the tail · ${fmt(counted[k] || 0)} counted by workers`)));
  table("dlq-samples", ["time", "reason", "from", "worker", "key", "value"], d.samples.slice(0, 100).map((s) => [
    s.timestamp_ms ? new Date(s.timestamp_ms).toLocaleTimeString() : "–", s.reason, s.source, s.worker, s.key,
    el("code", {}, s.value)]), (i) => ({ class: "dlq-sample", "data-source": d.samples[i].source }));
}

function renderWatermark(w) {
  if (failed(w)) { document.getElementById("watermark-table").replaceChildren(failed(w)); return; }
  table("watermark-table", ["topic", "partition", "searchable below", "log end", "lag"],
    w.partitions.map((p) => [p.topic, p.partition, p.searchable, p.end, p.lag]));
}

function renderModels(m, metrics) {
  if (failed(m)) { document.getElementById("model-versions").replaceChildren(failed(m)); }
  else table("model-versions", ["model", "version", "service", "registered", "active", "metrics"], m.versions.map((v) =>
    [v.name, v.version, v.feature_service, v.registered_at, v.active ? "active" : "",
      Object.entries(v.metrics).map(([k, x]) => `${k}=${fmt(x, 3)}`).join(" ")]));
  table("models-in-use", ["agent", "model", "version", "job", "worker"],
    (metrics.models_in_use || []).map((r) => [r.agent, r.model, r.version, r.job, r.worker_id]));
}

async function refresh() {
  try {
    const d = await (await fetch("/api/dashboard")).json();
    if (!d.updated_ms) { document.getElementById("status").textContent = "first refresh…"; return d.interval_s; }
    const metrics = d.metrics && !d.metrics.error ? d.metrics : {};
    renderPipelines(d.pipelines, metrics);
    renderFreshness(metrics);
    renderDeadLetters(d.dead_letters, metrics);
    renderWatermark(d.watermark);
    renderModels(d.models, metrics);
    const status = document.getElementById("status");
    status.textContent = `updated ${new Date(d.updated_ms).toLocaleTimeString()}`;
    status.setAttribute("data-updated-ms", String(d.updated_ms));
    return d.interval_s;
  } catch (e) {
    document.getElementById("status").textContent = `dashboard unreachable: ${e}`;
    return 2;
  }
}

async function loop() {
  const interval = await refresh();
  setTimeout(loop, Math.max(1, interval || 2) * 1000);
}

async function initInspector() {
  const services = await (await fetch("/api/services")).json();
  const select = document.getElementById("entity-service");
  select.replaceChildren(...Object.keys(services.feature_services || {}).map((s) => el("option", { value: s }, s)));
  document.getElementById("entity-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const params = new URLSearchParams({ service: select.value, id: document.getElementById("entity-id").value });
    const q = document.getElementById("entity-query").value;
    if (q) params.set("q", q);
    const out = document.getElementById("entity-result");
    out.replaceChildren(el("span", { class: "muted" }, "reading…"));
    const r = await (await fetch(`/api/entity?${params}`)).json();
    if (r.error) { out.replaceChildren(el("span", { class: "bad" }, r.error)); return; }
    const features = el("table", { id: "entity-features", "data-entity": r.entity });
    features.append(el("tr", {}, el("th", {}, "feature"), el("th", {}, "value")));
    for (const [name, v] of Object.entries(r.features))
      features.append(el("tr", { "data-feature": name, "data-value": JSON.stringify(v) }, el("td", {}, name), el("td", { class: "num" }, fmt(v, 3))));
    const ages = el("table", { id: "entity-ages" }, el("tr", {}, el("th", {}, "view"), el("th", {}, "age of newest event")));
    for (const [view, age] of Object.entries(r.age_s))
      ages.append(el("tr", { "data-view": view }, el("td", {}, view), el("td", { class: "num" }, age === null ? "–" : `${fmt(age)} s`)));
    const similar = el("table", { id: "entity-similar" }, el("tr", {}, el("th", {}, "score"), el("th", {}, "category"), el("th", {}, "text")));
    for (const h of r.similar) similar.append(el("tr", {}, el("td", { class: "num" }, fmt(h.score, 3)), el("td", {}, h.category), el("td", {}, h.text)));
    out.replaceChildren(el("div", { class: "grid2" }, el("div", {}, el("h3", {}, `${r.service} · ${r.entity}`), features),
      el("div", {}, el("h3", {}, "age per view"), ages, el("h3", {}, "similar items"), q ? similar : el("span", { class: "muted" }, "give a text to search the entity's memory"))));
  });
}

initInspector();
loop();
