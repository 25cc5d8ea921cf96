// The update planner page: fills the pickers from the service, asks /v1/path,
// /v1/explain and /v1/mirror-gaps, and draws a small SVG view of the channel graph.
// Every URL is relative to the page, so it works under any path prefix and never
// leaves this service.
"use strict";

const $ = (id) => document.getElementById(id);
const api = (path, params) => "../" + path + "?" + new URLSearchParams(params).toString();
const state = { graph: null, versions: [], gaps: null, path: null };

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await r.json();
  if (!r.ok) throw new Error(body.value || r.statusText);
  return body;
}

function cmp(a, b) {
  const pa = a.split(/[.+-]/), pb = b.split(/[.+-]/);
  for (let i = 0; i < 3; i++) {
    const d = Number(pa[i]) - Number(pb[i]);
    if (d) return d;
  }
  const ra = a.includes("-"), rb = b.includes("-");
  if (ra !== rb) return ra ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function status(text, error) {
  $("status").textContent = text;
  $("status").className = error ? "status error" : "status";
}

function fillSelect(select, values, keep) {
  const old = select.value;
  for (const o of [...select.options]) if (o.value !== "") o.remove();
  for (const v of values) select.append(el("option", { value: v }, v));
  if (keep && values.includes(old)) select.value = old;
}

async function loadChannels() {
  const c = await getJSON(api("v1/planner/channels", {}));
  const channels = [...c.channels];
  fillSelect($("channel"), channels);
  fillSelect($("arch"), [...c.arches]);
  const q = new URLSearchParams(location.search);
  const stable = channels.filter((n) => n.startsWith("stable-")).sort((a, b) => cmp(a.slice(7) + ".0", b.slice(7) + ".0"));
  $("channel").value = q.get("channel") || stable[stable.length - 1] || channels[0] || "";
  if ([...c.arches].includes(q.get("arch") || "amd64")) $("arch").value = q.get("arch") || "amd64";
}

async function loadChannel() {
  const params = { channel: $("channel").value, arch: $("arch").value };
  status("Loading " + params.channel + " (" + params.arch + ")…");
  const [graph, gaps] = await Promise.all([
    getJSON(api("v1/graph", params)),
    getJSON(api("v1/mirror-gaps", params)),
  ]);
  state.graph = graph;
  state.gaps = gaps;
  state.path = null;
  state.versions = graph.nodes.map((n) => n.version).sort(cmp);
  fillSelect($("from"), state.versions, true);
  fillSelect($("to"), [...state.versions].reverse(), true);
  renderGaps();
  renderGraph();
  status(state.versions.length + " versions, " + graph.edges.length + " recommended edges, " +
    graph.conditionalEdges.reduce((n, g) => n + g.edges.length, 0) + " conditional edges in " + params.channel + ".");
}

function badge(kind) {
  return el("span", { class: "badge " + kind }, kind);
}

function risksList(risks) {
  const box = el("div");
  for (const r of risks) {
    box.append(el("div", { class: "risk" }, el("strong", {}, r.name), ": " + r.message + " ", el("code", {}, r.url)));
  }
  return box;
}

function reasonsList(reasons) {
  const box = el("div");
  for (const r of reasons) {
    const line = el("div", { class: r.kind === "conditional-risk" ? "reason risky" : "reason" }, el("strong", {}, r.kind), ": " + r.detail);
    if (r.file) line.append(" ", el("code", {}, r.file));
    box.append(line);
  }
  return box;
}

function renderPath(answer) {
  const box = $("path");
  box.replaceChildren();
  if (!answer.paths.length) {
    box.append(el("p", {}, "No update path from " + answer.from + (answer.to ? " to " + answer.to : "") + "."));
    box.append(reasonsList(answer.reasons));
    return;
  }
  const p = answer.paths[0];
  const head = el("p", { id: "path-summary" }, answer.from + " → " + answer.to + ": " + p.hops.length + " hop" + (p.hops.length === 1 ? "" : "s"));
  if (p.conditional) head.append(badge("conditional"));
  box.append(head);
  const ol = el("ol", { class: "hops", id: "hops" });
  for (const h of p.hops) {
    const li = el("li", {}, h.from + " → " + h.to, badge(h.edge));
    if (h.risks.length) li.append(risksList(h.risks));
    ol.append(li);
  }
  box.append(ol);
}

function renderExplain(x) {
  const box = $("explain");
  box.replaceChildren();
  box.append(el("p", {}, x.from + " → " + x.to, badge(x.edge)));
  if (x.risks.length) box.append(risksList(x.risks));
  if (x.reasons.length) box.append(reasonsList(x.reasons));
  if (x.edge === "recommended") box.append(el("p", { class: "muted" }, "The graph offers this update without risks."));
}

function renderGaps() {
  const g = state.gaps, box = $("gaps");
  box.replaceChildren();
  if (!g.missing.length) {
    box.append(el("p", {}, "The mirror holds every version " + g.channel + " lists for " + g.arch + "."));
    return;
  }
  const useful = g.missing.filter((m) => m.effect !== "none");
  box.append(el("p", {}, g.missing.length + " version(s) of " + g.channel + " are not mirrored for " + g.arch +
    "; " + useful.length + " would enable or shorten a path to " + (g.head || "the head") + "."));
  const table = el("table", {}, el("tr", {}, el("th", {}, "version"), el("th", {}, "effect"), el("th", {}, "helps"), el("th", {}, "file")));
  const shown = (useful.length ? useful : g.missing).slice(0, 12);
  for (const m of shown) {
    table.append(el("tr", {}, el("td", {}, m.version), el("td", {}, m.effect), el("td", {}, m.helps.slice(0, 6).join(", ") + (m.helps.length > 6 ? " …" : "")), el("td", {}, m.file || "")));
  }
  box.append(table);
  const hidden = (useful.length ? useful : g.missing).length - shown.length;
  if (hidden > 0) box.append(el("p", { class: "muted" }, "… and " + hidden + " more (all of them in the JSON answer)."));
  box.append(el("p", { class: "muted" }, "oc-mirror configuration for them: ", el("code", {}, api("v1/mirror-gaps", { channel: g.channel, arch: g.arch, format: "imageset" }).slice(3))));
}

// The view draws a chosen few versions, never the whole channel: the path, the
// selected versions and their neighbours, and the newest release of each minor.
function chooseVersions() {
  const chosen = new Set();
  const from = $("from").value, to = $("to").value;
  if (state.path && state.path.paths.length) for (const h of state.path.paths[0].hops) { chosen.add(h.from); chosen.add(h.to); }
  const vs = state.versions;
  for (const v of [from, to]) {
    const i = vs.indexOf(v);
    if (i >= 0) for (let j = Math.max(0, i - 2); j <= Math.min(vs.length - 1, i + 2); j++) chosen.add(vs[j]);
  }
  const heads = new Map();
  for (const v of vs) heads.set(v.split(".").slice(0, 2).join("."), v);
  for (const v of heads.values()) chosen.add(v);
  for (const v of vs.slice(-4)) chosen.add(v);
  const missing = (state.gaps ? state.gaps.missing.filter((m) => m.effect !== "none") : []).slice(0, 6);
  const list = [...chosen].filter((v) => vs.includes(v)).sort(cmp).slice(-40);
  return { list, missing };
}

function renderGraph() {
  const box = $("graph");
  box.replaceChildren();
  if (!state.graph || !state.versions.length) { box.append(el("p", { class: "muted" }, "No versions in this channel.")); return; }
  const { list, missing } = chooseVersions();
  const all = [...list, ...missing.map((m) => m.version)].sort(cmp);
  const W = Math.max(900, all.length * 46), H = 300, base = 190;
  const x = new Map(all.map((v, i) => [v, 40 + i * ((W - 80) / Math.max(1, all.length - 1))]));
  const root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "channel graph", id: "graph-svg" });
  const idx = state.graph.nodes.map((n) => n.version);
  const pathEdges = new Set();
  if (state.path && state.path.paths.length) for (const h of state.path.paths[0].hops) pathEdges.add(h.from + ">" + h.to);
  const arc = (a, b, cls, color, width, dash, up) => {
    const xa = x.get(a), xb = x.get(b);
    const h = Math.min(150, 14 + Math.abs(xb - xa) / 4);
    const d = "M" + xa + "," + base + " Q" + (xa + xb) / 2 + "," + (up ? base - 2 * h : base + 2 * h * 0.45) + " " + xb + "," + base;
    root.append(svg("path", { d, fill: "none", stroke: color, "stroke-width": width, "stroke-dasharray": dash, class: cls, opacity: cls === "edge-rec" ? 0.45 : 0.9 }));
  };
  for (const [f, t] of state.graph.edges) {
    const a = idx[f], b = idx[t];
    if (x.has(a) && x.has(b) && !pathEdges.has(a + ">" + b)) arc(a, b, "edge-rec", "#7b8794", 1, "", true);
  }
  for (const g of state.graph.conditionalEdges) for (const e of g.edges) {
    if (x.has(e.from) && x.has(e.to) && !pathEdges.has(e.from + ">" + e.to)) arc(e.from, e.to, "edge-cond", "#d97706", 1.5, "5 3", true);
  }
  for (const m of missing) for (const h of m.helps) if (x.has(h)) arc(h, m.version, "edge-miss", "#c81e1e", 1.5, "2 3", false);
  for (const k of pathEdges) { const [a, b] = k.split(">"); if (x.has(a) && x.has(b)) arc(a, b, "edge-path", "#2563eb", 3, "", true); }
  const missingSet = new Set(missing.map((m) => m.version));
  for (const v of all) {
    const sel = v === $("from").value || v === state.path?.to;
    const miss = missingSet.has(v);
    root.append(svg("circle", { cx: x.get(v), cy: base, r: sel ? 7 : 5, fill: miss ? "#fff" : sel ? "#2563eb" : "#334e68", stroke: miss ? "#c81e1e" : "none", "stroke-width": 2, "stroke-dasharray": miss ? "2 2" : "" }));
    root.append(svg("text", { x: x.get(v), y: base + 16, transform: "rotate(45 " + x.get(v) + " " + (base + 16) + ")" }, v));
  }
  box.append(root);
  box.append(el("p", { class: "muted" }, "Showing " + all.length + " of " + state.versions.length + " versions: the path, the selected versions and their neighbours, the newest of each minor, and mirror gaps that would help."));
}

