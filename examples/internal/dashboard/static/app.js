// Live job dashboard: keeps a table of jobs in sync with the server over a
// WebSocket, reconnecting with backoff and re-syncing on every connect.
// Plain JavaScript, no build step. Every value from the server is written
// with textContent, never parsed as HTML.
"use strict";

(() => {
  const RANK = { submitted: 0, queued: 1, running: 2, completed: 3, failed: 3, cancelled: 3 };
  const STATUSES = ["submitted", "queued", "running", "completed", "failed", "cancelled"];
  const TERMINAL = new Set(["completed", "failed", "cancelled"]);
  const BACKOFF_MIN = 500, BACKOFF_MAX = 15000;

  const jobs = new Map(); // job_id -> state
  const rows = new Map(); // job_id -> <tr>
  let clockOffset = 0;    // server clock minus ours, ms
  let ws = null;
  let backoff = BACKOFF_MIN;
  let retryAt = 0, retryTimer = null;
  let everSynced = false;

  const $ = (sel) => document.querySelector(sel);
  const tbody = $("#jobs tbody");

  // ---- connection -------------------------------------------------------

  function setConn(state, text) {
    document.body.dataset.conn = state;
    $("#conn-text").textContent = text;
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    retryAt = 0;
    setConn("connecting", everSynced ? "reconnecting…" : "connecting…");
    const url = new URL("ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    let sock;
    try {
      sock = new WebSocket(url);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws = sock;
    sock.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      handle(msg);
    };
    sock.onclose = () => {
      if (ws !== sock) return;
      ws = null;
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (retryTimer) return;
    const delay = Math.round(backoff * (0.75 + Math.random() * 0.5));
    backoff = Math.min(backoff * 2, BACKOFF_MAX);
    retryAt = Date.now() + delay;
    retryTimer = setTimeout(connect, delay);
    showRetry();
  }

  function showRetry() {
    if (!retryAt) return;
    const s = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
    setConn("disconnected", `disconnected — retrying in ${s}s`);
  }

  window.addEventListener("online", () => { if (!ws) connect(); });

  // ---- messages -----------------------------------------------------------

  function handle(msg) {
    if (msg.server_time) clockOffset = Date.parse(msg.server_time) - Date.now();
    if (msg.type === "snapshot") {
      const keep = new Set(msg.jobs.map((j) => j.job_id));
      for (const id of [...jobs.keys()]) if (!keep.has(id)) remove(id);
      for (const j of msg.jobs) put(j, true);
      backoff = BACKOFF_MIN;
      if (everSynced) {
        document.body.dataset.reconnects = String(Number(document.body.dataset.reconnects) + 1);
      }
      everSynced = true;
      setConn("connected", "live");
      syncFromAPI();
    } else if (msg.type === "update") {
      for (const j of msg.jobs || []) put(j, false);
      for (const id of msg.removed || []) remove(id);
      for (const n of msg.notifications || []) toast(n);
    }
    renderCounts();
  }

  // put stores a job state. A snapshot is authoritative; otherwise a state
  // behind the one shown (rank, or progress while running) is ignored.
  function put(j, authoritative) {
    const cur = jobs.get(j.job_id);
    if (cur && !authoritative && behind(j, cur)) {
      // Keep what is shown, but take the details only the server knows.
      for (const k of ["started_at", "detail", "node", "job_name", "project_id"]) if (!cur[k] && j[k]) cur[k] = j[k];
      render(cur);
      return;
    }
    jobs.set(j.job_id, j);
    render(j);
  }

  function behind(a, b) {
    if (RANK[a.status] !== RANK[b.status]) return RANK[a.status] < RANK[b.status];
    return a.status === "running" && b.status === "running" && a.progress < b.progress;
  }

  function remove(id) {
    jobs.delete(id);
    const tr = rows.get(id);
    if (tr) tr.remove();
    rows.delete(id);
  }

  // syncFromAPI fills in what the dashboard server did not see (it started
  // after those jobs) from the orchestrator's job list.
  async function syncFromAPI() {
    let list;
    try {
      const r = await fetch("api/jobs", { headers: { Accept: "application/json" } });
      if (!r.ok) {
        if (r.status === 404 || r.status === 503) document.body.classList.add("no-api");
        return;
      }
      document.body.classList.remove("no-api");
      list = await r.json();
    } catch (e) {
      return;
    }
    for (const v of list || []) mergeView(v);
    renderCounts();
  }

  // mergeView folds an orchestrator JobView in, unless it is behind.
  function mergeView(v) {
    const cur = jobs.get(v.job_id);
    const spec = v.spec || {};
    const j = {
      job_id: v.job_id, user_id: v.user_id, status: v.status, progress: v.progress || 0,
      node: v.node || "", job_name: spec.job_name || "", project_id: spec.project_id || "", queue: spec.queue || "",
      submitted_at: v.submitted_at, updated_at: v.updated_at,
      started_at: cur ? cur.started_at : undefined,
      finished_at: cur ? cur.finished_at : undefined,
      detail: cur ? cur.detail : undefined,
    };
    if (TERMINAL.has(j.status) && !j.finished_at) j.finished_at = v.updated_at;
    if (cur && !behind(cur, j)) return;
    jobs.set(j.job_id, j);
    render(j);
  }

  // ---- rendering ----------------------------------------------------------

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function render(j) {
    let tr = rows.get(j.job_id);
    const fresh = !tr;
    if (fresh) {
      tr = el("tr");
      tr.dataset.job = j.job_id;
      for (let i = 0; i < 9; i++) tr.appendChild(el("td"));
      tr.cells[0].appendChild(el("code"));
      tr.cells[4].append(el("span", "bar"), el("span", "pct"));
      tr.cells[4].firstChild.appendChild(el("span"));
      tr.cells[3].appendChild(el("span", "status"));
      tr.cells[6].className = "num";
      tr.cells[7].className = "num duration";
      insertRow(tr, j.job_id);
      rows.set(j.job_id, tr);
    }
    const changed = tr.dataset.status !== j.status;
    tr.dataset.status = j.status;
    tr.cells[0].firstChild.textContent = j.job_id;
    tr.cells[1].textContent = j.user_id || "";
    tr.cells[2].replaceChildren(el("div", "", j.job_name || j.project_id || ""));
    if (j.detail) tr.cells[2].appendChild(el("div", "detail", j.detail));
    const pill = tr.cells[3].firstChild;
    pill.className = "status " + j.status;
    pill.textContent = j.status;
    pill.title = j.detail || "";
    const pct = Math.max(0, Math.min(100, j.progress || 0));
    tr.cells[4].firstChild.firstChild.style.width = pct + "%";
    tr.cells[4].lastChild.textContent = Math.round(pct) + "%";
    tr.cells[5].textContent = j.node || "";
    tr.cells[6].textContent = j.submitted_at ? new Date(j.submitted_at).toLocaleTimeString() : "";
    tr.cells[7].textContent = duration(j);
    const act = tr.cells[8];
    if (TERMINAL.has(j.status)) {
      act.replaceChildren();
    } else if (!act.firstChild) {
      const b = el("button", "cancel", "Cancel");
      b.type = "button";
      b.addEventListener("click", () => cancelJob(j.job_id, b));
      act.appendChild(b);
    }
    if (changed && !fresh) {
      tr.classList.add("flash");
      requestAnimationFrame(() => requestAnimationFrame(() => tr.classList.remove("flash")));
    }
    $("#empty").hidden = rows.size > 0;
  }

  // insertRow keeps rows sorted by job ID, newest (largest) first.
  function insertRow(tr, id) {
    let before = tbody.firstElementChild;
    while (before && before.dataset.job > id) before = before.nextElementSibling;
    tbody.insertBefore(tr, before);
  }

  function duration(j) {
    const from = Date.parse(j.started_at || j.submitted_at || "");
    if (isNaN(from)) return "";
    const end = j.finished_at ? Date.parse(j.finished_at) : Date.now() + clockOffset;
    return fmtDuration(Math.max(0, end - from));
  }

  function fmtDuration(ms) {
    if (ms < 60000) return (ms / 1000).toFixed(1) + "s";
    const s = Math.floor(ms / 1000);
    if (s < 3600) return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h " + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  }

  function renderCounts() {
    const n = Object.fromEntries(STATUSES.map((s) => [s, 0]));
    for (const j of jobs.values()) if (j.status in n) n[j.status]++;
    const box = $("#counts");
    box.replaceChildren();
    const add = (label, v) => {
      const c = el("span", "count", label);
      c.appendChild(el("b", "", String(v)));
      box.appendChild(c);
    };
    add("jobs", jobs.size);
    for (const s of STATUSES) if (n[s]) add(s, n[s]);
    $("#empty").hidden = rows.size > 0;
  }

  // Durations of unfinished jobs and the retry countdown tick every second.
  setInterval(() => {
    for (const [id, j] of jobs) {
      if (!j.finished_at) {
        const tr = rows.get(id);
        if (tr) tr.cells[7].textContent = duration(j);
      }
    }
    showRetry();
  }, 1000);

  // ---- notifications ------------------------------------------------------

  function toast(n) {
    const box = $("#toasts");
    const t = el("div", "toast " + (n.severity || "info"));
    t.dataset.job = n.job_id || "";
    t.appendChild(el("b", "", n.title));
    t.appendChild(el("div", "", n.message));
    t.appendChild(el("small", "", "for " + n.user_id));
    box.appendChild(t);
    while (box.children.length > 5) box.firstChild.remove();
    setTimeout(() => t.remove(), 8000);
  }

  // ---- the form -----------------------------------------------------------

  const form = $("#submit");
  const result = $("#submit-result");

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const num = (k) => Number.parseInt(f.get(k), 10);
    const body = {
      user_id: f.get("user_id").trim(),
      project_id: f.get("project_id").trim(),
      telescope: f.get("telescope").trim(),
      instrument: f.get("instrument").trim(),
      job_name: f.get("job_name").trim(),
      queue: f.get("queue"),
      priority: num("priority"),
      resources: {
        cpu_cores: num("cpu_cores"), gpus: num("gpus"),
        memory_mb: num("memory_mb"), walltime_seconds: num("walltime_seconds"),
      },
    };
    for (const v of Object.values(body.resources)) if (Number.isNaN(v)) return showErrors({ error: "numbers only" });
    if (Number.isNaN(body.priority)) return showErrors({ error: "priority must be a number" });
    for (const i of form.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
    result.className = "";
    result.textContent = "submitting…";
    try {
      const r = await fetch("api/jobs", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      const data = await r.json().catch(() => ({ error: "HTTP " + r.status }));
      if (!r.ok) return showErrors(data);
      result.className = "ok";
      result.textContent = "Submitted " + data.job_id;
      mergeView(data);
      renderCounts();
    } catch (e) {
      showErrors({ error: "cannot reach the server" });
    }
  });

  function showErrors(data) {
    result.className = "error";
    const lines = [data.error || "failed"];
    for (const fe of data.fields || []) {
      lines.push(fe.field + ": " + fe.problem);
      const input = form.elements.namedItem(fe.field.split(".").pop());
      if (input) input.setAttribute("aria-invalid", "true");
    }
    result.textContent = lines.join("\n");
  }

  async function cancelJob(id, button) {
    button.disabled = true;
    try {
      const r = await fetch("api/jobs/" + encodeURIComponent(id) + "?reason=" + encodeURIComponent("cancelled from the dashboard"), {
        method: "DELETE", headers: { "X-User-ID": (new FormData(form).get("user_id") || "dashboard").trim() },
      });
      if (!r.ok && r.status !== 409) {
        const data = await r.json().catch(() => ({}));
        toast({ severity: "error", title: "Cannot cancel " + id, message: data.error || "HTTP " + r.status, user_id: "you" });
        button.disabled = false;
      }
    } catch (e) {
      button.disabled = false;
    }
  }

  connect();
})();
