// Bunker dashboard: polls the daemon's JSON API (same origin, relative
// URLs so the page also works behind a reverse proxy under a path) and
// renders it with DOM calls only. Text from the API goes through
// textContent or attribute setters and is never parsed as HTML; there is
// no inline script or style: the page is served with
// Content-Security-Policy: default-src 'self'.
"use strict";

(function () {
  const POLL_MS = 10000;
  const SVG_NS = "http://www.w3.org/2000/svg";

  // now is the daemon's time of its last answer: ages are computed against
  // it, not against the browser's clock, so a skewed client (or a daemon
  // on a test clock) shows the daemon's view.
  let now = Date.now();
  let lastRepos = "";
  let selectedRun = "";
  let pollTimer = 0;
  let snapshotSeq = 0;
  let logSeq = 0;
  let refreshing = false;
  let refreshAgain = false;

  const $ = (id) => document.getElementById(id);

  // el builds an element. props: class, text, title, data (dataset),
  // attrs (attributes); children: nodes or strings (as text), null skipped.
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    applyProps(e, props);
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  function applyProps(e, props) {
    if (!props) return;
    if (props.class) e.className = props.class;
    if (props.text !== undefined) e.textContent = String(props.text);
    if (props.title) e.title = String(props.title);
    for (const [k, v] of Object.entries(props.data || {})) e.dataset[k] = String(v);
    for (const [k, v] of Object.entries(props.attrs || {})) e.setAttribute(k, String(v));
  }

  // ---- formatting ----

  // parseTime returns milliseconds, or null for a missing or zero Go time.
  function parseTime(s) {
    if (!s || s.startsWith("0001-01-01")) return null;
    const t = Date.parse(s);
    return Number.isNaN(t) ? null : t;
  }

  // fmtAge mirrors monitor.FormatAge: 45s, 12m, 3.5h, 2.1d.
  function fmtAge(seconds) {
    const s = Math.abs(seconds);
    if (s >= 48 * 3600) return (s / 86400).toFixed(1) + "d";
    if (s >= 3600) return (s / 3600).toFixed(1) + "h";
    if (s >= 60) return Math.floor(s / 60) + "m";
    return Math.floor(s) + "s";
  }

  function fmtSeconds(s) {
    if (s === null || s === undefined) return "";
    if (s < 10) return s.toFixed(2) + "s";
    if (s < 120) return s.toFixed(1) + "s";
    return fmtAge(s);
  }

  // fmtBytes mirrors the CLI: 512 B, 1.50 KiB, 2.00 GiB.
  function fmtBytes(n) {
    if (n === null || n === undefined) return "";
    if (n < 1024) return n + " B";
    const units = "KMGTPE";
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return v.toFixed(2) + " " + units[i] + "iB";
  }

  function fmtAbs(ms) {
    return new Date(ms).toLocaleString();
  }

  // timeEl is a <time> with the age relative to the daemon's now ("5m ago",
  // "in 1h") and the absolute time as its title. A past event (the
  // default) that lies in the future says so: the clock of the machine
  // that made it is ahead of the daemon's.
  function timeEl(s, empty, future) {
    const t = parseTime(s);
    if (t === null) return el("span", { class: "muted", text: empty || "never" });
    const d = (t - now) / 1000;
    let text = Math.abs(d) < 1 ? "now" : d < 0 ? fmtAge(d) + " ago" : "in " + fmtAge(d);
    let title = fmtAbs(t);
    if (!future && d >= 60) {
      text = fmtAge(d) + " ahead";
      title += " (ahead of the daemon's clock)";
    }
    return el("time", { text, title, attrs: { datetime: new Date(t).toISOString() } });
  }

  // fmtTick labels a chart's time axis: times within two days, else dates.
  function fmtTick(t, span) {
    const d = new Date(t);
    return span < 2 * 86400e3 ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : d.toLocaleDateString();
  }

  const LABELS = { at_risk: "at risk", no_objective: "no objective" };

  function badge(kind, text) {
    return el("span", { class: "badge " + kind, text: text || LABELS[kind] || kind });
  }

  // runButton opens a run's log; its label is the result badge and age.
  function runButton(run, extra) {
    if (!run || !run.id) return el("span", { class: "muted", text: "never" });
    const b = el("button", {
      class: "run-link",
      data: { run: run.id, focusKey: "run:" + run.id + ":" + (extra || "") },
      title: "Show the log of run " + run.id,
      attrs: { type: "button" },
    }, badge(run.result), " ", timeEl(run.started));
    return b;
  }

  function durationOf(run) {
    const a = parseTime(run.started);
    const b = parseTime(run.finished);
    if (a === null || b === null) return "";
    return fmtSeconds((b - a) / 1000);
  }

  function emptyRow(cols, text) {
    return el("tr", { class: "empty" }, el("td", { text, attrs: { colspan: cols } }));
  }

  // replaceRows swaps a table body, keeping the keyboard focus on the
  // element with the same data-focus-key if there was one.
  function replaceRows(table, rows) {
    const active = document.activeElement;
    const key = active && active.dataset ? active.dataset.focusKey : "";
    table.tBodies[0].replaceChildren(...rows);
    if (key) {
      for (const e of table.querySelectorAll("[data-focus-key]")) {
        if (e.dataset.focusKey === key) {
          e.focus();
          break;
        }
      }
    }
  }

  // ---- API ----

  // unauthorized is set when the daemon refused the token (or its
  // absence): the page then asks for it.
  let unauthorized = false;

  // api GETs path with the read token, when one was typed, as a Bearer
  // token: a daemon with daemon.api_read_token or api_token answers every
  // GET only with it, and a daemon without tokens ignores it.
  async function api(path) {
    let r;
    const headers = { Accept: "application/json" };
    const token = readToken();
    if (token) headers.Authorization = "Bearer " + token;
    try {
      r = await fetch(path, { headers: headers, cache: "no-store" });
    } catch (e) {
      throw new Error("GET " + path + ": the daemon cannot be reached (" + e.message + ")");
    }
    let body = null;
    try {
      body = await r.json();
    } catch (e) {
      if (r.ok) throw new Error("GET " + path + ": the answer is not JSON");
    }
    if (r.status === 401) unauthorized = true;
    if (!r.ok) {
      const msg = body && body.error ? body.error : r.status + " " + r.statusText;
      throw new Error("GET " + path + ": " + msg);
    }
    return body;
  }

  function showError(msg) {
    const e = $("error");
    e.textContent = msg || "";
    e.hidden = !msg;
  }

  // ---- rendering ----

  function renderSummary(st) {
    const s = st.status;
    const parts = [];
    if (s && s.plan) parts.push("Plan " + s.plan);
    if (s) parts.push("measured " + fmtAbs(parseTime(s.time)));
    else parts.push("not measured yet");
    parts.push("updated " + fmtAbs(now));
    if (st.running && st.running.length) parts.push("running: " + st.running.map((k) => k.replace(/^[a-z]+:/, "")).join(", "));
    $("summary").textContent = parts.join(" · ");

    const violations = (s && s.violations) || [];
    const alerts = Object.entries(st.alerts || {}).sort((a, b) => a[0].localeCompare(b[0]));
    $("violations").replaceChildren(...violations.map((v) => el("li", { text: v })));
    $("alerts").replaceChildren(...alerts.map(([k, since]) =>
      el("li", null, "Alert " + k + " active since ", timeEl(new Date(since * 1000).toISOString()))));
    $("problems").hidden = violations.length === 0 && alerts.length === 0;
  }

  function renderJobs(st) {
    const measured = new Map(((st.status && st.status.jobs) || []).map((j) => [j.name, j]));
    const running = new Set(st.running || []);
    const rows = st.jobs.map((j) => {
      const m = measured.get(j.name);
      const rpoState = m ? m.rpo_state : "unknown";
      const name = el("td", null, el("strong", { text: j.name }));
      if (running.has("job:" + j.name)) name.append(" ", badge("running"));
      if (m && m.note) name.append(el("span", { class: "note", text: m.note }));
      const repo = el("td", null, j.repository);
      if (j.copies && j.copies.length) repo.append(el("span", { class: "sub", text: "copies: " + j.copies.join(", ") }));
      // The measured newest snapshot is the truth; the run history stands
      // in before the first measurement.
      const last = m && m.last_success ? m.last_success : j.last_success ? j.last_success.started : "";
      const lastCell = el("td", null, timeEl(last));
      if (m && m.last_snapshot) lastCell.append(el("span", { class: "sub mono", text: m.last_snapshot.slice(0, 8) }));
      const rpo = el("td", null);
      if (j.rpo_seconds) rpo.append(fmtAge(j.rpo_seconds), " ");
      rpo.append(badge(rpoState, m ? undefined : "not measured"));
      const tr = el("tr", { data: { job: j.name } },
        name,
        el("td", { text: (m && m.source) || "" }),
        repo,
        lastCell,
        rpo,
        el("td", null, timeEl(j.next_run, "not scheduled", true), j.schedule ? el("span", { class: "sub", text: j.schedule }) : null),
        el("td", null, runButton(j.last_run, "job")),
      );
      if (j.last_run && j.last_run.result === "failed") {
        tr.classList.add("failed");
        tr.lastChild.append(el("span", { class: "error-text sub", text: j.last_run.error || "" }));
      }
      if (rpoState === "violated") tr.classList.add("violated");
      return tr;
    });
    replaceRows($("jobs"), rows.length ? rows : [emptyRow(7, "No jobs in the plan.")]);
  }

  // rule reads the plan policy (its Go struct has no JSON tags, so the
  // keys are capitalized; accept both).
  function rule(ds) {
    const r = ds.rule || {};
    const pick = (k) => r[k] ?? r[k.charAt(0).toUpperCase() + k.slice(1)] ?? 0;
    return { copies: pick("copies"), media: pick("media"), offsite: pick("offsite"), immutable: pick("immutable") };
  }

  function countCell(have, want, extra) {
    const ok = have >= want;
    const td = el("td", { class: "num " + (ok ? "met" : "unmet"), title: ok ? "meets the rule" : "below the rule" },
      have + " / " + want);
    if (extra) td.append(el("span", { class: "sub", text: extra }));
    return td;
  }

  function renderDatasets(st) {
    const sets = (st.status && st.status.datasets) || [];
    if (sets.length) {
      const r = rule(sets[0]);
      $("rule").textContent = "Rule: " + r.copies + " copies (the live data counts as one), " + r.media +
        " media, " + r.offsite + " offsite, " + r.immutable + " immutable.";
    }
    const rows = sets.map((ds) => {
      const r = rule(ds);
      const result = el("td", null);
      if (ds.ok) result.append(badge("ok", "meets the rule"));
      else {
        result.append(badge("unmet", "missing"));
        result.append(el("ul", { class: "missing" }, (ds.missing || []).map((m) => el("li", { text: m }))));
      }
      for (const c of ds.stale || []) {
        result.append(el("span", { class: "sub" }, badge("stale"), " " + c.repository + ": newest copy " + fmtAge(c.age_seconds) + " old"));
      }
      const where = (ds.backups || []).map((b) => b.repository).join(", ");
      const tr = el("tr", { data: { dataset: ds.job } },
        el("td", null, el("strong", { text: ds.job }), where ? el("span", { class: "sub", text: "in " + where }) : null),
        countCell(ds.copies, r.copies),
        countCell((ds.media || []).length, r.media, (ds.media || []).join(", ")),
        countCell(ds.offsite, r.offsite),
        countCell(ds.immutable, r.immutable),
        result,
      );
      if (!ds.ok) tr.classList.add("unmet");
      return tr;
    });
    replaceRows($("datasets"), rows.length ? rows : [emptyRow(6, st.status ? "No datasets." : "Not measured yet.")]);
  }

  // restoreChart draws restore seconds per drill run: a line, a dot per
  // run (red when it failed), and the RTO as a dashed line when it is in
  // range.
  function restoreChart(drill) {
    const pts = (drill.history || []).map((p) => ({ t: parseTime(p.time), v: p.restore_seconds || 0, failed: p.result !== "success" }))
      .filter((p) => p.t !== null);
    if (!pts.length) return el("span", { class: "muted", text: "no runs yet" });
    const W = 180, H = 44, P = 4;
    const max = Math.max(...pts.map((p) => p.v), 0.001) * 1.15;
    const t0 = pts[0].t, t1 = pts[pts.length - 1].t;
    const x = (t) => (t1 === t0 ? W / 2 : P + ((t - t0) / (t1 - t0)) * (W - 2 * P));
    const y = (v) => H - P - (v / max) * (H - 2 * P);
    const failed = pts.filter((p) => p.failed).length;
    const label = pts.length + " drill run(s), restore time " + fmtSeconds(Math.min(...pts.map((p) => p.v))) + " to " +
      fmtSeconds(Math.max(...pts.map((p) => p.v))) + (failed ? ", " + failed + " failed" : "");
    const s = svg("svg", { class: "chart", width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": label },
      svg("title", null, label),
      svg("line", { class: "axis", x1: 0, y1: H - P, x2: W, y2: H - P }));
    if (drill.rto_seconds && drill.rto_seconds <= max) {
      s.append(svg("line", { class: "limit", x1: 0, y1: y(drill.rto_seconds), x2: W, y2: y(drill.rto_seconds) },
        svg("title", null, "RTO " + fmtAge(drill.rto_seconds))));
    }
    if (pts.length > 1) {
      s.append(svg("polyline", { class: "line", points: pts.map((p) => x(p.t).toFixed(1) + "," + y(p.v).toFixed(1)).join(" ") }));
    }
    for (const p of pts) {
      s.append(svg("circle", { class: "point" + (p.failed ? " failed" : ""), cx: x(p.t).toFixed(1), cy: y(p.v).toFixed(1), r: 2.5 },
        svg("title", null, fmtAbs(p.t) + ": " + fmtSeconds(p.v) + (p.failed ? " (failed)" : ""))));
    }
    return s;
  }

  function renderDrills(st) {
    const running = new Set(st.running || []);
    const rows = st.drills.map((d) => {
      const last = d.last_run;
      const failed = !!last && last.result === "failed";
      const name = el("td", null, el("strong", { text: d.name }));
      if (running.has("drill:" + d.name)) name.append(" ", badge("running"));
      if (d.schedule) name.append(el("span", { class: "sub", text: d.schedule }));
      const lastCell = el("td", null, runButton(last, "drill"));
      if (last && last.error) lastCell.append(el("span", { class: "error-text sub", text: last.error }));
      const restore = el("td", { class: "num" });
      const rs = last && last.restore_seconds;
      if (rs) {
        const over = d.rto_seconds && rs > d.rto_seconds;
        restore.append(el("span", { class: d.rto_seconds ? (over ? "over" : "within") : "", text: fmtSeconds(rs) }));
        if (d.rto_seconds) restore.append(el("span", { class: "sub", text: over ? "over the RTO" : "within the RTO" }));
      } else restore.append(el("span", { class: "muted", text: "—" }));
      const tr = el("tr", { data: { drill: d.name } },
        name,
        el("td", { text: d.job }),
        lastCell,
        el("td", null, timeEl(d.last_success && d.last_success.started)),
        restore,
        el("td", { class: "num", text: d.rto_seconds ? fmtAge(d.rto_seconds) : "none" }),
        el("td", null, restoreChart(d)),
      );
      if (failed) tr.classList.add("failed");
      return tr;
    });
    replaceRows($("drills"), rows.length ? rows : [emptyRow(7, "No drills in the plan.")]);
  }

  function renderRuns(runs) {
    const rows = runs.map((r) => {
      const tr = el("tr", { data: { run: r.id } },
        el("td", null, el("button", {
          class: "run-link",
          data: { run: r.id, focusKey: "run:" + r.id + ":runs" },
          title: "Show the log of run " + r.id,
          attrs: { type: "button" },
        }, timeEl(r.started))),
        el("td", { text: r.job }),
        el("td", { text: r.kind }),
        el("td", { text: r.trigger || "" }),
        el("td", null, badge(r.result)),
        el("td", { class: "num", text: durationOf(r) }),
        el("td", { class: "mono", text: r.snapshot ? r.snapshot.slice(0, 8) : "", title: r.snapshot || "" }),
        el("td", { class: "error-text", text: r.error || r.reason || "" }),
      );
      if (r.result === "failed") tr.classList.add("failed");
      if (r.id === selectedRun) tr.classList.add("selected");
      return tr;
    });
    replaceRows($("runs"), rows.length ? rows : [emptyRow(8, "No runs yet.")]);
  }

  function sizeChart(name, points) {
    const pts = points.map((p) => ({ t: parseTime(p.time), v: p.bytes })).filter((p) => p.t !== null);
    if (!pts.length) return el("p", { class: "muted", text: "No size history yet." });
    const W = 320, H = 90, L = 4, B = 14, T = 12;
    const maxV = Math.max(...pts.map((p) => p.v), 1);
    const t0 = pts[0].t, t1 = pts[pts.length - 1].t;
    const x = (t) => (t1 === t0 ? W / 2 : L + ((t - t0) / (t1 - t0)) * (W - 2 * L));
    const y = (v) => H - B - (v / maxV) * (H - B - T);
    const line = pts.map((p) => x(p.t).toFixed(1) + "," + y(p.v).toFixed(1)).join(" ");
    const label = "Size of " + name + " over time: " + fmtBytes(pts[0].v) + " on " + fmtAbs(t0) + ", " +
      fmtBytes(pts[pts.length - 1].v) + " on " + fmtAbs(t1) + ", " + pts.length + " measurement(s)";
    const s = svg("svg", { class: "chart", width: "100%", height: H, viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", role: "img", "aria-label": label },
      svg("title", null, label),
      svg("line", { class: "axis", x1: 0, y1: H - B, x2: W, y2: H - B }),
      svg("text", { x: L, y: T - 2 }, fmtBytes(maxV)),
      svg("text", { x: L, y: H - 2 }, fmtTick(t0, t1 - t0)),
      svg("text", { x: W - L, y: H - 2, "text-anchor": "end" }, fmtTick(t1, t1 - t0)));
    if (pts.length > 1) {
      s.append(svg("polygon", { class: "area", points: x(t0).toFixed(1) + "," + (H - B) + " " + line + " " + x(t1).toFixed(1) + "," + (H - B) }));
      s.append(svg("polyline", { class: "line", points: line }));
    } else {
      s.append(svg("circle", { class: "point", cx: x(t0), cy: y(pts[0].v), r: 3 }));
    }
    return s;
  }

  function repoNames(st) {
    const names = [];
    const add = (n) => { if (n && !names.includes(n)) names.push(n); };
    for (const r of (st.status && st.status.repositories) || []) add(r.name);
    for (const j of st.jobs) {
      add(j.repository);
      for (const c of j.copies || []) add(c);
    }
    return names;
  }

  function renderRepositories(st, sizes) {
    const measured = new Map(((st.status && st.status.repositories) || []).map((r) => [r.name, r]));
    const cards = repoNames(st).map((name) => {
      const r = measured.get(name);
      const h = el("h3", null, el("span", { text: name }));
      if (r) {
        h.append(r.reachable ? badge("ok", "reachable") : badge("unreachable"));
        if (r.immutable) h.append(badge("ok", "immutable"));
      } else h.append(badge("unknown", "not measured"));
      const dl = el("dl");
      const row = (k, v) => dl.append(el("dt", { text: k }), el("dd", null, v));
      if (r) {
        if (r.site) row("Site", r.site);
        if (r.medium) row("Medium", r.medium);
        row("Snapshots", String(r.snapshots));
        if (r.size_bytes) row("Size", fmtBytes(r.size_bytes));
        row("Checked", timeEl(r.checked));
      }
      const card = el("article", { class: "card", data: { repository: name }, attrs: { "aria-label": "Repository " + name } }, h, dl);
      if (r && r.error) card.append(el("p", { class: "error-text", text: r.error }));
      const pts = sizes.get(name);
      if (pts instanceof Error) card.append(el("p", { class: "error-text", text: pts.message }));
      else card.append(sizeChart(name, pts || []));
      return card;
    });
    $("repositories").replaceChildren(...(cards.length ? cards : [el("p", { class: "muted", text: "No repositories." })]));
  }

  // updateRepoSelect refills the selector when the set of repositories
  // changes, keeping the selection.
  function updateRepoSelect(st) {
    const names = repoNames(st);
    const key = names.join("\n");
    if (key === lastRepos) return;
    lastRepos = key;
    const sel = $("repo-select");
    const keep = sel.value;
    sel.replaceChildren(el("option", { text: "Choose a repository…", attrs: { value: "" } }),
      ...names.map((n) => el("option", { text: n, attrs: { value: n } })));
    sel.value = names.includes(keep) ? keep : "";
  }

  async function loadSnapshots() {
    const name = $("repo-select").value;
    const seq = ++snapshotSeq;
    const status = $("snapshot-status");
    const table = $("snapshots");
    $("snapshots-refresh").disabled = !name;
    if (!name) {
      table.tBodies[0].replaceChildren();
      status.textContent = "Choose a repository to list its snapshots (this reads the repository and needs the daemon's read token, daemon.api_read_token).";
      return;
    }
    status.textContent = "Reading " + name + "…";
    table.setAttribute("aria-busy", "true");
    try {
      const list = await api("api/v1/snapshots?repository=" + encodeURIComponent(name));
      if (seq !== snapshotSeq) return;
      const rows = list.map((s) => el("tr", { data: { snapshot: s.id } },
        el("td", { class: "mono", text: s.id.slice(0, 8), title: s.id }),
        el("td", null, timeEl(s.time)),
        el("td", { text: s.host }),
        el("td", { class: "mono", text: (s.paths || []).join(", ") }),
        el("td", { text: (s.tags || []).join(", ") }),
        el("td", { text: s.kind + (s.source ? " (" + s.source + ")" : "") }),
        el("td", { class: "num", text: fmtBytes(s.total_bytes) }),
        el("td", { class: "num", text: fmtBytes(s.bytes_added) }),
      ));
      replaceRows(table, rows);
      status.textContent = list.length + " snapshot(s) in " + name + ", newest first.";
      status.classList.remove("error-text");
    } catch (e) {
      if (seq !== snapshotSeq) return;
      table.tBodies[0].replaceChildren();
      status.textContent = e.message;
      status.classList.add("error-text");
    } finally {
      if (seq === snapshotSeq) table.removeAttribute("aria-busy");
    }
  }

  async function showRun(id) {
    selectedRun = id;
    const seq = ++logSeq;
    for (const tr of document.querySelectorAll("#runs tr.selected")) tr.classList.remove("selected");
    for (const tr of document.querySelectorAll("#runs tr[data-run]")) {
      if (tr.dataset.run === id) tr.classList.add("selected");
    }
    const meta = $("run-log-meta");
    const err = $("run-log-error");
    const pre = $("run-log-text");
    meta.textContent = "Loading run " + id + "…";
    err.hidden = true;
    try {
      const r = await api("api/v1/runs/" + encodeURIComponent(id));
      if (seq !== logSeq) return;
      meta.replaceChildren(
        el("strong", { text: r.job }), " · " + r.kind + " · ", badge(r.result), " · started ",
        timeEl(r.started), r.finished ? " · took " + durationOf(r) : "",
        r.trigger ? " · trigger " + r.trigger : "", r.snapshot ? " · snapshot " + r.snapshot.slice(0, 8) : "",
        " · run " + r.id);
      const problem = [r.error, r.reason].filter(Boolean).join("\n");
      err.textContent = problem;
      err.hidden = !problem;
      pre.textContent = r.log || "(the run wrote no log)";
      pre.hidden = false;
    } catch (e) {
      if (seq !== logSeq) return;
      meta.textContent = "Run " + id;
      err.textContent = e.message;
      err.hidden = false;
      pre.hidden = true;
    }
    const section = $("run-log");
    if (section.scrollIntoView) section.scrollIntoView({ block: "nearest" });
    $("run-log-title").focus({ preventScroll: true });
  }

  async function refresh() {
    if (refreshing) {
      // A new token while a poll is under way: poll again once it ends.
      refreshAgain = true;
      return;
    }
    refreshing = true;
    clearTimeout(pollTimer);
    unauthorized = false;
    try {
      const [st, runs] = await Promise.all([api("api/v1/status"), api("api/v1/runs?limit=25")]);
      now = parseTime(st.time) ?? Date.now();
      renderSummary(st);
      renderJobs(st);
      renderDatasets(st);
      renderDrills(st);
      renderRuns(runs);
      updateRepoSelect(st);
      const names = repoNames(st);
      const sizes = await Promise.all(names.map((n) => api("api/v1/sizes/" + encodeURIComponent(n)).catch((e) => e)));
      renderRepositories(st, new Map(names.map((n, i) => [n, sizes[i]])));
      showError("");
      $("token-help").hidden = true;
      document.body.dataset.loaded = "true";
    } catch (e) {
      // Without the token, say what to do rather than repeat the 401.
      $("token-help").hidden = !unauthorized;
      showError(unauthorized ? "" : e.message + " (retrying every " + POLL_MS / 1000 + " s)");
      if (unauthorized) $("summary").textContent = readToken() ? "The read token was refused." : "The daemon needs its read token.";
    } finally {
      refreshing = false;
      pollTimer = setTimeout(refresh, refreshAgain ? 0 : POLL_MS);
      refreshAgain = false;
    }
  }

  document.addEventListener("click", (ev) => {
    const b = ev.target instanceof Element ? ev.target.closest("button[data-run]") : null;
    if (b) showRun(b.dataset.run);
  });
  // The read token lives in this tab's session storage only.
  function readToken() {
    return $("api-token").value;
  }
  try {
    $("api-token").value = sessionStorage.getItem("bunker-read-token") || "";
  } catch (e) { /* storage disabled: type it each time */ }
  $("api-token").addEventListener("change", () => {
    try {
      sessionStorage.setItem("bunker-read-token", readToken());
    } catch (e) { /* storage disabled */ }
    refresh();
    if ($("repo-select").value) loadSnapshots();
  });
  $("repo-select").addEventListener("change", loadSnapshots);
  $("snapshots-refresh").addEventListener("click", loadSnapshots);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  refresh();
})();
