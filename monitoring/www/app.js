// Predictors dashboard: reads /api/state every 2 s and draws it. No libraries, no network
// beyond the monitor that served this file. Text goes in with textContent (never innerHTML).
"use strict";

const REFRESH_MS = 2000;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? "" : String(k)));
  return e;
}

function table(head, rows) {
  if (!rows.length) return el("p", { class: "muted" }, "none");
  return el("table", {}, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c))))));
}

function state(s) { return el("span", { class: "st-" + (s || "") }, s || "-"); }

function bar(pct) {
  const fill = el("div", { class: "fill" });
  fill.style.width = Math.max(0, Math.min(100, pct || 0)) + "%";
  return el("span", {}, el("span", { class: "bar" }, fill), " " + (pct == null ? "" : Number(pct).toFixed(0) + "%"));
}

function ago(ms, now) {
  if (!ms) return "-";
  const s = Math.max(0, (now - ms) / 1000);
  if (s < 60) return s.toFixed(0) + " s ago";
  if (s < 3600) return (s / 60).toFixed(0) + " min ago";
  if (s < 86400) return (s / 3600).toFixed(1) + " h ago";
  return (s / 86400).toFixed(1) + " d ago";
}

function dur(a, b) {
  if (!a) return "";
  const s = ((b || Date.now()) - a) / 1000;
  return s < 120 ? s.toFixed(1) + " s" : (s / 60).toFixed(1) + " min";
}

function us2ms(v) { return v ? Number(v) / 1000 : 0; }

function short(id) { return id ? String(id).slice(0, 8) : ""; }

// Worker identities from libzmq share their first bytes (0x00 + a counter): show the end.
function shortW(id) { return id ? String(id).slice(-8) : ""; }

// A worker id is the hex of its ZeroMQ identity; ours are readable ("host:pid"): show that.
function wname(hex) {
  if (!hex || hex.length % 2) return shortW(hex);
  let out = "";
  for (let i = 0; i < hex.length; i += 2) {
    const c = parseInt(hex.slice(i, i + 2), 16);
    if (!(c >= 0x20 && c <= 0x7e)) return shortW(hex);
    out += String.fromCharCode(c);
  }
  return out;
}

async function act(what, id) {
  const token = document.getElementById("token").value;
  if (!token) { alert("Enter the action token first (the dashboard is read-only without it)."); return; }
  if (!confirm(what + " job " + id + "?")) return;
  const r = await fetch("/api/" + what, {
    method: "POST", headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
    body: JSON.stringify({ id: id }),
  });
  alert(what + ": " + r.status + " " + (await r.text()));
  refresh();
}

function drawRuns(d) {
  const box = document.getElementById("runs");
  const rows = (d.runs || []).map((run) => {
    const steps = el("table", { class: "steps" }, ...(run.steps || []).map((s) => {
      const live = s.live || {};
      const pct = live.percent != null ? Number(live.percent) : s.percent;
      const st = s.state === "done" ? "done" : (live.state || s.state);
      const cancellable = d.actions && s.job && ["queued", "leased", "delayed", "failed"].includes(live.state);
      return el("tr", { "data-step": s.name }, el("td", {}, s.name), el("td", {}, state(st)), el("td", {}, bar(s.state === "done" ? 100 : pct)),
        el("td", { class: "muted" }, [live.stage || s.stage, live.message || s.message, s.error].filter(Boolean).join(" - ")),
        el("td", { class: "muted" }, live.worker ? "on " + wname(live.worker) : ""),
        el("td", {}, cancellable ? el("button", { onclick: () => act("cancel", s.job) }, "cancel job") : ""));
    }));
    return [el("code", { "data-run": run.id }, run.id), run.pipeline, state(run.state), ago(run.created_ms, d.now_ms),
      dur(run.started_ms, run.finished_ms), steps];
  });
  box.replaceChildren(table(["run", "pipeline", "state", "created", "took", "steps"], rows));
}

function drawQueues(d) {
  const rows = (d.queues || []).map((q) => [q.service, q.queued || 0, q.delayed || 0, q.leased || 0, q.dead || 0,
    (q.workers || 0) + " (" + (q.idle || 0) + " idle)", q.oldest_age_s ? Number(q.oldest_age_s).toFixed(1) + " s" : "-"]);
  document.getElementById("queues").replaceChildren(
    table(["service", "queued", "delayed", "leased", "dead", "workers", "oldest"], rows));
}

function drawWorkers(d) {
  const rows = (d.workers || []).map((w) => [el("span", { "data-worker": w.id }, w.name && w.name !== w.id ? w.name : shortW(w.id)), w.service,
    state(w.state), w.host || "", w.pid || "", w.gpu || "", w.job ? short(w.job) : "", ago(us2ms(w.last_seen_us), d.now_ms)]);
  document.getElementById("workers").replaceChildren(
    table(["worker", "service", "state", "host", "pid", "gpu", "job", "seen"], rows));
}

function drawDead(d) {
  document.getElementById("deadcount").textContent = d.dead_total ? "(" + d.dead_total + ")" : "";
  const rows = (d.dead || []).map((j) => [el("code", {}, short(j.id)), j.service || "", j.attempt || "", j.last_error || "",
    ago(us2ms(j.dead_us), d.now_ms),
    d.actions ? el("button", { onclick: () => act("requeue", j.id) }, "requeue") : el("span", { class: "muted" }, "read-only")]);
  document.getElementById("dead").replaceChildren(table(["job", "service", "attempts", "error", "died", ""], rows));
}

