"use strict";
// The report's page: everything from window.RUNS (inline) and issues/*.js (loaded on click).
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22"];
const DASHES = ["", "6 3", "2 3", "8 3 2 3", "1 2", "10 4"];
const pct = (x) => (x == null ? "-" : (100 * x).toFixed(1) + "%");
const el = (tag, attrs = {}, text) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text != null) node.textContent = text;
  return node;
};
const svgEl = (tag, attrs = {}) => {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
};

// The curve's x axis: samples per issue (k), or what k samples cost per issue (k times a
// sample's mean tokens or dollars), so runs of different price can be compared.
const AXES = {
  samples: {title: "k (samples per issue, log scale)", scale: () => 1, fmt: (v) => String(v)},
  tokens: {title: "tokens per issue (k samples, log scale)", scale: (r) => r.per_sample.tokens,
    fmt: (v) => (v >= 1e6 ? (v / 1e6).toPrecision(3) + "M" : v >= 1e3 ? (v / 1e3).toPrecision(3) + "k" :
      v.toPrecision(3))},
  dollars: {title: "dollars per issue (k samples, log scale)", scale: (r) => r.per_sample.dollars,
    fmt: (v) => "$" + (v >= 1 ? v.toFixed(2) : v.toPrecision(2))},
};

function series() {
  const out = [];
  for (const run of window.RUNS) {
    const tag = window.RUNS.length > 1 ? run.run_id + ": " : "";
    out.push({name: tag + "coverage@k", cls: "cov", k: run.curve.k, y: run.curve.coverage,
      fit: run.fit, run});
    for (const [name, sel] of Object.entries(run.selection_at || {})) {
      out.push({name: tag + name + "@k", cls: "sel", k: sel.k, y: sel.mean, run});
    }
  }
  return out;
}

function ticks(lo, hi) {  // 1, 2, 5 times powers of ten within [lo, hi]
  const out = [];
  for (let p = Math.floor(Math.log10(lo)); Math.pow(10, p) <= hi; p++) {
    for (const m of [1, 2, 5]) {
      const v = m * Math.pow(10, p);
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
  }
  return out;
}

function drawCurve() {
  const svg = document.getElementById("curve");
  const legend = document.getElementById("legend");
  svg.innerHTML = "";
  legend.innerHTML = "";
  const axis = AXES[document.getElementById("xaxis").value] || AXES.samples;
  svg.dataset.axis = document.getElementById("xaxis").value;
  const all = series().filter((s) => axis.scale(s.run) > 0);
  if (!all.length) return;
  const W = 720, H = 400, L = 56, R = 16, T = 16, B = 40;
  const xs = all.flatMap((s) => s.k.map((k) => k * axis.scale(s.run)));
  const lo = Math.min(...xs), hi = Math.max(lo * 2, ...xs);
  const ymax = Math.max(0.01, ...all.flatMap((s) => s.y)) * 1.1;
  const x = (v) => L + (Math.log(v / lo) / Math.log(hi / lo)) * (W - L - R);
  const y = (v) => H - B - (v / ymax) * (H - T - B);
  svg.appendChild(svgEl("line", {class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B}));
  svg.appendChild(svgEl("line", {class: "axis", x1: L, y1: T, x2: L, y2: H - B}));
  for (let i = 0; i <= 5; i++) {
    const v = (ymax / 5) * i;
    svg.appendChild(svgEl("line", {class: "grid", x1: L, y1: y(v), x2: W - R, y2: y(v)}));
    const label = svgEl("text", {x: L - 6, y: y(v) + 4, "text-anchor": "end"});
    label.textContent = pct(v);
    svg.appendChild(label);
  }
  for (const v of ticks(lo, hi)) {
    const label = svgEl("text", {x: x(v), y: H - B + 16, "text-anchor": "middle", class: "tick"});
    label.textContent = axis.fmt(v);
    svg.appendChild(label);
  }
  const title = svgEl("text", {x: (W + L) / 2, y: H - 6, "text-anchor": "middle"});
  title.textContent = axis.title;
  svg.appendChild(title);
  all.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length], dash = DASHES[i % DASHES.length];
    const scale = axis.scale(s.run);
    const path = s.k.map((k, j) => (j ? "L" : "M") + x(k * scale) + " " + y(s.y[j])).join(" ");
    svg.appendChild(svgEl("path", {d: path, fill: "none", stroke: colour, "stroke-width": 2,
      "stroke-dasharray": dash, class: "line " + s.cls}));
    s.k.forEach((k, j) => {
      const dot = svgEl("circle", {cx: x(k * scale), cy: y(s.y[j]), r: 3, fill: colour,
        class: "point " + s.cls, "data-k": k, "data-y": s.y[j]});
      const tip = svgEl("title");
      tip.textContent = s.name + " at k = " + k +
        (scale !== 1 ? " (" + axis.fmt(k * scale) + ")" : "") + ": " + pct(s.y[j]);
      dot.appendChild(tip);
      svg.appendChild(dot);
    });
    if (s.fit) {  // log(coverage) = a * k^b, drawn apart from the data
      const kmax = Math.max(...s.k), ks = [];
      for (let k = 1; k <= kmax * 1.001; k *= 1.1) ks.push(k);
      const fit = ks.map((k, j) => (j ? "L" : "M") + x(k * scale) + " " +
        y(Math.exp(s.fit.a * Math.pow(k, s.fit.b)))).join(" ");
      svg.appendChild(svgEl("path", {d: fit, fill: "none", stroke: colour, "stroke-width": 1,
        "stroke-dasharray": "2 4", opacity: 0.7, class: "fit"}));
    }
    const item = el("span");
    const swatch = el("i");
    swatch.style.background = colour;
    item.append(swatch, s.name);
    legend.appendChild(item);
  });
}

