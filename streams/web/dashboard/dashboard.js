// The xsell dashboard: plain JS, no build step, no CDN. Data comes from this worker's API.
// Token: opened as /#token=XYZ (the fragment never reaches a server or its logs) or typed
// into the form; kept in sessionStorage, so it lives as long as the tab and no longer.
"use strict";

const TYPES = ["cross_sell", "retention", "churn"];
const COLORS = { cross_sell: "#2563eb", retention: "#d97706", churn: "#dc2626" };
const BUCKET_MS = 5000;
const BUCKETS = 60; // 5 minutes
const FEED_ROWS = 60;

const state = {
  seen: new Set(),
  counts: { cross_sell: 0, retention: 0, churn: 0 },
  bySegment: new Map(),
  byBranch: new Map(),
  arrivals: [], // [ms, type]
  source: null,
  bundle: null,
};

const $ = (id) => document.getElementById(id);

function token() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("xsell-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("xsell-token");
}

async function api(path) {
  const t = token();
  const response = await fetch(path, { headers: t ? { Authorization: `Bearer ${t}` } : {} });
  if (response.status === 401) {
    $("token-form").hidden = false;
    throw new Error("unauthorized");
  }
  return response;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "—" : String(text);
  if (cls) td.className = cls;
  return td;
}

function describe(alert) {
  if (alert.type === "cross_sell") return [`offer ${alert.product}`, evidence(alert.evidence)];
  if (alert.type === "retention") {
    const drop = alert.churn ? `${(alert.churn.drop * 100).toFixed(1)}% drop` : "";
    return [`retain (instead of ${alert.instead_of})`, drop];
  }
  const f = alert.figures || {};
  return [`assets −${((f.drop || 0) * 100).toFixed(1)}%`, alert.explanation || ""];
}

function evidence(e) {
  if (!e) return "";
  if (e.fallback) return `most held in segment (rate ${Number(e.score).toFixed(2)})`;
  return `holds ${(e.antecedents || []).join(" + ")} → ${(e.consequents || []).join(" + ")}` +
    ` · support ${Number(e.support).toFixed(3)} · conf ${Number(e.confidence).toFixed(2)} · lift ${Number(e.lift).toFixed(2)}`;
}

function tally(map, key, type) {
  const k = key === null || key === undefined ? "—" : String(key);
  const row = map.get(k) || { cross_sell: 0, retention: 0, churn: 0 };
  row[type] = (row[type] || 0) + 1;
  map.set(k, row);
}

function onAlert(alert) {
  if (!alert.alert_id || state.seen.has(alert.alert_id)) return; // replayed or repeated
  state.seen.add(alert.alert_id);
  const type = alert.type;
  state.counts[type] = (state.counts[type] || 0) + 1;
  tally(state.bySegment, alert.segment, type);
  tally(state.byBranch, alert.branch_id, type);
  state.arrivals.push([Date.now(), type]);

  const feed = $("feed");
  const empty = feed.querySelector("tr.empty");
  if (empty) empty.remove();
  const tr = document.createElement("tr");
  tr.className = "fresh alert";
  tr.dataset.alertId = alert.alert_id;
  tr.dataset.type = type;
  const [what, why] = describe(alert);
  tr.append(
    cell((alert.ts || "").replace("T", " ").slice(0, 19)),
    cell(type.replace("_", "-"), `type ${type}`),
    cell(alert.customer_id),
    cell(alert.branch_id),
    cell(alert.segment),
    cell(what),
    cell(why, "evidence"),
  );
  feed.prepend(tr);
  while (feed.rows.length > FEED_ROWS) feed.deleteRow(feed.rows.length - 1);
  scheduleRender();
}

let pending = false;
function scheduleRender() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; renderCounts(); renderChart(); });
}

function renderCounts() {
  for (const t of TYPES) $(`count-${t}`).textContent = state.counts[t].toLocaleString();
  const minuteAgo = Date.now() - 60000;
  $("rate").textContent = state.arrivals.filter(([ms]) => ms >= minuteAgo).length.toLocaleString();
  renderBreakdown($("by-segment"), state.bySegment);
  renderBreakdown($("by-branch"), state.byBranch);
}

function renderBreakdown(tbody, map) {
  const rows = [...map.entries()].sort((a, b) => total(b[1]) - total(a[1])).slice(0, 20);
  tbody.replaceChildren(...rows.map(([key, row]) => {
    const tr = document.createElement("tr");
    tr.append(cell(key), cell(row.cross_sell), cell(row.retention), cell(row.churn));
    return tr;
  }));
}
const total = (row) => row.cross_sell + row.retention + row.churn;