function drawRegistry(d) {
  const box = document.getElementById("registry");
  const reg = d.registry || {};
  if (!reg.available) { box.replaceChildren(el("p", { class: "muted" }, "model registry not installed")); return; }
  const series = reg.series || [];
  if (!series.length) { box.replaceChildren(el("p", { class: "muted" }, "no model promoted yet")); return; }
  const W = 460, H = 200, L = 44, B = 24, NS = "http://www.w3.org/2000/svg";
  let t0 = Infinity, t1 = -Infinity, v0 = Infinity, v1 = -Infinity;
  for (const s of series) for (const p of s.points) {
    t0 = Math.min(t0, p.ms); t1 = Math.max(t1, p.ms); v0 = Math.min(v0, p.value); v1 = Math.max(v1, p.value);
  }
  if (t1 === t0) { t0 -= 3600e3; t1 += 3600e3; }
  if (v1 - v0 < 0.02) { v0 -= 0.01; v1 += 0.01; }
  const x = (t) => L + (W - L - 8) * (t - t0) / (t1 - t0), y = (v) => 8 + (H - B - 8) * (1 - (v - v0) / (v1 - v0));
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`); svg.setAttribute("preserveAspectRatio", "xMinYMin meet");
  svg.setAttribute("id", "registry-chart");
  const add = (tag, a, text) => { const e = document.createElementNS(NS, tag); for (const k in a) e.setAttribute(k, a[k]); if (text) e.textContent = text; svg.append(e); return e; };
  add("line", { x1: L, y1: H - B, x2: W - 8, y2: H - B, stroke: "#999" });
  add("line", { x1: L, y1: 8, x2: L, y2: H - B, stroke: "#999" });
  add("text", { x: 2, y: y(v1) + 4 }, v1.toFixed(3)); add("text", { x: 2, y: y(v0) + 4 }, v0.toFixed(3));
  add("text", { x: L, y: H - 6 }, new Date(t0).toISOString().slice(0, 10));
  add("text", { x: W - 80, y: H - 6 }, new Date(t1).toISOString().slice(0, 10));
  const colors = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];
  const legend = el("div", {});
  series.forEach((s, i) => {
    const c = colors[i % colors.length];
    add("polyline", { points: s.points.map((p) => x(p.ms) + "," + y(p.value)).join(" "), fill: "none", stroke: c, "stroke-width": 2 });
    for (const p of s.points) {
      const dot = add("circle", { cx: x(p.ms), cy: y(p.value), r: p.production ? 5 : 3, fill: c });
      const t = document.createElementNS(NS, "title"); t.textContent = `${s.task} v${p.version} (${p.family}) ${s.metric} ${p.value}`; dot.append(t);
    }
    const last = s.points[s.points.length - 1];
    const sw = el("span", {}, "\u25CF "); sw.style.color = c;
    legend.append(el("div", {}, sw, `${s.task}: ${s.metric} ${Number(last.value).toFixed(4)} (v${last.version})`));
  });
  box.replaceChildren(svg, legend);
}

function drawEvents(d) {
  const rows = (d.events || []).map((e) => [new Date(Number(e.t) / 1000).toISOString().slice(11, 23), state(e.ev), e.service || "",
    short(e.id), e.worker ? (e.worker.length > 12 ? shortW(e.worker) : e.worker) : "", e.attempt && e.attempt !== "0" ? e.attempt : "", e.error || ""]);
  document.getElementById("events").replaceChildren(table(["time (UTC)", "event", "service", "job", "worker", "attempt", "error"], rows));
}

function drawStatus(d) {
  const st = document.getElementById("status");
  const beat = d.monitor && d.monitor.beat_us ? us2ms(d.monitor.beat_us) : 0;
  const broker = d.broker && d.broker.taken_us ? d.now_ms - us2ms(d.broker.taken_us) < 30000 : false;
  st.replaceChildren(
    el("span", { class: d.redis_up ? "up" : "down" }, "redis " + (d.redis_up ? "up" : "down")), " \u00b7 ",
    el("span", { class: d.postgres_up ? "up" : "down" }, "postgres " + (d.postgres_up ? "up" : "down")), " \u00b7 ",
    el("span", { class: broker ? "up" : "down" }, "broker " + (broker ? "answering" : "not answering")), " \u00b7 ",
    "updated " + new Date(d.now_ms).toISOString().slice(11, 19) + " UTC" + (beat ? "" : ""),
    d.actions ? "" : " \u00b7 read-only");
  const errs = document.getElementById("errors");
  errs.hidden = !(d.errors && d.errors.length);
  errs.replaceChildren(...(d.errors || []).map((e) => el("div", {}, e)));
}

async function refresh() {
  try {
    const r = await fetch("/api/state", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    const d = await r.json();
    drawStatus(d); drawRuns(d); drawQueues(d); drawWorkers(d); drawDead(d); drawRegistry(d); drawEvents(d);
    document.body.dataset.loaded = String(Date.now());
  } catch (e) {
    document.getElementById("status").textContent = "monitor unreachable: " + e.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const tok = document.getElementById("token");
  tok.value = sessionStorage.getItem("predictors-token") || "";
  tok.addEventListener("change", () => sessionStorage.setItem("predictors-token", tok.value));
  refresh();
  setInterval(refresh, REFRESH_MS);
});
