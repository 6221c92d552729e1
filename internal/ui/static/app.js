// kudod ui: plain JavaScript, no build step. Each page follows a server-sent event stream
// of the server (internal/ui/stream.go) and redraws from the data it holds.
"use strict";

(function () {
  const main = document.getElementById("main");

  // ---- helpers ----
  const esc = (v) => String(v == null ? "" : v).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const safeURL = (u) => (/^https?:\/\//i.test(u || "") ? u : "");
  const link = (text, url) => (safeURL(url) ? `<a href="${esc(url)}" target="_blank" rel="noopener noreferrer">${esc(text)}</a>` : esc(text));
  const time = (s) => (s ? new Date(s).getTime() : null);

  function age(ms) {
    if (ms == null || isNaN(ms)) return "-";
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 120) return s + "s";
    const m = Math.floor(s / 60);
    if (m < 120) return m + "m";
    const h = Math.floor(m / 60);
    if (h < 48) return h + "h";
    return Math.floor(h / 24) + "d";
  }
  function dur(ms) {
    if (ms == null || isNaN(ms)) return "";
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + "s";
    const m = Math.floor(s / 60), r = s % 60;
    if (m < 60) return m + "m" + (r ? " " + r + "s" : "");
    const h = Math.floor(m / 60);
    return h + "h " + (m % 60) + "m";
  }
  function clock(s) {
    if (!s) return "-";
    const d = new Date(s), p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  const ago = (s) => (s ? age(Date.now() - time(s)) + " ago" : "-");
  function until(s) {
    if (!s) return "-";
    const d = time(s) - Date.now();
    return d >= 0 ? "in " + age(d) : age(-d) + " ago";
  }
  const badge = (status, extra) => (status ? `<span class="badge s-${esc(status)}${extra ? " " + extra : ""}">${esc(status)}</span>` : `<span class="badge s-NEVER_RUN">-</span>`);
  const health = (h) => (h ? `<span class="badge h-${esc(h)}">${esc(h)}</span>` : `<span class="badge h-Unknown">…</span>`);

  function setLive(state) {
    const el = document.getElementById("live");
    el.dataset.state = state;
    el.textContent = state;
  }

  // follow opens an event stream and calls handlers[event](data) for each event.
  function follow(path, handlers) {
    const es = new EventSource(path);
    es.onopen = () => setLive("live");
    es.onerror = () => setLive("reconnecting");
    for (const [name, fn] of Object.entries(handlers)) {
      es.addEventListener(name, (ev) => {
        setLive("live");
        fn(JSON.parse(ev.data));
      });
    }
    return es;
  }

  // redraw batches redraws into one per animation frame.
  function batched(fn) {
    let queued = false;
    return () => {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => { queued = false; fn(); });
    };
  }

  function copyButtons(root) {
    root.querySelectorAll("button[data-copy]").forEach((b) => {
      b.onclick = () => {
        const text = b.dataset.copy;
        const done = () => { b.textContent = "Copied"; b.classList.add("done"); setTimeout(() => { b.textContent = "Copy"; b.classList.remove("done"); }, 1500); };
        if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, () => {});
      };
    });
  }
  const command = (c) => `<div class="cmd"><div class="label">${esc(c.label)}</div><div class="line"><code>${esc(c.text)}</code><button type="button" data-copy="${esc(c.text)}">Copy</button></div></div>`;

  function header(active) {
    document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("on", a.dataset.nav === active));
    fetch("/api/info").then((r) => r.json()).then((info) => {
      document.getElementById("cluster").textContent = (info.cluster || "") + (info.namespace ? " · namespace " + info.namespace : "");
      document.getElementById("version").textContent = info.version ? "kudod " + info.version : "";
    }, () => {});
  }

  // ---- Instances ----
  const STATUS_FILTERS = [["", "All"], ["running", "Running"], ["failed", "Failed"], ["COMPLETE", "COMPLETE"], ["IN_PROGRESS", "IN_PROGRESS"], ["ERROR", "ERROR"], ["FATAL_ERROR", "FATAL_ERROR"], ["none", "No plan yet"], ["suspended", "Suspended"]];

  function instancesPage() {
    header("instances");
    document.title = "Instances · kudod";
    const q = new URLSearchParams(location.search);
    const filter = { namespace: q.get("namespace") || "", repository: q.get("repository") || "", status: q.get("status") || "", q: q.get("q") || "" };
    const rows = new Map();
    let error = "", loaded = false, firstRender = true;
    main.innerHTML = `
      <div class="toolbar">
        <label>Namespace<select id="f-namespace"></select></label>
        <label>Repository<select id="f-repository"></select></label>
        <label>Status<select id="f-status">${STATUS_FILTERS.map(([v, t]) => `<option value="${v}">${t}</option>`).join("")}</select></label>
        <label>Name<input id="f-q" type="search" placeholder="filter by name"></label>
        <div class="counts" id="counts"></div>
      </div>
      <div id="error"></div>
      <div class="table-wrap"><table id="instances">
        <thead><tr><th>Namespace</th><th>Name</th><th>Operator</th><th>Version</th><th>Plan</th><th>Status</th><th>Revision</th><th>Age</th><th>Message</th></tr></thead>
        <tbody><tr><td colspan="9" class="empty">Loading…</td></tr></tbody>
      </table></div>`;
    const tbody = main.querySelector("#instances tbody");
    const sel = { namespace: main.querySelector("#f-namespace"), repository: main.querySelector("#f-repository"), status: main.querySelector("#f-status") };
    const search = main.querySelector("#f-q");
    sel.status.value = filter.status;
    search.value = filter.q;
    let optionKeys = { namespace: "", repository: "" };

    function options(which, values, allLabel) {
      const key = values.join("\n");
      if (key === optionKeys[which] && sel[which].options.length) return;
      optionKeys[which] = key;
      const cur = filter[which];
      if (cur && !values.includes(cur)) values = values.concat([cur]);
      sel[which].innerHTML = `<option value="">${allLabel}</option>` + values.map((v) => `<option>${esc(v)}</option>`).join("");
      sel[which].value = cur;
    }

    function matches(r) {
      if (filter.namespace && r.namespace !== filter.namespace) return false;
      if (filter.repository && r.repository !== filter.repository) return false;
      if (filter.q && !r.name.includes(filter.q)) return false;
      switch (filter.status) {
        case "": return true;
        case "running": return !!r.running;
        case "failed": return r.status === "FATAL_ERROR" || r.status === "ERROR";
        case "none": return !r.status;
        case "suspended": return !!r.suspended;
        default: return r.status === filter.status;
      }
    }

    const draw = batched(() => {
      const all = Array.from(rows.values());
      options("namespace", Array.from(new Set(all.map((r) => r.namespace))).sort(), "All namespaces");
      options("repository", Array.from(new Set(all.map((r) => r.repository).filter(Boolean))).sort(), "All repositories");
      const shown = all.filter(matches).sort((a, b) => (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const now = Date.now();
      const running = all.filter((r) => r.running).length, failed = all.filter((r) => r.status === "FATAL_ERROR").length;
      main.querySelector("#counts").innerHTML =
        `<span class="count"><b>${all.length}</b> instances</span><span class="count run"><b>${running}</b> running</span><span class="count bad"><b>${failed}</b> failed</span>` +
        (shown.length !== all.length ? `<span class="count"><b>${shown.length}</b> shown</span>` : "");
      main.querySelector("#error").innerHTML = error ? `<div class="banner">${esc(error)}</div>` : "";
      if (!loaded) return;
      const html = [];
      for (const r of shown) {
        const href = `/instances/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.name)}`;
        const status = badge(r.status, r.running ? "running" : "") + (r.suspended ? ' <span class="tag warn">suspended</span>' : "");
        html.push(`<tr data-key="${esc(r.namespace + "/" + r.name)}" data-status="${esc(r.status || "")}"><td>${esc(r.namespace)}</td><td><a href="${href}">${esc(r.name)}</a></td><td>${esc(r.operator)}</td><td>${esc(r.version || "-")}</td><td>${esc(r.plan || "-")}</td><td>${status}</td><td class="mono">${r.shortRevision ? link(r.shortRevision, r.revisionURL) : "-"}</td><td class="num">${age(now - time(r.created))}</td><td class="msg" title="${esc(r.message || "")}">${esc(r.message || "")}</td></tr>`);
      }
      tbody.innerHTML = html.length ? html.join("") : `<tr><td colspan="9" class="empty">${all.length ? "No instance matches the filters." : "No instances found."}</td></tr>`;
      document.body.dataset.rows = String(shown.length);
      if (firstRender) {
        firstRender = false;
        // The benchmark reads when the first full table was on the page.
        window.kudodRenderedAt = performance.now();
      }
    });

    function onFilter() {
      filter.namespace = sel.namespace.value;
      filter.repository = sel.repository.value;
      filter.status = sel.status.value;
      filter.q = search.value.trim();
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(filter)) if (v) p.set(k, v);
      history.replaceState(null, "", "/" + (p.toString() ? "?" + p : ""));
      draw();
    }
    for (const s of Object.values(sel)) s.onchange = onFilter;
    search.oninput = onFilter;

    const key = (r) => r.namespace + "/" + r.name;
    follow("/api/events/instances", {
      snapshot: (d) => { rows.clear(); for (const r of d.instances) rows.set(key(r), r); loaded = true; error = ""; draw(); },
      upsert: (r) => { rows.set(key(r), r); draw(); },
      delete: (k) => { rows.delete(key(k)); draw(); },
      error: (e) => { error = e.error; draw(); },
    });
    setInterval(draw, 10000); // ages
  }

  // ---- Instance ----

  // span is the time axis of a plan: from its start to its end, or to now while it runs.
  function span(plan, now) {
    let start = time(plan.start), end = time(plan.end);
    const each = (fn) => plan.phases.forEach((ph) => { fn(ph); ph.steps.forEach(fn); });
    each((x) => {
      for (const t of [time(x.start), time(x.end)]) {
        if (t == null) continue;
        if (start == null || t < start) start = t;
      }
    });
    if (start == null) return null;
    if (end == null) {
      end = plan.status === "IN_PROGRESS" || plan.status === "ERROR" || plan.active ? now : start;
      each((x) => { const t = time(x.end); if (t != null && t > end) end = t; });
    }
    return { start, end: Math.max(end, start + 1000) };
  }

  function ticks(ax) {
    const total = ax.end - ax.start;
    const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400].map((s) => s * 1000);
    const step = steps.find((s) => total / s <= 6) || 86400000 * Math.ceil(total / 86400000 / 6);
    const out = [`<span style="left:0">${esc(clock(new Date(ax.start).toISOString()).slice(11))}</span>`];
    for (let t = step; t < total - step * 0.3; t += step) out.push(`<span style="left:${(t / total) * 100}%">+${dur(t)}</span>`);
    return out.join("");
  }

  function bar(x, ax, now) {
    const s = time(x.start);
    if (s == null || !ax) return "";
    const running = x.status === "IN_PROGRESS" || x.status === "ERROR";
    const e = time(x.end) != null ? time(x.end) : running ? now : null;
    if (e == null) return "";
    const total = ax.end - ax.start;
    const left = ((s - ax.start) / total) * 100, width = Math.max(((e - s) / total) * 100, 0.4);
    const tip = `${x.name}: ${x.status}, ${clock(x.start)}${x.startEstimated ? " (estimated)" : ""} → ${x.end ? clock(x.end) : "now"} (${dur(e - s)})`;
    return `<div class="bar s-${esc(x.status)}${x.startEstimated ? " est" : ""}" style="left:${left}%;width:${Math.min(width, 100 - left)}%" title="${esc(tip)}"></div>`;
  }

  function elapsed(x, now) {
    const s = time(x.start);
    if (s == null) return x.end ? clock(x.end).slice(11) : "";
    const e = time(x.end) != null ? time(x.end) : x.status === "IN_PROGRESS" || x.status === "ERROR" ? now : null;
    return e == null ? "" : dur(e - s);
  }

  function timeline(plan, now) {
    const ax = span(plan, now);
    const rows = [];
    if (ax) rows.push(`<div class="tl-axis"><div></div><div class="tl-ticks">${ticks(ax)}</div></div>`);
    for (const ph of plan.phases) {
      rows.push(`<div class="tl-row phase" data-phase="${esc(ph.name)}" data-status="${esc(ph.status)}"><div class="tl-label"><span class="dot s-${esc(ph.status)}"></span><span class="name">Phase ${esc(ph.name)}</span> <span class="tag">${esc(ph.strategy || "serial")}</span><span class="dur">${elapsed(ph, now)}</span></div><div class="tl-track">${bar(ph, ax, now)}</div></div>`);
      if (ph.message) rows.push(`<div class="tl-row"><div></div><div class="tl-msg">${esc(ph.message)}</div></div>`);
      for (const st of ph.steps) {
        rows.push(`<div class="tl-row step" data-step="${esc(ph.name + "/" + st.name)}" data-status="${esc(st.status)}"><div class="tl-label">${badge(st.status)}<span class="name">${esc(st.name)}</span><span class="dur">${elapsed(st, now)}</span></div><div class="tl-track">${bar(st, ax, now)}</div></div>`);
        if (st.message) rows.push(`<div class="tl-row"><div></div><div class="tl-msg${st.status === "FATAL_ERROR" || st.status === "ERROR" ? " bad" : ""}">${esc(st.message)}</div></div>`);
        if (st.objects && st.objects.length) rows.push(`<div class="tl-row"><div></div><div class="tl-objs">${st.objects.map((o) => `<span class="badge h-${esc(o.health || "Unknown")}" title="${esc(o.message || "")}">${esc(o.kind)}/${esc(o.name)}</span>`).join("")}</div></div>`);
      }
    }
    const estimated = plan.phases.some((ph) => ph.startEstimated || ph.steps.some((s) => s.startEstimated));
    return `<div class="tl${ax ? "" : " tl-list"}">${rows.join("")}</div>` +
      (ax && estimated ? `<div class="hint">A dotted left edge marks a start derived from when the step before it ended.</div>` : "") +
      (!ax && plan.status !== "NEVER_RUN" ? `<div class="hint">This run's start is no longer recorded; times show when each step last changed.</div>` : "");
  }

  function planPanel(d, name, now) {
    const plan = d.plans.find((p) => p.name === name) || d.plans[0];
    if (!plan) return `<p class="empty">No plan has run yet.</p>`;
    const tabs = d.plans.map((p) => `<button type="button" data-plan="${esc(p.name)}" class="${p.name === plan.name ? "on" : ""}"><span class="dot s-${esc(p.status)}"></span>${esc(p.name)}${p.active ? " ·&nbsp;running" : ""}</button>`).join("");
    const meta = [`<span id="plan-status" data-plan="${esc(plan.name)}" data-status="${esc(plan.status)}" data-revision="${esc(plan.revision || "")}">${badge(plan.status)}</span>`, `<span><b>${esc(plan.strategy || "serial")}</b> strategy</span>`];
    if (plan.trigger) meta.push(`<span>trigger <b>${esc(plan.trigger)}</b>${plan.schedule ? " (" + esc(plan.schedule) + ")" : ""}</span>`);
    if (plan.revision) meta.push(`<span>commit <span class="mono">${link(plan.revision.slice(0, 7), plan.revisionURL)}</span></span>`);
    if (plan.start) meta.push(`<span>started <b>${esc(clock(plan.start))}</b></span>`);
    const el = elapsed(plan, now);
    if (el && plan.start) meta.push(`<span>${plan.end ? "took" : "running for"} <b>${esc(el)}</b></span>`);
    if (!plan.start && plan.lastUpdated && plan.status !== "NEVER_RUN") meta.push(`<span>last updated <b>${esc(clock(plan.lastUpdated))}</b></span>`);
    return `<div class="tabs">${tabs}</div>
      <div class="planmeta">${meta.join("")}</div>
      ${plan.reasons && plan.reasons.length ? `<ul class="reasons">${plan.reasons.map((r) => `<li>${esc(r)}</li>`).join("")}</ul>` : ""}
      ${plan.message ? `<div class="planmsg">${esc(plan.message)}</div>` : ""}
      ${timeline(plan, now)}
      ${plan.command ? `<div class="plancmd">${command({ label: "Run this plan once", text: plan.command })}</div>` : ""}`;
  }

  function objectsPanel(d) {
    if (!d.objects.length) return `<p class="empty">No objects recorded yet.</p>`;
    const rows = d.objects.map((o) => `<tr data-object="${esc(o.kind + "/" + o.name)}"><td>${esc(o.kind)}</td><td>${esc(o.name)}${o.namespace && o.namespace !== d.namespace ? ` <span class="tag">${esc(o.namespace)}</span>` : ""}</td><td class="mono">${esc(o.apiVersion)}</td><td>${health(o.health)}</td><td class="msg" title="${esc(o.message || "")}">${esc(o.message || "")}</td></tr>`);
    return (d.objectsNote ? `<div class="banner info">${esc(d.objectsNote)}</div>` : "") +
      `<table><thead><tr><th>Kind</th><th>Name</th><th>API version</th><th>Health</th><th>Message</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
  }

  function historyPanel(d, now) {
    if (!d.history.length) return `<p class="empty">No plan has run yet.</p>`;
    const rows = d.history.map((e) => `<tr><td><b>${esc(e.plan)}</b></td><td>${esc(e.trigger || "-")}</td><td class="mono">${e.revision ? link(e.revision.slice(0, 7), e.revisionURL) : "-"}</td><td class="num">${e.start ? esc(clock(e.start)) : "-"}</td><td class="num">${e.start ? esc(elapsed(e, now)) : e.end ? "ended " + esc(clock(e.end)) : "-"}</td><td>${badge(e.status)}</td><td class="msg" title="${esc(e.message || "")}">${esc(e.message || "")}</td></tr>`);
    return `<table><thead><tr><th>Plan</th><th>Trigger</th><th>Commit</th><th>Started</th><th>Duration</th><th>Outcome</th><th>Message</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
  }

  function paramsPanel(d) {
    if (!d.parameters.length) return `<p class="empty">The instance file sets no parameters; the package defaults apply.</p>`;
    return `<table class="kv"><tbody>${d.parameters.map((p) => `<tr><td class="mono">${esc(p.name)}</td><td class="wrap mono">${p.sensitive ? `<span class="masked" title="sensitive: the value never leaves kudod ui">${esc(p.value)}</span><span class="lock">sensitive</span>` : esc(p.value)}</td></tr>`).join("")}</tbody></table>`;
  }

  function schedulesPanel(d) {
    if (!d.schedules.length) return `<p class="empty">No schedules.</p>`;
    return d.schedules.map((s) => `<table class="kv" data-schedule="${esc(s.name)}"><tbody>
      <tr><td>schedule</td><td><b>${esc(s.name)}</b> runs <b>${esc(s.plan)}</b>${s.suspended ? ' <span class="tag warn">suspended</span>' : ""}</td></tr>
      <tr><td>cron</td><td class="mono">${esc(s.cron)} ${esc(s.timeZone || "UTC")}</td></tr>
      <tr><td>next run</td><td>${s.next ? `${esc(clock(s.next))} <span class="empty">(${esc(until(s.next))})</span>` : "-"}</td></tr>
      <tr><td>last run</td><td>${s.last ? `${esc(clock(s.last))} ${s.lastResult ? badge(s.lastResult) : ""}` : "-"}</td></tr>
      ${s.lastSkipped ? `<tr><td>last skipped</td><td>${esc(clock(s.lastSkipped))}: ${esc(s.lastSkipReason || "")}</td></tr>` : ""}
      <tr><td>concurrency</td><td>${esc(s.concurrencyPolicy)}</td></tr></tbody></table>`).join('<hr class="sep">');
  }

  function conditionsPanel(d) {
    if (!d.conditions.length) return `<p class="empty">No conditions.</p>`;
    return `<table class="kv"><tbody>${d.conditions.map((c) => `<tr><td>${esc(c.type)}</td><td><b>${esc(c.status)}</b> ${esc(c.reason || "")}${c.message ? `<div class="empty">${esc(c.message)}</div>` : ""}</td></tr>`).join("")}</tbody></table>`;
  }

  function instancePage(ns, name) {
    header("instances");
    document.title = `${name} · ${ns} · kudod`;
    let state = null, chosen = decodeURIComponent((location.hash.match(/plan=([^&]+)/) || [])[1] || "");
    main.innerHTML = `<div class="crumbs"><a href="/">Instances</a> / <a href="/?namespace=${encodeURIComponent(ns)}">${esc(ns)}</a> / ${esc(name)}</div><div id="inst"><p class="empty">Loading…</p></div>`;
    const root = main.querySelector("#inst");

    const draw = batched(() => {
      const now = Date.now();
      if (!state) return;
      if (state.error) { root.innerHTML = `<div class="banner">${esc(state.error)}</div>`; return; }
      if (state.missing || !state.instance) { root.innerHTML = `<div class="banner info">Instance ${esc(ns)}/${esc(name)} does not exist (yet): this page shows it as soon as it does.</div>`; return; }
      const d = state.instance;
      const plan = chosen && d.plans.some((p) => p.name === chosen) ? chosen : d.currentPlan;
      const facts = [`operator <b>${esc(d.operator)}</b> ${esc(d.version || "")}${d.appVersion ? " (app " + esc(d.appVersion) + ")" : ""}`];
      if (d.repository) facts.push(`repository <b>${esc(d.repository)}</b>`);
      if (d.revision) facts.push(`revision <span class="mono">${link(d.shortRevision, d.revisionURL)}</span>`);
      if (d.path) facts.push(`file <span class="mono">${esc(d.path)}</span>`);
      if (d.parent) facts.push(`made by <a href="/instances/${encodeURIComponent(d.parent.namespace)}/${encodeURIComponent(d.parent.name)}">${esc(d.parent.namespace)}/${esc(d.parent.name)}</a>`);
      facts.push(`age <b>${age(now - time(d.created))}</b>`);
      const scroll = window.scrollY;
      root.innerHTML = `
        <div class="head"><h1>${esc(d.name)}</h1>${badge(d.status, d.running ? "running" : "")}${d.suspended ? '<span class="tag warn">suspended</span>' : ""}</div>
        <div class="facts">${facts.map((f) => `<span>${f}</span>`).join("")}</div>
        <div class="cols">
          <div>
            <section class="panel" id="plan"><h2>Plans</h2>${planPanel(d, plan, now)}</section>
            <section class="panel" id="objects"><h2>Objects <span class="sub">live health (kstatus)</span></h2>${objectsPanel(d)}</section>
            <section class="panel" id="history"><h2>History</h2>${historyPanel(d, now)}</section>
          </div>
          <div>
            <section class="panel" id="commands"><h2>Commands <span class="sub">actions run from the command line</span></h2>${d.commands.map(command).join("")}</section>
            <section class="panel" id="parameters"><h2>Parameters</h2>${paramsPanel(d)}</section>
            <section class="panel" id="schedules"><h2>Schedules</h2>${schedulesPanel(d)}</section>
            <section class="panel" id="conditions"><h2>Conditions</h2>${conditionsPanel(d)}</section>
          </div>
        </div>`;
      window.scrollTo(0, scroll);
      root.querySelectorAll(".tabs button").forEach((b) => {
        b.onclick = () => { chosen = b.dataset.plan; history.replaceState(null, "", "#plan=" + encodeURIComponent(chosen)); draw(); };
      });
      copyButtons(root);
    });

    follow(`/api/events/instances/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`, {
      instance: (s) => { state = s; draw(); },
    });
    // Running bars grow with the clock between events.
    // (Not while the user selects text: a redraw would drop the selection.)
    setInterval(() => { if (state && state.instance && state.instance.running && window.getSelection().isCollapsed) draw(); }, 1000);
  }

  // ---- Sources ----
  function sourcesPage() {
    header("sources");
    document.title = "Sources · kudod";
    let data = null;
    main.innerHTML = `<h1 style="margin-bottom:14px">Sources</h1><div id="src"><p class="empty">Loading…</p></div>`;
    const root = main.querySelector("#src");
    const draw = batched(() => {
      if (!data) return;
      const rows = data.sources.map((s) => {
        let next = "-";
        if (s.nextPoll) next = time(s.nextPoll) >= Date.now() ? until(s.nextPoll) : "every " + esc(s.interval || "?");
        return `<tr data-repository="${esc(s.repository)}"><td><b>${esc(s.repository)}</b></td><td class="mono wrap">${esc(s.url || "-")}</td><td class="mono">${esc(s.ref || "-")}</td><td class="mono">${s.revision ? link(s.revision.slice(0, 12), s.revisionURL) : "-"}</td><td class="num">${esc(ago(s.lastPoll))}</td><td class="num">${next}</td><td class="wrap ${s.lastError ? "err" : ""}">${esc(s.lastError || "-")}</td></tr>`;
      });
      root.innerHTML = (data.error ? `<div class="banner">${esc(data.error)}</div>` : "") +
        `<div class="table-wrap"><table id="sources"><thead><tr><th>Repository</th><th>URL</th><th>Ref</th><th>Revision</th><th>Last poll</th><th>Next poll</th><th>Last error</th></tr></thead><tbody>${rows.join("") || `<tr><td colspan="7" class="empty">No repository status: is the daemon running, and is its namespace the one kudod ui reads (--daemon-namespace)?</td></tr>`}</tbody></table></div>
        <p class="hint">The daemon records a repository's status when it changes and at least every 10 minutes; "every …" shows the interval when nothing changed since.</p>`;
    });
    follow("/api/events/sources", { sources: (d) => { data = d; draw(); } });
    setInterval(draw, 1000);
  }

  // ---- router ----
  const path = location.pathname;
  let m;
  if (path === "/sources") sourcesPage();
  else if ((m = path.match(/^\/instances\/([^/]+)\/([^/]+)$/))) instancePage(decodeURIComponent(m[1]), decodeURIComponent(m[2]));
  else instancesPage();
})();