function setUpAxes() {
  const select = document.getElementById("xaxis");
  for (const option of select.options) {  // a cost axis needs every run to have that cost
    option.disabled = !window.RUNS.every((r) => AXES[option.value].scale(r) > 0);
  }
  select.onchange = drawCurve;
}

function drawCounts() {
  const box = document.getElementById("counts");
  for (const run of window.RUNS) {
    const st = run.patch_statuses || {};
    const flagged = Object.values(run.flags || {}).reduce((a, b) => a + b, 0);
    const line = el("p", {class: "count-line"});
    const parts = [["issues", run.n_issues], ["samples per issue", run.samples_per_issue],
      ["resolved by any", pct(run.resolved_any)], ["missing samples", run.missing.samples],
      ["errors", st.error || 0], ["suspicious", st.suspicious || 0], ["flagged", flagged],
      ["cost", "$" + (run.cost.dollars || 0).toFixed(2)]];
    line.append(el("b", {}, run.run_id + ": "));
    for (const [name, value] of parts) line.append(el("span", {"data-count": name}, name + " " + value));
    box.appendChild(line);
  }
  const table = document.getElementById("coverage-table");
  const ks = [...new Set(window.RUNS.flatMap((r) => Object.keys(r.coverage_at)))]
    .sort((a, b) => a - b);
  const head = el("tr");
  head.append(el("th", {}, "run"), ...ks.map((k) => el("th", {}, "coverage@" + k)),
    el("th", {}, "official@n"));
  table.appendChild(head);
  for (const run of window.RUNS) {
    const row = el("tr");
    const official = run.official_coverage_at || {};
    const last = Object.keys(official).sort((a, b) => a - b).pop();
    row.append(el("td", {}, run.run_id),
      ...ks.map((k) => el("td", {"data-k": k}, pct(run.coverage_at[k]))),
      el("td", {}, last ? pct(official[last]) : "-"));
    table.appendChild(row);
  }
  document.getElementById("config-text").textContent =
    JSON.stringify(window.RUNS.map((r) => ({run: r.run_id, ...r.config})), null, 2);
  document.getElementById("runs-line").textContent = window.RUNS.map((r) =>
    r.run_id + " (" + (r.model || "?") + " on " + (r.dataset || "?") + ")").join(", ");
}