function renderChart() {
  const canvas = $("rate-chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth * ratio, height = canvas.clientHeight * ratio;
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  const now = Date.now();
  const start = now - BUCKETS * BUCKET_MS;
  state.arrivals = state.arrivals.filter(([ms]) => ms >= start);
  const series = Object.fromEntries(TYPES.map((t) => [t, new Array(BUCKETS).fill(0)]));
  for (const [ms, type] of state.arrivals) {
    const i = Math.min(BUCKETS - 1, Math.floor((ms - start) / BUCKET_MS));
    if (series[type]) series[type][i] += 1;
  }
  const max = Math.max(1, ...TYPES.flatMap((t) => series[t]));
  const pad = 24 * ratio;
  ctx.strokeStyle = "#e3e6eb";
  ctx.fillStyle = "#6b7280";
  ctx.font = `${11 * ratio}px system-ui`;
  ctx.beginPath(); ctx.moveTo(pad, height - pad); ctx.lineTo(width, height - pad); ctx.stroke();
  ctx.fillText(String(max), 2, pad);
  ctx.fillText("0", 2, height - pad);
  ctx.fillText("−5 min", pad, height - 6 * ratio);
  ctx.fillText("now", width - 28 * ratio, height - 6 * ratio);
  const x = (i) => pad + (i + 0.5) * (width - pad) / BUCKETS;
  const y = (v) => height - pad - v / max * (height - 2 * pad);
  for (const t of [...TYPES].reverse()) { // cross-sell, the busiest, drawn last: on top
    ctx.strokeStyle = COLORS[t];
    ctx.lineWidth = 2 * ratio;
    ctx.beginPath();
    series[t].forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
    ctx.stroke();
  }
}

function setStatus(cls, text) {
  const pill = $("conn");
  pill.className = `pill ${cls}`;
  pill.textContent = text;
}

function streamUrl() {
  const q = new URLSearchParams();
  if ($("f-type").value) q.set("type", $("f-type").value);
  if ($("f-branch").value.trim()) q.set("branch", $("f-branch").value.trim());
  if ($("f-segment").value.trim()) q.set("segment", $("f-segment").value.trim());
  const t = token();
  if (t) q.set("access_token", t); // EventSource cannot send an Authorization header
  const s = q.toString();
  return "/alerts/stream" + (s ? `?${s}` : "");
}

function connect() {
  if (state.source) state.source.close();
  setStatus("connecting", "connecting…");
  const source = new EventSource(streamUrl());
  state.source = source;
  source.addEventListener("hello", (e) => {
    const hello = JSON.parse(e.data);
    setStatus("live", "live");
    $("worker").textContent = hello.worker;
    if (hello.bundle_version && (!state.bundle || state.bundle.version !== hello.bundle_version)) loadBundle();
  });
  source.addEventListener("alert", (e) => onAlert(JSON.parse(e.data)));
  source.onerror = () => {
    // EventSource retries by itself while CONNECTING; once CLOSED (an HTTP error such as
    // 401 or 502 from a proxy), it gives up, so try again ourselves.
    if (source.readyState === EventSource.CLOSED) {
      setStatus("down", "disconnected — retrying");
      setTimeout(() => { if (state.source === source) connect(); }, 3000);
    } else {
      setStatus("connecting", "reconnecting…");
    }
  };
}

async function loadBundle() {
  try {
    const response = await api("/bundle");
    if (!response.ok) { $("bundle-version").textContent = "none active"; return; }
    state.bundle = await response.json();
  } catch (err) { return; }
  const b = state.bundle;
  $("bundle-version").textContent = b.version;
  const dl = $("bundle-metrics");
  const entries = [["version", b.version], ["created", b.created_at], ["segments", b.segments.length],
    ["rules", b.segments.reduce((n, s) => n + s.rules.length, 0)]];
  for (const [k, v] of Object.entries(b.metrics || {})) {
    if (v === null || typeof v !== "object") entries.push([k, typeof v === "number" ? +v.toFixed(4) : v]);
  }
  dl.replaceChildren(...entries.flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = String(v);
    return [dt, dd];
  }));
  const select = $("r-segment");
  select.replaceChildren(...b.segments.map((s) => {
    const o = document.createElement("option");
    o.value = s.segment; o.textContent = `${s.segment} (${s.customers.toLocaleString()} customers)`;
    return o;
  }));
  renderRules();
}