async function plan(event) {
  if (event) event.preventDefault();
  const channel = $("channel").value, arch = $("arch").value, from = $("from").value, to = $("to").value;
  if (!from) return;
  status("Planning…");
  try {
    const params = { channel, arch, from };
    if (to) params.to = to;
    state.path = await getJSON(api("v1/path", params));
    renderPath(state.path);
    const target = to || state.path.to;
    if (target && target !== from) renderExplain(await getJSON(api("v1/explain", { channel, arch, from, to: target })));
    renderGraph();
    status("Planned in " + channel + " (" + arch + ").");
  } catch (e) {
    status(e.message, true);
  }
}

async function init() {
  try {
    await loadChannels();
    await loadChannel();
    // When the channel graph is drawn (read by the page test and benchmark).
    document.body.dataset.graphDrawnMs = String(Math.round(performance.now()));
  } catch (e) {
    status(e.message, true);
  }
  $("plan").addEventListener("submit", plan);
  for (const id of ["channel", "arch"]) $(id).addEventListener("change", () => loadChannel().catch((e) => status(e.message, true)));
  // Deep links (`?channel=…&arch=…&from=…&to=…`) fill the form and submit it.
  const q = new URLSearchParams(location.search);
  if (q.get("from") && state.versions.includes(q.get("from"))) {
    $("from").value = q.get("from");
    if (q.get("to") && state.versions.includes(q.get("to"))) $("to").value = q.get("to");
    $("plan").requestSubmit();
  }
}

init();