const resolvingPicks = (i) => Object.keys(i.picks).filter((name) => i.picks[name]);
const COLUMNS = [["issue", (i) => i.id], ["samples", (i) => i.samples], ["valid", (i) => i.valid],
  ["distinct", (i) => i.distinct], ["resolving", (i) => i.resolving],
  ["verdicts", (i) => Object.entries(i.statuses).map(([k, v]) => v + " " + k).join(", ")],
  ["picks that resolve", (i) => resolvingPicks(i).join(", ") || "-"], ["flagged", (i) => i.flags],
  ["missing", (i) => i.missing], ["first location", (i) => i.location || "-"],
  ["tokens", (i) => i.tokens], ["container s", (i) => i.container_s]];
let sortBy = 0, sortDown = false;

function rows() {
  const filter = document.getElementById("filter").value;
  const text = document.getElementById("search").value.trim();
  const keep = filter.startsWith("pick:") ? (i) => i.picks[filter.slice(5)] :
    {all: () => true, resolved: (i) => i.resolving > 0, flagged: (i) => i.flags > 0,
      missing: (i) => i.missing > 0}[filter];
  const out = [];
  window.RUNS.forEach((run, r) => run.issues.forEach((i) => {
    if (keep(i) && i.id.includes(text)) out.push({...i, run: r});
  }));
  const key = COLUMNS[sortBy][1];
  out.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (sortDown ? -1 : 1));
  return out;
}

function drawIssues() {
  const table = document.getElementById("issue-table");
  const head = table.tHead, body = table.tBodies[0];
  head.innerHTML = "";
  const tr = el("tr");
  COLUMNS.forEach(([name], c) => {
    const th = el("th", {}, name + (c === sortBy ? (sortDown ? " ▼" : " ▲") : ""));
    th.onclick = () => { sortDown = c === sortBy ? !sortDown : false; sortBy = c; drawIssues(); };
    tr.appendChild(th);
  });
  head.appendChild(tr);
  body.innerHTML = "";
  const shown = rows();
  for (const issue of shown) {
    const row = el("tr", {"data-issue": issue.id});
    COLUMNS.forEach(([, key]) => row.appendChild(el("td", {}, String(key(issue)))));
    if (issue.resolving) row.classList.add("resolving");
    row.onclick = () => openIssue(issue);
    body.appendChild(row);
  }
  document.getElementById("shown").textContent = shown.length + " shown";
}

window.ISSUES = {};
window.issueLoaded = (key, data) => { window.ISSUES[JSON.stringify(key)] = data; showIssue(key); };

function openIssue(issue) {
  const key = [issue.run, issue.id];
  if (window.ISSUES[JSON.stringify(key)]) return showIssue(key);
  document.head.appendChild(el("script", {src: issue.file}));
}

function showIssue(key) {
  const data = window.ISSUES[JSON.stringify(key)];
  const view = document.getElementById("issue-view");
  view.hidden = false;
  document.getElementById("issue-title").textContent = data.id;
  const list = document.getElementById("candidate-list");
  list.innerHTML = "";
  data.candidates.forEach((c, n) => {
    const v = c.verdict;
    const flags = v ? v.flags.filter((f) => !f.startsWith("fuzzy")) : [];
    const label = (v ? v.status : (c.reason || "no patch")) + " x" + c.samples.length +
      (flags.length ? " (flagged)" : "") + (c.sha ? "  " + c.sha.slice(0, 12) : "");
    const item = el("li", {"data-candidate": n}, label);
    if (v && v.resolved) item.classList.add("resolving");
    if (flags.length) item.classList.add("flagged");
    item.onclick = () => showCandidate(c);
    list.appendChild(item);
  });
  if (data.candidates.length) showCandidate(data.candidates[0]);
  view.scrollIntoView();
}