function renderRules() {
  const b = state.bundle;
  if (!b) return;
  const seg = b.segments.find((s) => String(s.segment) === $("r-segment").value) || b.segments[0];
  if (!seg) return;
  const key = $("r-sort").value;
  const rules = [...seg.rules].sort((a, z) => z[key] - a[key]).slice(0, 50);
  $("rules").replaceChildren(...rules.map((r) => {
    const tr = document.createElement("tr");
    tr.append(cell(r.antecedents.join(" + ")), cell(r.consequents.join(" + ")),
      cell(r.support.toFixed(4)), cell(r.confidence.toFixed(3)), cell(r.lift.toFixed(3)));
    return tr;
  }));
}

function quantile(buckets, count, q) {
  const want = q * count;
  for (const [le, n] of buckets) if (n >= want) return le;
  return Infinity;
}

async function loadMetrics() {
  let text;
  try {
    const response = await api("/metrics");
    if (!response.ok) return;
    text = await response.text();
  } catch (err) { return; }
  const sums = {}, buckets = [];
  let count = 0;
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const [series, value] = line.split(/ (?=[^ ]+$)/);
    const name = series.split("{")[0];
    const v = Number(value);
    if (name === "xsell_event_to_alert_seconds_bucket") buckets.push([series.match(/le="([^"]+)"/)[1], v]);
    else if (name === "xsell_event_to_alert_seconds_count") count = v;
    else sums[name] = (sums[name] || 0) + v;
  }
  $("m-events").textContent = (sums.xsell_events_in_total || 0).toLocaleString();
  $("m-dead").textContent = (sums.xsell_dead_letters_total || 0).toLocaleString();
  $("m-lag").textContent = (sums.xsell_consumer_lag || 0).toLocaleString();
  if (count) {
    const fmt = (le) => (le === "+Inf" ? ">30 s" : `≤${Number(le) * 1000} ms`);
    $("m-latency").textContent = `${fmt(quantile(buckets, count, 0.5))} / ${fmt(quantile(buckets, count, 0.99))}`;
  }
}

function pct(x) { return x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)}%`; }

function rateCell(line, arm) {
  const td = document.createElement("td");
  td.className = arm;
  const bar = document.createElement("span");
  bar.className = "bar";
  if (line.rate !== null) {
    const fill = document.createElement("span");
    fill.className = "fill"; fill.style.width = `${line.rate * 100}%`;
    const ci = document.createElement("span");
    ci.className = "ci"; ci.style.left = `${line.low * 100}%`; ci.style.width = `${(line.high - line.low) * 100}%`;
    bar.append(fill, ci);
  }
  td.append(bar, document.createTextNode(line.rate === null ? "no outcome yet" : `${pct(line.rate)} (${pct(line.low)}–${pct(line.high)})`));
  return td;
}

async function loadAcceptance() {
  let report;
  try {
    const response = await api("/acceptance");
    if (!response.ok) return;
    report = await response.json();
  } catch (err) { return; }
  const arms = report.arms || [];
  $("arms-summary").textContent = arms.map((a) =>
    `${a.arm} ${a.version} (${Math.round(a.share * 100)}%)` +
    (a.uplift === null || a.uplift === undefined ? "" : `, uplift ${a.uplift >= 0 ? "+" : ""}${pct(a.uplift)}`)).join(" · ");
  // Products as rows, arms side by side within each, the totals first.
  const rows = [];
  const products = [...new Set(arms.flatMap((a) => a.products.map((p) => p.product)))].sort();
  for (const product of ["all", ...products]) {
    for (const a of arms) {
      const line = product === "all" ? a : a.products.find((p) => p.product === product);
      if (!line) continue;
      const tr = document.createElement("tr");
      tr.className = product === "all" ? "all" : "";
      tr.dataset.product = product; tr.dataset.arm = a.arm;
      tr.append(cell(product === "all" ? "all products" : product), cell(a.arm, a.arm),
        cell(line.alerts.toLocaleString()), cell(line.pending.toLocaleString()),
        cell(line.accepted.toLocaleString()), cell(line.declined.toLocaleString()),
        cell(line.ignored.toLocaleString()), rateCell(line, a.arm));
      rows.push(tr);
    }
  }
  if (rows.length) $("acceptance").replaceChildren(...rows);
}

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("xsell-token", $("token-input").value);
  $("token-form").hidden = true;
  connect(); loadBundle(); loadMetrics(); loadAcceptance();
});
$("f-apply").addEventListener("click", connect);
$("r-segment").addEventListener("change", renderRules);
$("r-sort").addEventListener("change", renderRules);

connect();
loadBundle();
loadMetrics();
loadAcceptance();
setInterval(loadMetrics, 5000);
setInterval(loadAcceptance, 10000);
setInterval(() => { renderChart(); renderCounts(); }, 1000);
renderChart();
