// Taskline dashboard: plain JS, no build step. The line comes from one EventSource on
// GET /events (a snapshot, then `task` and `line` events); actions are fetch() calls with the
// bearer token; the workers and the host charts alone are refreshed on a timer (they are not
// task events).
// Every text from the API goes in through textContent, never as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "taskline.token";
  const USER_KEY = "taskline.user";
  const TERMINAL = new Set(["SUCCESS", "FAILURE", "CANCELLED"]);
  const RUNNING = new Set(["STARTED", "PROGRESS"]);
  const RETRYABLE = new Set(["FAILURE", "CANCELLED"]);
  // Kinds after which the event alone does not say enough (params, result, not_before…).
  const NEEDS_TASK = new Set([
    "created", "edited", "postponed", "released", "ended", "requeued", "retrying",
  ]);
  const RECENT_MAX = 20;
  const PROGRESS_SHOWN = new Set(["percent", "current", "total", "intermediate"]);
  const HOST_EVERY_MS = 2000;
  const HISTORY = 60; // samples per chart: two minutes at one every 2 s
  const EXPECTED_SHOWN = 50; // next tasks per line whose expected start is read
  const SVG = "http://www.w3.org/2000/svg";
  const HEALTH_EVERY_MS = 5000;
  const HEALTH_POINTS = 60; // samples per line and chart: five minutes at one every 5 s
  const HEALTH_PENDING_MAX = 1000; // ended tasks awaiting their full read, at most
  const BULK_KINDS = { cancel: "Cancel", retry: "Retry", delete: "Delete" };

  const state = {
    token: null,
    user: null,
    source: null,
    generation: 0, // bumped on every snapshot and sign-out: late answers of older ones are dropped
    tasks: new Map(),
    line: [],
    depth: 0,
    lines: [], // the lines' names (GET /lines), in the order of TASKLINE_LINES
    lineFilter: "", // the line shown, "" for every line
    byLine: new Map(), // line → {waiting, depth}, as its `line` events and GET /lines tell
    positions: new Map(), // a waiting task → its place in its own line
    expected: new Map(), // a running or waiting task → {expected_start, expected_end} (GET /lines)
    cancelling: new Set(),
    fetching: new Map(),
    clockOffset: null, // server clock minus ours, from the events' `at`
    retryMs: 1000,
    retryTimer: null,
    renderQueued: false,
    types: [],
    host: { timer: null, cpu: [], memory: [] },
    links: { flower_port: 5555, console_port: 9001 },
    view: { kind: "dashboard", id: null, reload: null },
    // The explorer's query: the cursors of the newer pages (to go back), and this page's.
    explorer: { query: null, cursor: null, newer: [], next: null, items: [], selected: new Set() },
    // Per line: a fixed number of samples of each figure, and what ended since the last one.
    health: { timer: null, lines: new Map(), pending: new Set() },
  };

  // ---- small DOM helpers ----------------------------------------------------------------

  const $ = (selector, root = document) => root.querySelector(selector);

  function h(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null) continue;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key in node && typeof value !== "string") node[key] = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function svg(tag, attrs = {}) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    return node;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function clip(text, max) {
    return text.length > max ? `${text.slice(0, max - 1)}…` : text;
  }

  function show(value) {
    if (value === null || value === undefined) return "";
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  // ---- formatting --------------------------------------------------------------------------

  function duration(ms) {
    if (!Number.isFinite(ms) || ms < 0) ms = 0;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(1)} s`;
    const pad = (n) => String(Math.floor(n)).padStart(2, "0");
    if (s < 3600) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${pad((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${pad((s % 86400) / 3600)} h`;
  }

  function clock(iso) {
    if (!iso) return "—";
    const date = new Date(iso);
    const today = new Date().toDateString() === date.toDateString();
    const time = date.toLocaleTimeString([], {
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
    return today ? time : `${date.toLocaleDateString()} ${time}`;
  }

  function serverNow() {
    return Date.now() + (state.clockOffset ?? 0);
  }

  function label(key) {
    const words = key.replaceAll("_", " ");
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  function shortId(id) {
    return id.slice(0, 8);
  }

  function taskHref(id) {
    return `#task/${encodeURIComponent(id)}`;
  }

  function paramsText(params) {
    return Object.entries(params || {})
      .filter(([key, value]) => !(key === "delay_seconds" && !value))
      .map(([key, value]) => `${key}=${clip(show(value), 40)}`)
      .join(" · ");
  }

  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i += 1;
    }
    return `${n.toFixed(n < 10 && i ? 1 : 0)} ${units[i]}`;
  }

  // A local datetime-local value (YYYY-MM-DDTHH:MM) for a moment.
  function localInput(ms) {
    const d = new Date(ms);
    const pad = (n) => String(n).padStart(2, "0");
    const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
    return `${day}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  // ---- the API -----------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message, lines = [], detail = null) {
      super(message);
      this.status = status;
      this.lines = lines;
      this.detail = detail;
    }
  }

  // The API's {"detail": …} as a message and, for a 422 list, one line per problem.
  function explain(status, data, response) {
    const detail = data && typeof data === "object" && "detail" in data ? data.detail : data;
    let message;
    let lines = [];
    if (Array.isArray(detail)) {
      lines = detail.map((item) => {
        const where = (item.loc || []).filter((part) => part !== "body").join(".");
        return where ? `${where}: ${item.msg}` : String(item.msg);
      });
      message = "The API refused the request:";
    } else if (detail && typeof detail === "object") {
      message = detail.message || JSON.stringify(detail);
      if (detail.task_id) message += ` (task ${detail.task_id})`;
    } else {
      message = detail ? String(detail) : `HTTP ${status}`;
    }
    const retry = response && response.headers.get("Retry-After");
    if (status === 429 && retry) message += ` Retry in ${retry} s.`;
    return new ApiError(status, message, lines, detail);
  }

  async function api(method, path, { json, form } = {}) {
    const headers = {};
    let body;
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    if (form) body = new URLSearchParams(form);
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    }
    let response;
    try {
      response = await fetch(path, { method, headers, body });
    } catch (err) {
      throw new ApiError(0, "The API cannot be reached.");
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (err) {
      data = text;
    }
    if (response.status === 401 && state.token && path !== "/auth/token") {
      signOut("Your session has ended: sign in again.", false);
    }
    if (!response.ok) throw explain(response.status, data, response);
    return data;
  }

  function showError(node, err) {
    node.replaceChildren();
    if (!err) return;
    node.append(h("span", { text: err.message || String(err) }));
    if (err.lines && err.lines.length) {
      node.append(h("ul", {}, ...err.lines.map((line) => h("li", { text: line }))));
    }
  }

  // ---- signing in and out ------------------------------------------------------------------

  async function signIn(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const button = $("button[type=submit]", form);
    const username = $("#username").value.trim();
    showError($("#signin-error"), null);
    button.disabled = true;
    try {
      state.token = null;
      const data = await api("POST", "/auth/token", {
        form: { username, password: $("#password").value },
      });
      sessionStorage.setItem(TOKEN_KEY, data.access_token);
      sessionStorage.setItem(USER_KEY, username);
      $("#password").value = "";
      start(data.access_token, username);
    } catch (err) {
      showError($("#signin-error"), err);
    } finally {
      button.disabled = false;
    }
  }

  function signOut(message, revoke = true) {
    const token = state.token;
    if (revoke && token) {
      // Best effort: the token is forgotten here whatever the answer.
      fetch("/auth/token", { method: "DELETE", headers: { Authorization: `Bearer ${token}` } })
        .catch(() => {});
    }
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(USER_KEY);
    closeSource();
    stopHost();
    stopHealth();
    state.token = null;
    state.user = null;
    state.generation += 1;
    state.tasks.clear();
    state.line = [];
    state.depth = 0;
    state.byLine.clear();
    state.cancelling.clear();
    delete document.body.dataset.role;
    setText($("#role"), "");
    for (const id of ["running", "waiting", "postponed", "recent"]) $(`#${id}`).replaceChildren();
    $("#dashboard").hidden = true;
    $("#explorer").hidden = true;
    $("#task-view").hidden = true;
    $("#found").replaceChildren();
    $("#task-body").replaceChildren();
    state.explorer.query = null;
    state.health.lines.clear();
    state.health.pending.clear();
    delete $("#dashboard").dataset.synced;
    $("#session").hidden = true;
    $("#signin").hidden = false;
    showError($("#signin-error"), message ? { message } : null);
    $("#username").focus();
  }

  // The role decides what the page offers: a viewer sees every task and no control that
  // changes one (body[data-role] in app.css).
  function loadRole() {
    const token = state.token;
    api("GET", "/auth/me").then(
      (me) => {
        if (token !== state.token) return; // signed out (or in again) meanwhile
        document.body.dataset.role = me.role;
        setText($("#role"), me.role === "viewer" ? "(viewer: read only)" : "");
      },
      () => {
        // The API decides anyway: offer the controls and let it refuse.
        if (token === state.token) document.body.dataset.role = "user";
      },
    );
  }

  function start(token, user) {
    state.token = token;
    state.user = user;
    setText($("#who"), user);
    loadRole();
    $("#signin").hidden = true;
    $("#session").hidden = false;
    route();
    connect();
    startHost();
    startHealth();
    if (!state.types.length) loadTypes();
  }

  // ---- the stream --------------------------------------------------------------------------

  function setConnection(kind, text) {
    const pill = $("#connection");
    pill.dataset.state = kind;
    setText(pill, text);
  }

  function closeSource() {
    clearTimeout(state.retryTimer);
    if (state.source) state.source.close();
    state.source = null;
  }

  function connect() {
    closeSource();
    const only = state.lineFilter ? `&line=${encodeURIComponent(state.lineFilter)}` : "";
    const source = new EventSource(
      `/events?access_token=${encodeURIComponent(state.token)}${only}`);
    state.source = source;
    setConnection("connecting", "connecting…");
    source.addEventListener("open", () => {
      state.retryMs = 1000;
      setConnection("live", "live");
    });
    source.addEventListener("snapshot", (e) => onSnapshot(JSON.parse(e.data)));
    source.addEventListener("task", (e) => onTask(JSON.parse(e.data)));
    source.addEventListener("line", (e) => onLine(JSON.parse(e.data)));
    source.addEventListener("error", () => {
      if (source !== state.source) return;
      if (source.readyState !== EventSource.CLOSED) {
        // The browser reconnects by itself with Last-Event-ID: nothing is missed.
        setConnection("reconnecting", "reconnecting…");
        return;
      }
      // Refused (expired token, API down): find out which, then start again with a snapshot.
      setConnection("offline", "offline");
      api("GET", "/tasks?limit=1").then(
        () => retry(),
        (err) => { if (err.status !== 401) retry(); },
      );
    });
  }

  function retry() {
    if (!state.token) return;
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(connect, state.retryMs);
    state.retryMs = Math.min(state.retryMs * 2, 15000);
  }

  function onSnapshot(data) {
    state.generation += 1;
    state.tasks.clear();
    state.fetching.clear();
    state.cancelling.clear();
    for (const group of ["running", "waiting", "postponed", "recent"]) {
      for (const task of data[group] || []) state.tasks.set(task.id, task);
    }
    state.line = (data.waiting || []).map((task) => task.id);
    state.depth = data.depth ?? state.line.length;
    state.byLine.clear();
    for (const task of data.waiting || []) {
      const of = state.byLine.get(task.line || "") || { waiting: [], depth: 0 };
      of.waiting.push(task.id);
      state.byLine.set(task.line || "", of);
    }
    $("#dashboard").dataset.synced = "1"; // the page shows the line now (tests wait for it)
    render();
    loadLines(state.generation);
  }

  // The lines and how many wait in each (GET /lines): the choice of line, and the depths
  // that each line's `line` events then keep up to date.
  async function loadLines(generation) {
    let answer;
    try {
      answer = await api("GET", "/lines?limit=1");
    } catch {
      return; // the choice stays as it was; the stream goes on
    }
    if (generation !== state.generation) return;
    const lines = answer.lines || [];
    state.lines = lines.map((line) => line.line);
    for (const line of lines) {
      const of = state.byLine.get(line.line) || { waiting: [], depth: 0 };
      if (!state.lineFilter || state.lineFilter === line.line) {
        of.depth = line.depth;
        state.byLine.set(line.line, of);
      }
    }
    const select = $("#line-filter");
    if (select.options.length !== lines.length + 1) {
      select.replaceChildren(h("option", { value: "", text: "all lines" }),
        ...state.lines.map((name) => h("option", { value: name, text: name })));
    }
    select.value = state.lineFilter;
    $("#line-choice").hidden = state.lines.length < 2;
    const lineFilter = $("#filter-line");
    if (lineFilter.options.length !== lines.length + 1) {
      const chosen = lineFilter.value;
      lineFilter.replaceChildren(h("option", { value: "", text: "any line" }),
        ...state.lines.map((name) => h("option", { value: name, text: name })));
      lineFilter.value = chosen;
    }
    scheduleRender();
  }

  function chooseLine() {
    state.lineFilter = $("#line-filter").value;
    state.byLine.clear();
    connect();
    refreshWorkers();
  }

  // What an event says about a task, applied to our copy of it.
  function apply(task, event) {
    if (event.state) task.state = event.state;
    switch (event.kind) {
      case "progress":
        task.progress = event.progress;
        break;
      case "started":
        task.started_at = event.at;
        task.finished_at = null;
        task.progress = null;
        task.error = null;
        if (event.attempts) task.attempts = event.attempts;
        break;
      case "requeued":
      case "retrying":
        task.started_at = null;
        task.progress = null;
        break;
      case "ended":
        task.finished_at = event.at;
        if (event.error) task.error = event.error;
        break;
      case "retried":
        task.retried_by = event.by;
        break;
      default:
        break;
    }
  }

  function onTask(event) {
    if (event.at) {
      const offset = Date.parse(event.at) - Date.now();
      if (state.clockOffset === null || offset > state.clockOffset) state.clockOffset = offset;
    }
    const id = event.id;
    const pending = state.fetching.get(id);
    if (pending) pending.events.push(event);
    if (event.kind === "deleted") {
      state.tasks.delete(id);
      state.line = state.line.filter((other) => other !== id);
      state.cancelling.delete(id);
    } else {
      if (event.kind === "ended") noteEnded(id);
      if (state.view.kind === "task" && state.view.id === id) reloadTaskSoon();
      if (event.kind === "cancelling") state.cancelling.add(id);
      if (event.kind === "ended" || event.kind === "requeued") state.cancelling.delete(id);
      const task = state.tasks.get(id);
      if (task) apply(task, event);
      if (!task || NEEDS_TASK.has(event.kind)) refresh(id);
    }
    scheduleRender();
  }

  function onLine(data) {
    if (data.line !== undefined) {
      // One line's new order: the others stand as they were.
      state.byLine.set(data.line, { waiting: data.waiting || [], depth: data.depth ?? 0 });
      const order = [...state.lines, ...[...state.byLine.keys()].filter((l) => !state.lines.includes(l))];
      state.line = order.flatMap((line) => (state.byLine.get(line) || { waiting: [] }).waiting);
      state.depth = [...state.byLine.values()].reduce((sum, of) => sum + of.depth, 0);
    } else {
      state.line = data.waiting || [];
      state.depth = data.depth ?? state.line.length;
    }
    for (const id of state.line) if (!state.tasks.has(id)) refresh(id);
    scheduleRender();
  }

  // The full task after an event that does not carry it. Events that come while the request
  // is out are applied again to its answer, which may predate them; another event that needs
  // the full task asks again once this answer is in.
  function refresh(id) {
    const pending = state.fetching.get(id);
    if (pending) {
      pending.again = true;
      return;
    }
    const entry = { events: [], again: false, generation: state.generation };
    state.fetching.set(id, entry);
    api("GET", `/tasks/${encodeURIComponent(id)}`)
      .then(
        (task) => {
          if (entry.generation !== state.generation) return;
          if (entry.events.some((event) => event.kind === "deleted")) return;
          for (const event of entry.events) apply(task, event);
          state.tasks.set(id, task);
          measureEnded(task);
        },
        (err) => {
          if (entry.generation === state.generation && err.status === 404) {
            state.tasks.delete(id);
          }
        },
      )
      .finally(() => {
        if (state.fetching.get(id) === entry) state.fetching.delete(id);
        if (entry.again && entry.generation === state.generation) refresh(id);
        scheduleRender();
      });
  }

  // ---- rendering ---------------------------------------------------------------------------

  function scheduleRender() {
    if (state.renderQueued) return;
    state.renderQueued = true;
    requestAnimationFrame(() => {
      state.renderQueued = false;
      render();
    });
  }

  function byTime(field, descending = false) {
    return (a, b) => {
      const x = a[field] || "";
      const y = b[field] || "";
      if (x === y) return 0;
      return (x < y ? -1 : 1) * (descending ? -1 : 1);
    };
  }

  function render() {
    if (!state.token) return;
    const all = [...state.tasks.values()];
    const running = all.filter((t) => RUNNING.has(t.state)).sort(byTime("started_at"));
    const waiting = state.line
      .map((id) => state.tasks.get(id))
      .filter((t) => t && t.state === "QUEUED");
    // Each task's place in its own line.
    const counted = new Map();
    state.positions = new Map(waiting.map((t) => {
      const n = (counted.get(t.line || "") || 0) + 1;
      counted.set(t.line || "", n);
      return [t.id, n];
    }));
    const postponed = all.filter((t) => t.state === "SCHEDULED").sort(byTime("not_before"));
    const finished = all.filter((t) => TERMINAL.has(t.state)).sort(byTime("finished_at", true));
    // Keep only what is shown: the page may stay open for days.
    for (const task of finished.slice(RECENT_MAX)) state.tasks.delete(task.id);
    const recent = finished.slice(0, RECENT_MAX);

    sync($("#running"), running, buildRunning, updateRunning);
    sync($("#waiting"), waiting, (t) => buildRow(t, "waiting"), updateRow);
    sync($("#postponed"), postponed, (t) => buildRow(t, "postponed"), updateRow);
    sync($("#recent"), recent, (t) => buildRow(t, "recent"), updateRow);
    $("#running-empty").hidden = running.length > 0;
    $("#waiting-empty").hidden = waiting.length > 0;
    $("#postponed-empty").hidden = postponed.length > 0;
    $("#recent-empty").hidden = recent.length > 0;
    setText($("#depth"), String(state.depth));
    setText($("#postponed-count"), String(postponed.length));
    const more = state.depth - waiting.length;
    $("#waiting-more").hidden = more <= 0;
    setText($("#waiting-more"), `… and ${more} more waiting.`);
    tick();
  }

  // Keyed update of a list: rows are kept (an open editor, a typed value survive), moved
  // into order, added and removed.
  function sync(container, tasks, build, update) {
    const rows = new Map();
    for (const row of container.children) rows.set(row.dataset.taskId, row);
    let previous = null;
    tasks.forEach((task, index) => {
      let row = rows.get(task.id);
      if (row) rows.delete(task.id);
      else row = build(task);
      update(row, task, index);
      const expected = previous ? previous.nextElementSibling : container.firstElementChild;
      if (expected !== row) container.insertBefore(row, expected);
      previous = row;
    });
    for (const row of rows.values()) row.remove();
  }

  function badge(stateName) {
    return h("span", { className: "badge", dataset: { state: stateName }, text: stateName });
  }

  function head(task) {
    return h(
      "div",
      { className: "task-head" },
      h("a", { className: "name", href: taskHref(task.id), text: task.name }),
      h("code", { className: "id", title: task.id, text: shortId(task.id) }),
      badge(task.state),
      h("span", { className: "owner" }),
      h("span", { className: "prio" }),
      h("span", { className: "line" }),
    );
  }

  function updateHead(row, task) {
    const stateBadge = $(".badge", row);
    const cancelling = state.cancelling.has(task.id) && !TERMINAL.has(task.state);
    const shown = cancelling ? "CANCELLING" : task.state;
    setText(stateBadge, shown);
    stateBadge.dataset.state = shown;
    setText($(".owner", row), task.owner ? `by ${task.owner}` : "");
    setText($(".prio", row), `priority ${task.priority}`);
    setText($(".line", row), state.lines.length > 1 && task.line ? `line ${task.line}` : "");
  }

  function cancelButton() {
    return h("button", {
      type: "button", className: "danger", dataset: { act: "cancel" }, text: "Cancel",
    });
  }

  function buildRunning(task) {
    const article = h(
      "article",
      { className: "running-task", dataset: { taskId: task.id } },
      head(task),
      h("p", { className: "params" }),
      h(
        "div",
        {
          className: "bar",
          role: "progressbar",
          "aria-label": `Progress of ${task.name} ${shortId(task.id)}`,
          "aria-valuemin": "0",
          "aria-valuemax": "100",
          "aria-valuenow": "0",
        },
        h("div", { className: "fill" }),
      ),
      h(
        "dl",
        { className: "facts" },
        h("div", {}, h("dt", { text: "Progress" }), h("dd", { className: "percent" })),
        h("div", {}, h("dt", { text: "Elapsed" }), h("dd", { className: "elapsed" })),
        h("div", {}, h("dt", { text: "Expected end" }), h("dd", { className: "eta" })),
        h("div", {}, h("dt", { text: "Attempt" }), h("dd", { className: "attempts" })),
        h("div", {}, h("dt", { text: "Worker" }), h("dd", { className: "worker" })),
        h("div", { className: "wide" }, h("dt", { text: "Intermediate value" }),
          h("dd", { className: "intermediate" })),
      ),
      h("dl", { className: "facts extra" }),
      h("div", { className: "actions writes" }, cancelButton()),
      h("div", { className: "row-error error", role: "alert" }),
    );
    return article;
  }

  function updateRunning(article, task) {
    updateHead(article, task);
    setText($(".params", article), paramsText(task.params) || "no parameters");
    const progress = task.progress || {};
    const percent = Math.max(0, Math.min(100, Number(progress.percent) || 0));
    const bar = $(".bar", article);
    bar.setAttribute("aria-valuenow", percent.toFixed(1));
    $(".fill", bar).style.width = `${percent}%`;
    setText($(".percent", article), `${percent.toFixed(1)} %`);
    const value = show(progress.intermediate);
    const intermediate = $(".intermediate", article);
    setText(intermediate, value ? clip(value, 120) : "—");
    intermediate.title = clip(value, 2000);
    // Whatever else the task reports (e.g. the digits a series has made certain), as it comes.
    const extra = Object.entries(progress).filter(([key]) => !PROGRESS_SHOWN.has(key));
    $(".extra", article).replaceChildren(...extra.map(([key, v]) => h("div", {},
      h("dt", { text: label(key) }), h("dd", { text: clip(show(v), 60) }))));
    setText($(".attempts", article), String(task.attempts || 1));
    setText($(".worker", article), task.worker || "—");
    article.dataset.started = task.started_at || "";
    const expected = state.expected.get(task.id);
    setText($(".eta", article), expected && expected.expected_end ? `~${clock(expected.expected_end)}` : "—");
    const cancel = $("[data-act=cancel]", article);
    const cancelling = state.cancelling.has(task.id);
    cancel.disabled = cancelling || cancel.dataset.busy === "1";
    setText(cancel, cancelling ? "Cancelling…" : "Cancel");
  }

  function editor(task) {
    const soon = localInput(Date.now() + 3600 * 1000);
    return h(
      "details",
      { className: "edit writes" },
      h("summary", { text: "Postpone or change priority" }),
      h(
        "form",
        { className: "inline", dataset: { act: "postpone" } },
        h("label", {}, "Postpone until ",
          h("input", { type: "datetime-local", name: "when", required: "", value: soon })),
        h("button", { type: "submit", text: "Postpone" }),
      ),
      h(
        "form",
        { className: "inline", dataset: { act: "priority" } },
        h("label", {}, "Priority ",
          h("input", { type: "number", name: "priority", min: "0", max: "9", step: "1",
            required: "", value: String(task.priority) })),
        h("button", { type: "submit", text: "Set priority" }),
      ),
    );
  }

  function buildRow(task, kind) {
    const buttons = [];
    if (kind === "postponed") {
      buttons.push(h("button", { type: "button", dataset: { act: "release" }, text: "Run now" }));
    }
    if (kind !== "recent") {
      buttons.push(cancelButton());
    } else {
      // Shown while the task may be retried: it ended FAILURE or CANCELLED, and once only.
      buttons.push(h("button", { type: "button", dataset: { act: "retry" }, text: "Retry" }));
    }
    buttons.push(h("button", { type: "button", dataset: { act: "delete" }, text: "Delete" }));
    const row = h(
      "li",
      { className: `task ${kind}`, dataset: { taskId: task.id, kind } },
      kind === "waiting" ? h("span", { className: "pos", title: "Position in line" }) : null,
      h(
        "div",
        { className: "task-main" },
        head(task),
        h("p", { className: "params" }),
        h("p", { className: "meta" }),
        kind === "recent" ? h("p", { className: "outcome" }) : null,
      ),
      h("div", { className: "actions writes" }, ...buttons),
      kind === "recent" ? null : editor(task),
      h("div", { className: "row-error error", role: "alert" }),
    );
    return row;
  }

  function updateRow(row, task, index) {
    updateHead(row, task);
    const kind = row.dataset.kind;
    setText($(".params", row), paramsText(task.params) || "no parameters");
    const pos = $(".pos", row);
    if (pos) setText(pos, `#${(state.positions && state.positions.get(task.id)) || index + 1}`);
    const meta = $(".meta", row);
    if (kind === "waiting") {
      const expected = state.expected.get(task.id);
      const eta = expected && expected.expected_start
        ? ` · starts ~${clock(expected.expected_start)}, ends ~${clock(expected.expected_end)}`
        : "";
      setText(meta, `queued ${clock(task.queued_at)}${eta}`);
    } else if (kind === "postponed") {
      row.dataset.notBefore = task.not_before || "";
      meta.dataset.at = task.not_before || "";
    } else {
      const ran = task.started_at && task.finished_at
        ? duration(Date.parse(task.finished_at) - Date.parse(task.started_at))
        : "never ran";
      const retried = task.retried_by ? ` · retried as ${shortId(task.retried_by)}` : "";
      setText(meta, `ended ${clock(task.finished_at)} · ${ran}${retried}`);
      $("[data-act=retry]", row).hidden = !RETRYABLE.has(task.state) || Boolean(task.retried_by);
      const outcome = $(".outcome", row);
      outcome.dataset.state = task.state;
      if (task.error) {
        setText(outcome, `${task.error.type}: ${clip(task.error.message || "", 200)}`);
        outcome.className = "outcome error-text";
      } else {
        const result = show(task.result);
        setText(outcome, result ? clip(result, 160) : "");
        outcome.className = "outcome result";
        outcome.title = clip(result, 2000);
      }
    }
    const priority = $("input[name=priority]", row);
    if (priority && row.dataset.priority !== String(task.priority)) {
      row.dataset.priority = String(task.priority);
      if (document.activeElement !== priority) priority.value = String(task.priority);
    }
  }

  // Once a second is enough for clocks; the bar itself moves with the events.
  function tick() {
    const now = serverNow();
    for (const article of document.querySelectorAll(".running-task")) {
      const started = Date.parse(article.dataset.started || "");
      setText($(".elapsed", article), Number.isFinite(started) ? duration(now - started) : "—");
    }
    for (const meta of document.querySelectorAll("#postponed .meta")) {
      const at = Date.parse(meta.dataset.at || "");
      if (!Number.isFinite(at)) continue;
      const left = at - now;
      const due = left > 0 ? `in ${duration(left)}` : "due";
      setText(meta, `until ${clock(meta.dataset.at)} · ${due}`);
    }
  }

  // ---- actions -----------------------------------------------------------------------------

  async function act(row, button, action) {
    const id = row.dataset.taskId;
    const error = $(".row-error", row);
    showError(error, null);
    button.disabled = true;
    button.dataset.busy = "1";
    try {
      await action(`/tasks/${encodeURIComponent(id)}`);
    } catch (err) {
      showError(error, err);
    } finally {
      button.dataset.busy = "";
      button.disabled = false;
      scheduleRender();
    }
  }

  function onClick(event) {
    const button = event.target.closest("button[data-act]");
    if (!button) return;
    const row = button.closest("[data-task-id]");
    if (!row) return;
    const kind = button.dataset.act;
    if (kind === "cancel") {
      act(row, button, (url) => api("POST", `${url}/cancel`));
    } else if (kind === "retry") {
      act(row, button, async (url) => {
        const retry = await api("POST", `${url}/retry`);
        const task = state.tasks.get(row.dataset.taskId);
        if (task) task.retried_by = retry.id;
      });
    } else if (kind === "release") {
      act(row, button, (url) => api("PATCH", url, { json: { not_before: null } }));
    } else if (kind === "delete") {
      // Two clicks: deleting forgets the task and its result for good.
      if (button.dataset.armed !== "1") {
        button.dataset.armed = "1";
        setText(button, "Confirm delete");
        setTimeout(() => {
          button.dataset.armed = "";
          setText(button, "Delete");
        }, 4000);
        return;
      }
      act(row, button, (url) => api("DELETE", url));
    }
  }

  function onRowSubmit(event) {
    const form = event.target.closest("form[data-act]");
    if (!form) return;
    event.preventDefault();
    const row = form.closest("[data-task-id]");
    const button = $("button[type=submit]", form);
    if (form.dataset.act === "postpone") {
      const when = new Date(form.elements.when.value);
      act(row, button, (url) => api("PATCH", url, { json: { not_before: when.toISOString() } }));
    } else if (form.dataset.act === "priority") {
      const priority = Number(form.elements.priority.value);
      act(row, button, (url) => api("PATCH", url, { json: { priority } }));
    }
  }

  // ---- the submit form, from the catalogue ---------------------------------------------------

  async function loadTypes() {
    try {
      state.types = await api("GET", "/task-types");
    } catch (err) {
      showError($("#submit-error"), err);
      return;
    }
    const select = $("#task-name");
    select.replaceChildren(...state.types.map((t) => h("option", { value: t.name, text: t.name })));
    $("#filter-name").replaceChildren(
      ...state.types.map((t) => h("option", { value: t.name, text: t.name })));
    buildParams();
  }

  function paramField(name, schema, required, example) {
    const id = `param-${name}`;
    const label = h("label", { for: id, text: schema.title || name });
    if (required) label.append(h("span", { className: "req", "aria-hidden": "true", text: " *" }));
    let input;
    const common = { id, name, dataset: { param: name, type: schema.type || "json" } };
    if (Array.isArray(schema.enum)) {
      const options = schema.enum.map((v) => h("option", { value: String(v), text: String(v) }));
      input = h("select", common, ...options);
      if (schema.default !== undefined) input.value = String(schema.default);
    } else if (schema.type === "integer" || schema.type === "number") {
      const step = schema.type === "integer" ? "1" : "any";
      input = h("input", { ...common, type: "number", step });
      if (schema.minimum !== undefined) input.min = String(schema.minimum);
      if (schema.maximum !== undefined) input.max = String(schema.maximum);
      if (schema.default !== undefined) input.value = String(schema.default);
    } else if (schema.type === "boolean") {
      input = h("input", { ...common, type: "checkbox" });
      input.checked = Boolean(schema.default);
    } else if (schema.type === "string") {
      const long = !schema.pattern && (schema.maxLength === undefined || schema.maxLength > 200);
      input = long
        ? h("textarea", { ...common, rows: "2" })
        : h("input", { ...common, type: "text" });
      if (schema.maxLength !== undefined) input.maxLength = schema.maxLength;
      if (schema.minLength !== undefined) input.minLength = schema.minLength;
      if (schema.pattern) input.pattern = schema.pattern.replace(/^\^/, "").replace(/\$$/, "");
      if (schema.default !== undefined) input.value = String(schema.default);
    } else {
      input = h("input", { ...common, type: "text", placeholder: "JSON" });
      if (schema.default !== undefined) input.value = JSON.stringify(schema.default);
    }
    input.required = required;
    if (example !== undefined && input.tagName !== "SELECT" && input.type !== "checkbox") {
      input.placeholder = `e.g. ${show(example)}`;
    }
    const field = h("div", { className: "field" }, label, input);
    if (schema.description) {
      const hint = h("p", { id: `${id}-hint`, className: "hint", text: schema.description });
      input.setAttribute("aria-describedby", hint.id);
      field.append(hint);
    }
    return field;
  }

  function buildParams() {
    const type = state.types.find((t) => t.name === $("#task-name").value);
    const fieldset = $("#params");
    fieldset.replaceChildren(h("legend", { text: "Parameters" }));
    if (!type) return;
    setText($("#task-description"), type.description);
    const schema = type.params_schema || {};
    const required = new Set(schema.required || []);
    for (const [name, property] of Object.entries(schema.properties || {})) {
      // delay_seconds is every task's: the scheduling fieldset has it once.
      if (name === "delay_seconds") continue;
      const example = (schema.examples || [])[0]?.[name];
      fieldset.append(paramField(name, property, required.has(name), example));
    }
  }

  function collect() {
    const params = {};
    for (const input of $("#params").querySelectorAll("[data-param]")) {
      const name = input.dataset.param;
      const type = input.dataset.type;
      if (type === "boolean") {
        params[name] = input.checked;
      } else if (input.value === "") {
        continue;
      } else if (type === "integer" || type === "number") {
        params[name] = Number(input.value);
      } else if (type === "json") {
        try {
          params[name] = JSON.parse(input.value);
        } catch (err) {
          throw new ApiError(0, `${name}: not valid JSON`);
        }
      } else {
        params[name] = input.value;
      }
    }
    const body = { name: $("#task-name").value, params, priority: Number($("#priority").value) };
    if ($("#delay").value !== "") body.delay_seconds = Number($("#delay").value);
    if ($("#not-before").value) body.not_before = new Date($("#not-before").value).toISOString();
    return body;
  }

  function markInvalid(err) {
    for (const input of $("#submit-form").querySelectorAll("[aria-invalid]")) {
      input.removeAttribute("aria-invalid");
    }
    if (!err || !Array.isArray(err.detail)) return;
    for (const item of err.detail) {
      const loc = (item.loc || []).filter((part) => part !== "body");
      let input = null;
      if (loc[0] === "params" && loc.length > 1) input = $(`#param-${CSS.escape(String(loc[1]))}`);
      else if (loc[0] === "priority") input = $("#priority");
      else if (loc[0] === "delay_seconds") input = $("#delay");
      else if (loc[0] === "not_before") input = $("#not-before");
      if (input) input.setAttribute("aria-invalid", "true");
    }
  }

  async function submitTask(event) {
    event.preventDefault();
    const button = $("#submit-button");
    const status = $("#submit-status");
    showError($("#submit-error"), null);
    markInvalid(null);
    setText(status, "");
    status.dataset.taskId = "";
    button.disabled = true;
    try {
      const task = await api("POST", "/tasks", { json: collect() });
      status.dataset.taskId = task.id;
      setText(status, `Submitted ${task.name} ${shortId(task.id)} (${task.state}).`);
    } catch (err) {
      showError($("#submit-error"), err);
      markInvalid(err);
    } finally {
      button.disabled = false;
    }
  }

  // ---- host charts (GET /cpu/percent, /memory, /partitions/usage every 2 s) ------------------

  // Values from 0 (bottom) to `top` (a percentage by default; the line-health charts pass
  // their own largest sample).
  function sparkline(values, label, top = 100) {
    const width = 120;
    const height = 32;
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`, class: "spark", role: "img", "aria-label": label,
      preserveAspectRatio: "none",
    });
    // The samples so far span the width (a single one is a flat line); 0-100 % bottom to top.
    const series = values.length === 1 ? [values[0], values[0]] : values;
    const step = width / Math.max(1, series.length - 1);
    const y = (v) => (height - 1 - (Math.min(v, top) / (top || 1)) * (height - 2)).toFixed(1);
    const points = series.map((v, i) => `${(i * step).toFixed(1)},${y(v)}`).join(" ");
    for (const level of [0.25, 0.5, 0.75].map((part) => part * top)) {
      chart.append(svg("line", { class: "grid", x1: 0, x2: width, y1: y(level), y2: y(level) }));
    }
    if (values.length) {
      const area = `0,${height} ${points} ${width},${height}`;
      chart.append(svg("polygon", { class: "area", points: area }));
      chart.append(svg("polyline", { class: "line", points }));
    }
    return chart;
  }

  function push(history, value) {
    history.push(Math.max(0, Math.min(100, Number(value) || 0)));
    if (history.length > HISTORY) history.shift();
  }

  function chartRow(title, value, history) {
    return h("div", { className: "chart" },
      h("span", { className: "chart-label", text: title }),
      h("span", { className: "chart-value", text: value }),
      sparkline(history, `${title}: ${value}, last two minutes`));
  }

  async function refreshHost() {
    const get = async (path) => {
      const response = await fetch(path);
      if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
      return response.json();
    };
    const percent = (value) => `${Number(value || 0).toFixed(0)} %`;
    try {
      const [cpu, memory, disks] = await Promise.all([
        get("/cpu/percent"), get("/memory"), get("/partitions/usage"),
      ]);
      if (!state.token) return;
      const cores = cpu.per_core || [];
      while (state.host.cpu.length < cores.length) state.host.cpu.push([]);
      cores.forEach((value, i) => push(state.host.cpu[i], value));
      $("#cpu").replaceChildren(
        ...cores.map((value, i) => chartRow(`core ${i}`, percent(value), state.host.cpu[i])),
      );
      const ram = memory.virtual || {};
      push(state.host.memory, ram.percent);
      const swap = memory.swap || {};
      $("#memory").replaceChildren(
        chartRow(
          "RAM",
          `${percent(ram.percent)} · ${bytes(ram.used || 0)} of ${bytes(ram.total || 0)}`,
          state.host.memory,
        ),
        h("p", {
          className: "hint", text: `swap ${percent(swap.percent)} of ${bytes(swap.total || 0)}`,
        }),
      );
      $("#disks").replaceChildren(...disks.slice(0, 8).map((d) => {
        const fill = h("div", { className: "fill" });
        fill.style.width = `${Math.min(100, Number(d.percent) || 0)}%`;
        return h("div", { className: "disk" },
          h("span", {
            className: "chart-label", text: d.mountpoint, title: `${d.device} (${d.fstype})`,
          }),
          h("span", {
            className: "chart-value",
            text: `${percent(d.percent)} · ${bytes(d.used)} of ${bytes(d.total)}`,
          }),
          h("div", { className: "meter", "aria-hidden": "true" }, fill));
      }));
      showError($("#host-error"), null);
    } catch (err) {
      showError($("#host-error"), { message: `Host statistics unavailable: ${err.message}` });
    }
  }

  // ---- workers (GET /workers, with the host charts) -------------------------------------------

  function meter(title, value) {
    const fill = h("div", { className: "fill" });
    fill.style.width = `${Math.min(100, Math.max(0, Number(value) || 0))}%`;
    return h("div", { className: "disk" },
      h("span", { className: "chart-label", text: title }),
      h("span", { className: "chart-value", text: `${Number(value || 0).toFixed(0)} %` }),
      h("div", { className: "meter", "aria-hidden": "true" }, fill));
  }

  function buildWorker(worker) {
    const role = worker.active ? "active" : "standby";
    const beat = Date.parse(worker.last_heartbeat);
    const ago = Number.isFinite(beat) ? duration(serverNow() - beat) : "?";
    const task = worker.task_id
      ? h("span", {}, h("span", { text: "running " }),
        h("code", { className: "id", title: worker.task_id, text: shortId(worker.task_id) }))
      : h("span", { text: worker.active ? "idle" : "waiting to take over" });
    return h("li", { className: "worker", dataset: { node: worker.node, role } },
      h("div", { className: "task-head" },
        h("span", { className: "badge", dataset: { role }, text: role }),
        h("strong", { className: "node", text: worker.node })),
      h("p", { className: "hint",
        text: `${worker.line ? `line ${worker.line} · ` : ""}${worker.queue} · ${worker.host} · pid ${worker.pid}` }),
      h("p", { className: "worker-task" }, task,
        h("span", { className: "hint", text: ` · heartbeat ${ago} ago` })),
      meter("CPU", worker.cpu_percent),
      meter("memory", worker.memory && worker.memory.percent),
      meter(`disk ${(worker.disk && worker.disk.path) || ""}`, worker.disk && worker.disk.percent));
  }

  async function refreshWorkers() {
    try {
      const only = state.lineFilter ? `?line=${encodeURIComponent(state.lineFilter)}` : "";
      const answer = await api("GET", `/workers${only}`);
      if (!state.token) return;
      const workers = answer.workers || [];
      $("#workers").replaceChildren(...workers.map(buildWorker));
      setText($("#workers-count"), String(workers.length));
      $("#workers-empty").hidden = workers.length > 0;
      showError($("#workers-error"), null);
    } catch (err) {
      showError($("#workers-error"), { message: `Workers unavailable: ${err.message}` });
    }
  }

  // When the running and next tasks of each line should start and end (README "How long
  // until mine runs?"): read with the host's figures, not on every event.
  async function refreshExpected() {
    try {
      const answer = await api("GET", `/lines?limit=${EXPECTED_SHOWN}`);
      if (!state.token) return;
      state.expected = new Map();
      for (const line of answer.lines || []) {
        for (const e of line.expected || []) state.expected.set(e.id, e);
      }
      scheduleRender();
    } catch (err) {
      // The rows go on without their expected times until the next read.
    }
  }

  function startHost() {
    stopHost();
    const loop = () => {
      if (!document.hidden) {
        refreshHost();
        refreshWorkers();
        refreshExpected();
      }
      state.host.timer = setTimeout(loop, HOST_EVERY_MS);
    };
    loop();
  }

  function stopHost() {
    clearTimeout(state.host.timer);
    state.host.timer = null;
  }

  // ---- views: the dashboard, the explorer (#explore), a task's page (#task/<id>) ------------

  function route() {
    if (!state.token) return;
    const hash = location.hash;
    const view = state.view;
    if (hash.startsWith("#task/")) {
      view.kind = "task";
      view.id = decodeURIComponent(hash.slice("#task/".length));
    } else {
      view.kind = hash === "#explore" ? "explore" : "dashboard";
      view.id = null;
    }
    $("#dashboard").hidden = view.kind !== "dashboard";
    $("#explorer").hidden = view.kind !== "explore";
    $("#task-view").hidden = view.kind !== "task";
    for (const [id, kind] of [["#nav-dashboard", "dashboard"], ["#nav-explore", "explore"]]) {
      if (view.kind === kind) $(id).setAttribute("aria-current", "page");
      else $(id).removeAttribute("aria-current");
    }
    if (view.kind === "explore") {
      if (!state.explorer.query) search();
      renderHealth();
    } else if (view.kind === "task") {
      loadTaskPage(view.id, true);
    }
  }

  // ---- the explorer: GET /tasks with the form's filters, a page at a time -------------------

  // Local datetime-local values as the API's ISO-8601 UTC.
  function isoOf(value) {
    const ms = Date.parse(value);
    return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
  }

  // The one place the filter form becomes a query: every filter, repeated for a multiple
  // choice (state=…&state=…). Filters the API does not know yet it ignores.
  function filterParams(form) {
    const params = new URLSearchParams();
    for (const box of form.querySelectorAll("input[name=state]:checked")) {
      params.append("state", box.value);
    }
    for (const option of form.elements.name.selectedOptions) params.append("name", option.value);
    const text = (name) => form.elements[name].value.trim();
    if (text("line")) params.set("line", text("line"));
    if (document.body.dataset.role === "admin" && text("owner")) {
      params.set("owner", text("owner"));
    }
    if (text("id_prefix")) params.set("id_prefix", text("id_prefix").toLowerCase());
    for (const name of ["created_after", "created_before", "finished_after", "finished_before"]) {
      const iso = isoOf(form.elements[name].value);
      if (iso) params.set(name, iso);
    }
    params.set("limit", form.elements.limit.value || "25");
    return params;
  }

  function onFilter(event) {
    event.preventDefault();
    search();
  }

  // A new query: from the newest page.
  function search() {
    const ex = state.explorer;
    ex.query = filterParams($("#filter-form"));
    ex.cursor = null;
    ex.newer = [];
    loadFound();
  }

  function turnPage(step) {
    const ex = state.explorer;
    if (step > 0 && ex.next) {
      ex.newer.push(ex.cursor);
      ex.cursor = ex.next;
    } else if (step < 0 && ex.newer.length) {
      ex.cursor = ex.newer.pop();
    } else {
      return;
    }
    loadFound();
  }

  async function loadFound() {
    const ex = state.explorer;
    const params = new URLSearchParams(ex.query);
    if (ex.cursor) params.set("cursor", ex.cursor);
    const asked = params.toString();
    ex.asked = asked;
    showError($("#filter-error"), null);
    $("#explorer").dataset.loading = "1";
    let page;
    try {
      page = await api("GET", `/tasks?${asked}`);
    } catch (err) {
      if (ex.asked === asked) {
        showError($("#filter-error"), err);
        delete $("#explorer").dataset.loading;
      }
      return;
    }
    if (ex.asked !== asked || !state.token) return;
    ex.items = page.items || [];
    ex.next = page.next_cursor;
    ex.selected.clear();
    renderFound();
    delete $("#explorer").dataset.loading;
  }

  function renderFound() {
    const ex = state.explorer;
    $("#found").replaceChildren(...ex.items.map(foundRow));
    $("#found-empty").hidden = ex.items.length > 0;
    setText($("#found-count"), String(ex.items.length));
    $("#page-newer").disabled = ex.newer.length === 0;
    $("#page-older").disabled = !ex.next;
    setText($("#page-number"), `page ${ex.newer.length + 1}`);
    renderSelection();
  }

  function foundRow(task) {
    const when = task.finished_at
      ? `ended ${clock(task.finished_at)}`
      : task.started_at ? `started ${clock(task.started_at)}` : `queued ${clock(task.queued_at)}`;
    const tag = `${task.name} ${shortId(task.id)}`;
    return h("li", { className: "found-row", dataset: { foundId: task.id, state: task.state } },
      h("input", {
        type: "checkbox", className: "pick writes", value: task.id, "aria-label": `Select ${tag}`,
      }),
      h("div", { className: "task-main" },
        h("div", { className: "task-head" },
          h("a", { className: "name", href: taskHref(task.id), text: task.name }),
          h("code", { className: "id", title: task.id, text: shortId(task.id) }),
          badge(task.state),
          h("span", { className: "owner", text: task.owner ? `by ${task.owner}` : "" }),
          h("span", { className: "line", text: task.line ? `line ${task.line}` : "" })),
        h("p", { className: "params", text: paramsText(task.params) || "no parameters" }),
        h("p", { className: "meta", text: when })));
  }

  function renderSelection() {
    const ex = state.explorer;
    const count = ex.selected.size;
    setText($("#selected-count"), `${count} selected`);
    for (const button of document.querySelectorAll("[data-bulk]")) {
      button.disabled = count === 0 || button.dataset.busy === "1";
    }
    const all = $("#select-page");
    all.checked = count > 0 && count === ex.items.length;
    all.indeterminate = count > 0 && count < ex.items.length;
    for (const box of document.querySelectorAll("#found .pick")) {
      box.checked = ex.selected.has(box.value);
    }
  }

  function onSelect(event) {
    const box = event.target.closest(".pick");
    if (!box) return;
    if (box.checked) state.explorer.selected.add(box.value);
    else state.explorer.selected.delete(box.value);
    renderSelection();
  }

  function selectPage() {
    const ex = state.explorer;
    if ($("#select-page").checked) for (const task of ex.items) ex.selected.add(task.id);
    else ex.selected.clear();
    renderSelection();
  }

  // POST /tasks/bulk/{cancel,retry,delete} with {"ids": […]}: one result per task, shown.
  async function onBulk(event) {
    const button = event.currentTarget;
    const kind = button.dataset.bulk;
    const ids = [...state.explorer.selected];
    if (!ids.length) return;
    if (kind === "delete" && button.dataset.armed !== "1") {
      button.dataset.armed = "1";
      setText(button, `Confirm delete of ${ids.length}`);
      setTimeout(() => {
        button.dataset.armed = "";
        setText(button, "Delete selected");
      }, 4000);
      return;
    }
    button.dataset.armed = "";
    setText(button, `${BULK_KINDS[kind]} selected`);
    showError($("#bulk-error"), null);
    button.dataset.busy = "1";
    renderSelection();
    try {
      const report = await api("POST", `/tasks/bulk/${kind}`, { json: { ids } });
      showReport(report.results || []);
    } catch (err) {
      showError($("#bulk-error"), err);
      // A 503 lists what was done before the call stopped.
      if (err.detail && Array.isArray(err.detail.results)) showReport(err.detail.results);
    } finally {
      button.dataset.busy = "";
      loadFound();
    }
  }

  function showReport(results) {
    const report = $("#bulk-report");
    report.replaceChildren(...results.map((item) => {
      const detail = item.detail && typeof item.detail === "object"
        ? item.detail.message || JSON.stringify(item.detail)
        : show(item.detail);
      const id = String(item.id);
      const row = h("li", { dataset: { id, outcome: item.outcome } },
        h("a", { href: taskHref(id), text: shortId(id) }),
        h("span", { className: "outcome-word", text: ` ${item.outcome}` }));
      if (item.retry_id) {
        row.append(h("span", { text: " as " }),
          h("a", { href: taskHref(String(item.retry_id)), text: shortId(String(item.retry_id)) }));
      }
      if (detail) row.append(h("span", { className: "hint", text: ` · ${detail}` }));
      return row;
    }));
    report.hidden = results.length === 0;
  }

  // ---- a task's page: GET /tasks/{id} and its history, its actions -------------------------

  function reloadTaskSoon() {
    clearTimeout(state.view.reload);
    state.view.reload = setTimeout(() => {
      if (state.view.kind === "task") loadTaskPage(state.view.id, false);
    }, 250);
  }

  async function loadTaskPage(id, fresh) {
    const path = `/tasks/${encodeURIComponent(id)}`;
    if (fresh) {
      $("#task-body").replaceChildren();
      setText($("#task-title"), `Task ${shortId(id)}`);
      delete $("#task-view").dataset.loaded;
    }
    showError($("#task-error"), null);
    let task;
    let history;
    try {
      [task, history] = await Promise.all([api("GET", path), api("GET", `${path}/history`)]);
    } catch (err) {
      if (state.view.id === id) showError($("#task-error"), err);
      return;
    }
    if (state.view.kind !== "task" || state.view.id !== id) return;
    // An open clone editor or postpone time survives a live update; the rest is redrawn.
    const open = $("#task-body [data-keep]");
    renderTaskPage(task, history, open);
    $("#task-view").dataset.loaded = task.state;
  }

  function fact(title, value, className) {
    return h("div", { className }, h("dt", { text: title }), h("dd", { text: value }));
  }

  function pretty(value) {
    return h("pre", { className: "json", text: JSON.stringify(value, null, 2) });
  }

  function taskLink(title, id) {
    return h("li", {}, h("span", { text: `${title} ` }),
      h("a", { href: taskHref(id), text: shortId(id), title: id }));
  }

  function renderTaskPage(task, history, kept) {
    setText($("#task-title"), `${task.name} ${shortId(task.id)}`);
    const body = [];
    const ran = task.started_at && task.finished_at
      ? duration(Date.parse(task.finished_at) - Date.parse(task.started_at)) : "—";
    body.push(h("div", { className: "task-head" }, badge(task.state),
      h("code", { className: "id", text: task.id }),
      h("span", { className: "owner", text: task.owner ? `by ${task.owner}` : "" })));
    body.push(h("dl", { className: "facts" },
      fact("Line", task.line || "—"),
      fact("Priority", String(task.priority)),
      fact("Queue position", task.queue_position == null ? "—" : `#${task.queue_position}`),
      fact("Attempts", String(task.attempts || 0)),
      fact("Queued", clock(task.queued_at)),
      fact("Not before", clock(task.not_before)),
      fact("Started", clock(task.started_at)),
      fact("Finished", clock(task.finished_at)),
      fact("Ran for", ran),
      fact("Worker", task.worker || "—")));
    if (task.progress) {
      const percent = Math.max(0, Math.min(100, Number(task.progress.percent) || 0));
      const fill = h("div", { className: "fill" });
      fill.style.width = `${percent}%`;
      body.push(h("h3", { text: `Progress ${percent.toFixed(1)} %` }),
        h("div", { className: "bar", role: "progressbar", "aria-label": "Progress",
          "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": percent.toFixed(1) }, fill),
        pretty(task.progress));
    }
    const links = [];
    if (task.retry_of) links.push(taskLink("Retry of", task.retry_of));
    if (task.retried_by) links.push(taskLink("Retried by", task.retried_by));
    if (task.clone_of) links.push(taskLink("Clone of", task.clone_of));
    if (links.length) body.push(h("ul", { className: "links" }, ...links));
    body.push(taskActions(task, kept));
    body.push(h("h3", { text: "Params" }), h("div", { className: "params-json" }, pretty(task.params)));
    if (task.error) {
      body.push(h("h3", { text: "Error" }),
        h("p", { className: "error-text task-error" },
          h("strong", { text: task.error.type }), h("span", { text: `: ${task.error.message}` })));
      if (task.error.traceback) {
        body.push(h("details", { className: "traceback" }, h("summary", { text: "Traceback" }),
          h("pre", { text: task.error.traceback })));
      }
    }
    if ((task.errors || []).length) {
      body.push(h("h3", { text: "Earlier attempts" }), h("ul", { className: "attempt-errors" },
        ...task.errors.map((e) => h("li", {
          text: `attempt ${e.attempt} · ${clock(e.at)} · ${e.type}: ${e.message}`,
        }))));
    }
    if (task.state === "SUCCESS") body.push(...resultBlock(task));
    body.push(h("h3", { text: "Timeline" }), timeline(history));
    $("#task-body").replaceChildren(...body);
  }

  // The result as the task's read gives it; a paged result (generate_serials) also page by
  // page from GET /tasks/{id}/pages/{n}.
  function resultBlock(task) {
    const nodes = [h("h3", { text: "Result" }), h("div", { className: "result-json" },
      pretty(task.result))];
    const pages = task.result && typeof task.result === "object" ? Number(task.result.pages) : 0;
    if (Number.isInteger(pages) && pages > 1) {
      const out = h("div", { className: "result-page" });
      const shown = h("span", { className: "hint", text: "" });
      let at = -1;
      const go = async (n) => {
        try {
          const page = await api("GET", `/tasks/${encodeURIComponent(task.id)}/pages/${n}`);
          at = n;
          setText(shown, `page ${n + 1} of ${page.pages} · ${page.items.length} items`);
          out.replaceChildren(pretty(page.items));
        } catch (err) {
          showError(out, err);
        }
      };
      const prev = h("button", { type: "button", className: "plain", text: "Previous result page" });
      const next = h("button", { type: "button", className: "plain", text: "Next result page" });
      prev.addEventListener("click", () => go(Math.max(0, at - 1)));
      next.addEventListener("click", () => go(Math.min(pages - 1, at + 1)));
      nodes.push(h("div", { className: "pager" }, prev, shown, next), out);
    }
    return nodes;
  }

  // Each change with its time; the fields other than `at` and `change` say what changed.
  // Kinds this page does not know (webhook deliveries…) show the same way.
  function timeline(history) {
    const list = h("ol", { className: "timeline" });
    for (const entry of history || []) {
      const kind = typeof entry.change === "string" ? entry.change : JSON.stringify(entry.change);
      const rest = Object.entries(entry).filter(([key]) => key !== "at" && key !== "change");
      const item = h("li", { dataset: { change: kind } },
        h("time", { dateTime: entry.at || "", text: clock(entry.at) }),
        h("strong", { className: "change", text: kind }));
      if (rest.length) {
        item.append(h("span", {
          className: "what", text: rest.map(([key, v]) => `${key}=${clip(show(v), 200)}`).join(" · "),
        }));
      }
      list.append(item);
    }
    if (!list.children.length) list.append(h("li", { className: "empty", text: "No change yet." }));
    return list;
  }

  function taskActions(task, kept) {
    const buttons = [];
    const button = (act, text, className = "") => h("button", {
      type: "button", className, dataset: { taskAct: act }, text,
    });
    if (RETRYABLE.has(task.state) && !task.retried_by) buttons.push(button("retry", "Retry"));
    if (task.state === "SCHEDULED") buttons.push(button("release", "Run now"));
    if (!TERMINAL.has(task.state)) buttons.push(button("cancel", "Cancel", "danger"));
    if (!RUNNING.has(task.state)) buttons.push(button("delete", "Delete", "danger"));
    const forms = [];
    if (task.state === "QUEUED" || task.state === "SCHEDULED") {
      forms.push(h("form", { className: "inline", dataset: { taskForm: "postpone" } },
        h("label", {}, "Postpone until ",
          h("input", { type: "datetime-local", name: "when", required: "",
            value: localInput(Date.now() + 3600 * 1000) })),
        h("button", { type: "submit", text: "Postpone" })));
    }
    const clone = kept && kept.dataset.keep === "clone"
      ? kept
      : h("details", { className: "clone", dataset: { keep: "clone" } },
        h("summary", { text: "Clone with other params" }),
        h("form", { dataset: { taskForm: "clone" } },
          h("label", { for: "clone-params", text: "Params (JSON)" }),
          h("textarea", { id: "clone-params", name: "params", rows: "6", spellcheck: "false",
            text: JSON.stringify(task.params, null, 2) }),
          h("button", { type: "submit", text: "Clone" })));
    return h("div", { className: "task-actions writes", dataset: { taskId: task.id } },
      h("div", { className: "actions" }, ...buttons), ...forms, clone,
      h("div", { className: "task-act-error error", role: "alert" }),
      h("p", { className: "status task-act-status", role: "status" }));
  }

  async function taskAct(box, button, action) {
    const error = $(".task-act-error", box);
    showError(error, null);
    button.disabled = true;
    try {
      const said = await action(`/tasks/${encodeURIComponent(box.dataset.taskId)}`);
      if (said === null) return; // the page moved on (a clone's page, the explorer)
      await loadTaskPage(state.view.id, false);
      const status = $("#task-body .task-act-status");
      if (said && status) setText(status, said);
    } catch (err) {
      showError(error, err);
      button.disabled = false;
    }
  }

  function onTaskAction(event) {
    const button = event.target.closest("button[data-task-act]");
    if (!button) return;
    const box = button.closest("[data-task-id]");
    const kind = button.dataset.taskAct;
    if (kind === "retry") {
      taskAct(box, button, async (url) => {
        const retry = await api("POST", `${url}/retry`);
        return `Retried as ${shortId(retry.id)}.`;
      });
    } else if (kind === "cancel") {
      taskAct(box, button, (url) => api("POST", `${url}/cancel`).then(() => ""));
    } else if (kind === "release") {
      taskAct(box, button, (url) => api("PATCH", url, { json: { not_before: null } }).then(() => ""));
    } else if (kind === "delete") {
      if (button.dataset.armed !== "1") {
        button.dataset.armed = "1";
        setText(button, "Confirm delete");
        return;
      }
      taskAct(box, button, async (url) => {
        await api("DELETE", url);
        state.explorer.query = null;
        location.hash = "#explore";
        return null;
      });
    }
  }

  // A JSON merge patch that turns `from` into `to`: keys left out become null.
  function mergePatch(from, to) {
    const patch = { ...to };
    for (const key of Object.keys(from || {})) if (!(key in to)) patch[key] = null;
    return patch;
  }

  function onTaskForm(event) {
    const form = event.target.closest("form[data-task-form]");
    if (!form) return;
    event.preventDefault();
    const box = form.closest("[data-task-id]");
    const button = $("button[type=submit]", form);
    if (form.dataset.taskForm === "postpone") {
      const when = new Date(form.elements.when.value);
      taskAct(box, button, (url) => api("PATCH", url, {
        json: { not_before: when.toISOString() },
      }).then(() => ""));
    } else if (form.dataset.taskForm === "clone") {
      taskAct(box, button, async (url) => {
        let params;
        try {
          params = JSON.parse(form.elements.params.value);
        } catch (err) {
          throw new ApiError(0, "Params: not valid JSON");
        }
        if (!params || typeof params !== "object" || Array.isArray(params)) {
          throw new ApiError(0, "Params: a JSON object");
        }
        const original = await api("GET", url);
        const clone = await api("POST", `${url}/clone`, {
          json: { params: mergePatch(original.params, params) },
        });
        form.closest("details").open = false;
        location.hash = taskHref(clone.id);
        return null;
      });
    }
  }

  // ---- line health: per line, sampled while the tab is visible ------------------------------

  function healthOf(line) {
    let of = state.health.lines.get(line);
    if (!of) {
      of = { depth: [], postponed: [], throughput: [], wait: [], run: [], ended: [] };
      state.health.lines.set(line, of);
    }
    return of;
  }

  function keep(series, value) {
    series.push(value);
    if (series.length > HEALTH_POINTS) series.shift();
  }

  // An ended task is measured once its full read (which the event asks for) comes in.
  function noteEnded(id) {
    const pending = state.health.pending;
    if (pending.size >= HEALTH_PENDING_MAX) pending.delete(pending.values().next().value);
    pending.add(id);
  }

  function measureEnded(task) {
    if (!state.health.pending.has(task.id) || !TERMINAL.has(task.state)) return;
    state.health.pending.delete(task.id);
    const queued = Date.parse(task.queued_at || "");
    const started = Date.parse(task.started_at || "");
    const finished = Date.parse(task.finished_at || "");
    const of = healthOf(task.line || "");
    if (of.ended.length >= HEALTH_PENDING_MAX) return;
    of.ended.push({
      wait: Number.isFinite(queued) && Number.isFinite(started) ? started - queued : null,
      run: Number.isFinite(started) && Number.isFinite(finished) ? finished - started : null,
    });
  }

  function mean(values) {
    const known = values.filter((v) => v !== null && v >= 0);
    return known.length ? known.reduce((a, b) => a + b, 0) / known.length : 0;
  }

  async function sampleHealth() {
    let answer;
    try {
      answer = await api("GET", "/lines?limit=1");
    } catch {
      return;
    }
    if (!state.token) return;
    const perMinute = 60000 / HEALTH_EVERY_MS;
    for (const line of answer.lines || []) {
      const of = healthOf(line.line);
      keep(of.depth, line.depth);
      keep(of.postponed, line.scheduled);
      keep(of.throughput, of.ended.length * perMinute);
      keep(of.wait, mean(of.ended.map((e) => e.wait)) / 1000);
      keep(of.run, mean(of.ended.map((e) => e.run)) / 1000);
      of.ended = [];
    }
    renderHealth();
  }

  function healthChart(title, values, unit = "") {
    const last = values.length ? values[values.length - 1] : 0;
    const peak = Math.max(0, ...values);
    const shown = (v) => (unit === "s" ? `${v.toFixed(1)} s` : String(Number(v.toFixed(1))));
    const text = shown(last);
    const about = `${title}: ${text} (peak ${shown(peak)}), last ${values.length} samples`;
    return h("div", { className: "chart" },
      h("span", { className: "chart-label", text: title }),
      h("span", { className: "chart-value", text }),
      sparkline(values, about, Math.max(1, peak)));
  }

  function renderHealth() {
    if (state.view.kind !== "explore") return;
    const cards = [];
    for (const [line, of] of state.health.lines) {
      cards.push(h("div", { className: "health-line", dataset: { line } },
        h("h3", { text: `line ${line || "default"}` }),
        h("div", { className: "charts" },
          healthChart("depth", of.depth),
          healthChart("postponed", of.postponed),
          healthChart("ended / min", of.throughput),
          healthChart("wait", of.wait, "s"),
          healthChart("run", of.run, "s"))));
    }
    $("#health").replaceChildren(...cards);
  }

  function startHealth() {
    stopHealth();
    const loop = () => {
      if (!document.hidden) sampleHealth();
      state.health.timer = setTimeout(loop, HEALTH_EVERY_MS);
    };
    loop();
  }

  function stopHealth() {
    clearTimeout(state.health.timer);
    state.health.timer = null;
  }

  // ---- start -------------------------------------------------------------------------------

  async function loadLinks() {
    try {
      const config = await (await fetch("/ui/config.json")).json();
      Object.assign(state.links, config);
    } catch (err) {
      // The defaults stand.
    }
    const host = location.hostname;
    $("#flower-link").href = `http://${host}:${state.links.flower_port}/`;
    $("#console-link").href = `http://${host}:${state.links.console_port}/`;
  }

  function init() {
    $("#signin-form").addEventListener("submit", signIn);
    $("#sign-out").addEventListener("click", () => signOut(""));
    $("#submit-form").addEventListener("submit", submitTask);
    $("#task-name").addEventListener("change", buildParams);
    $("#line-filter").addEventListener("change", chooseLine);
    document.addEventListener("click", onClick);
    document.addEventListener("submit", onRowSubmit);
    window.addEventListener("hashchange", route);
    $("#filter-form").addEventListener("submit", onFilter);
    $("#filter-form").addEventListener("reset", () => setTimeout(() => search(), 0));
    $("#page-older").addEventListener("click", () => turnPage(1));
    $("#page-newer").addEventListener("click", () => turnPage(-1));
    $("#select-page").addEventListener("change", selectPage);
    $("#found").addEventListener("change", onSelect);
    for (const button of document.querySelectorAll("[data-bulk]")) {
      button.addEventListener("click", onBulk);
    }
    $("#task-view").addEventListener("click", onTaskAction);
    $("#task-view").addEventListener("submit", onTaskForm);
    setInterval(tick, 1000);
    loadLinks();
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) start(token, sessionStorage.getItem(USER_KEY) || "");
    else $("#username").focus();
  }

  init();
})();