function outcomes(title, tests) {
  const table = el("table", {class: "outcomes"});
  table.appendChild(el("tr")).append(el("th", {}, title), el("th", {}, "status"));
  for (const [test, status] of Object.entries(tests || {})) {
    const row = el("tr");
    row.append(el("td", {}, test), el("td", {class: status === "PASSED" ? "resolving" : "bad"}, status));
    table.appendChild(row);
  }
  return table;
}

function showCandidate(c) {
  const box = document.getElementById("candidate-view");
  box.innerHTML = "";
  const v = c.verdict;
  box.append(el("p", {class: "verdict"}, v ? "verdict: " + v.status + (v.reason ? " (" + v.reason + ")" : "") +
    "; official rules: " + (v.official_resolved ? "resolved" : "not resolved") +
    "; outcomes from: " + (v.channel || "-") : "no verdict: " + (c.reason || "no patch")));
  box.append(el("p", {}, "samples " + c.samples.join(", ") + " (" + c.samples.length + ")" +
    (c.locations.length ? "; shown " + c.locations.join(", ") : "")));
  if (v && v.flags.length) box.append(el("p", {class: "flagged"}, "flags: " + v.flags.join("; ")));
  if (v && v.fidelity) box.append(el("p", {}, "notes: " + v.fidelity));
  const diff = el("pre", {class: "diff"});
  for (const line of (c.patch || "").split("\n")) {
    const cls = line.startsWith("+") && !line.startsWith("+++") ? "add" :
      line.startsWith("-") && !line.startsWith("---") ? "del" : line.startsWith("@@") ? "hunk" : "";
    diff.appendChild(el("span", cls ? {class: cls} : {}, line + "\n"));
  }
  box.append(diff);
  const sig = c.signals || {};
  const said = [];
  if (sig.regression) said.push("regression: " + (sig.regression.error ||
    (sig.regression.strikes.length ? "breaks " + sig.regression.strikes.join(", ") :
      "breaks none of " + sig.regression.tests.length + " nearby test file(s)")));
  if (sig.reproduction) said.push("reproduction: " + (sig.reproduction.error ||
    "passes " + sig.reproduction.passed.length + " of " + sig.reproduction.tests.length));
  if (sig.judge) said.push("judge: " + sig.judge.votes + " of " + sig.judge.of + " votes");
  if (said.length) box.append(el("p", {class: "signals"}, "signals: " + said.join("; ")));
  if (v) {
    box.append(outcomes("FAIL_TO_PASS", v.fail_to_pass), outcomes("PASS_TO_PASS", v.pass_to_pass));
    if (v.log) {
      const link = el("p");
      link.append(el("a", {href: v.log}, "the whole test log"));
      box.append(link);
    }
    box.append(el("pre", {class: "log"}, v.log_tail));
  }
  if (c.trajectory) box.append(trajectory(c.trajectory));
}

function trajectory(t) {  // an agentic sample, step by step
  const box = el("details", {class: "trajectory", open: ""});
  box.append(el("summary", {}, "trajectory of sample " + t.sample + ": " + t.steps.length +
    " step(s), " + (t.exit_reason || "no exit reason")));
  const list = el("ol");
  for (const step of t.steps) {
    const item = el("li");
    item.append(el("b", {}, step.action), el("pre", {class: "argument"}, step.argument),
      el("pre", {class: "observation"}, step.observation));
    list.appendChild(item);
  }
  box.append(list);
  return box;
}

function setUpFilter() {  // one "its pick resolves" choice per selector the runs have
  const select = document.getElementById("filter");
  const names = [...new Set(window.RUNS.flatMap((r) => Object.keys(r.selection_at || {})))];
  for (const name of names) {
    select.insertBefore(el("option", {value: "pick:" + name}, "the " + name + " pick resolves"),
      select.querySelector("option[value=flagged]"));
  }
}

setUpAxes();
drawCurve();
drawCounts();
setUpFilter();
drawIssues();
document.getElementById("filter").onchange = drawIssues;
document.getElementById("search").oninput = drawIssues;
