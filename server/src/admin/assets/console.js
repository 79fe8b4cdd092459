// emitgate admin console: polls /api/status, turns the gateway's counters
// into rates, sends test events through /api/send (with acks through
// EmitWithAck) and lists who is online through /api/sockets. Plain DOM code, no
// dependencies; every value from the server is written as text, never as
// HTML.
"use strict";

// How often the page reads /api/status: often enough to look live, cheap
// for the gateway (one read of its counters, no Redis command).
const POLL_MS = 1000;
// Where the API key lives: this tab only, gone when it closes.
const KEY_STORAGE = "emitgate.console.key";

const $ = (id) => document.getElementById(id);
let key = sessionStorage.getItem(KEY_STORAGE) || "";
let previous = null;
let timer = null;
// Answers shown by the send form so far (its `data-answer`), so that a
// reader can tell a new answer from the last one.
let answers = 0;
// The same for the "who is online" answers.
let lookups = 0;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "title") e.title = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

async function api(path, init) {
  const headers = Object.assign({}, (init && init.headers) || {});
  if (key) headers["Authorization"] = "Bearer " + key;
  const res = await fetch(path, Object.assign({ cache: "no-store", credentials: "omit" }, init, { headers }));
  let body = null;
  try {
    body = await res.json();
  } catch (_) {
    body = null;
  }
  return { status: res.status, body };
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(refresh, POLL_MS);
}

async function refresh() {
  let r;
  try {
    r = await api("/api/status");
  } catch (e) {
    showBanner("The gateway does not answer: " + e.message);
    return schedule();
  }
  if (r.status === 401 || r.status === 403) {
    // Refused: wait for a key instead of polling.
    clearTimeout(timer);
    return showRefused((r.body && r.body.error) || "refused (HTTP " + r.status + ")");
  }
  if (r.status !== 200 || !r.body) {
    showBanner("/api/status answered HTTP " + r.status);
    return schedule();
  }
  showBanner(null);
  render(r.body);
  schedule();
}

function showBanner(text) {
  $("banner").hidden = !text;
  $("banner").textContent = text || "";
}

function showRefused(message) {
  $("app").hidden = true;
  $("login").hidden = false;
  $("refused").textContent = "Refused: " + message;
  $("forget-key").hidden = !key;
  $("whoami").textContent = "";
  previous = null;
  $("key").focus();
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

function fmtRate(x) {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function render(s) {
  $("login").hidden = true;
  $("app").hidden = false;
  $("forget-key").hidden = !key;
  $("whoami").textContent =
    "v" + s.version + " · " + (s.auth_required ? "API key " + JSON.stringify(s.key) : "authentication off (loopback)");

  const events = sum(s.targets.map((t) => t.events_published));
  const calls = sum(s.calls.map((c) => c.total));
  const errors = sum(s.calls.map((c) => c.errors));
  if (previous && s.uptime_ms > previous.uptime_ms) {
    const dt = (s.uptime_ms - previous.uptime_ms) / 1000;
    const dCalls = calls - previous.calls;
    const dErrors = errors - previous.errors;
    $("rate-events").textContent = fmtRate((events - previous.events) / dt);
    $("rate-calls").textContent = fmtRate(dCalls / dt);
    $("rate-errors").textContent = fmtRate(dErrors / dt);
    $("error-share").textContent = dCalls > 0 ? ((100 * dErrors) / dCalls).toFixed(1) + " % of calls" : "no calls";
  }
  previous = { uptime_ms: s.uptime_ms, events, calls, errors };
  $("total-events").textContent = events + " in all";
  $("total-calls").textContent = calls + " in all, " + errors + " failed";
  $("in-flight").textContent = s.in_flight;
  $("ready").textContent = s.ready ? "ready" : "not ready";

  renderTargets(s.targets);
  renderCalls(s.calls);
  renderFailures(s.failures);
  fillTargetChoice(s.targets);
}

function renderTargets(targets) {
  const rows = targets.map((t) => {
    const r = t.redis;
    const state = el("span", { class: "state " + r.state }, r.state);
    const detail = r.error ? el("span", { class: "detail" }, r.error) : null;
    const ping = r.state === "up" ? r.latency_ms.toFixed(2) + " ms" : "–";
    return el(
      "tr",
      { "data-target": t.name },
      el("td", {}, el("strong", {}, t.name)),
      el("td", {}, el("code", {}, t.dialect)),
      el("td", {}, state, detail),
      el("td", { class: "num" }, ping),
      el("td", { class: "num" }, t.events_published),
      el("td", { class: "num" }, t.redis_errors),
    );
  });
  $("targets").tBodies[0].replaceChildren(...rows);
}

function renderCalls(calls) {
  const used = calls.filter((c) => c.total > 0);
  const rows = used.map((c) =>
    el(
      "tr",
      { "data-method": c.method },
      el("td", {}, c.method),
      el("td", { class: "num" }, c.total),
      el("td", { class: "num" }, c.errors),
      el(
        "td",
        {},
        ...Object.entries(c.codes).flatMap(([code, n], i) => [
          i ? " " : null,
          el("span", { class: "code " + (code === "OK" ? "OK" : "bad") }, code),
          " " + n,
        ]),
      ),
    ),
  );
  if (!rows.length) rows.push(el("tr", {}, el("td", { class: "empty", colspan: "4" }, "no calls yet")));
  $("calls").tBodies[0].replaceChildren(...rows);
}

function renderFailures(failures) {
  const rows = failures.map((f) =>
    el(
      "tr",
      { "data-code": f.code },
      el("td", {}, new Date(f.at_ms).toLocaleTimeString(undefined, { hour12: false })),
      el("td", {}, f.method),
      el("td", {}, el("span", { class: "code bad" }, f.code)),
      el("td", { class: "message" }, f.message),
    ),
  );
  if (!rows.length) rows.push(el("tr", {}, el("td", { class: "empty", colspan: "4" }, "no failed calls")));
  $("failures").tBodies[0].replaceChildren(...rows);
}

function fillTargetChoice(targets) {
  const names = targets.map((t) => t.name);
  for (const select of [$("send-target"), $("online-target")]) {
    const current = Array.from(select.options).map((o) => o.value);
    if (names.join("\n") === current.join("\n")) continue;
    const chosen = select.value;
    select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
    if (names.includes(chosen)) select.value = chosen;
  }
}

const rooms = (text) =>
  text
    .split(",")
    .map((r) => r.trim())
    .filter((r) => r.length > 0);

function syncOp() {
  const emit = $("send-op").value === "emit";
  $("send-rooms").disabled = !emit;
  $("send-wait").disabled = !$("send-ack").checked;
}

async function send(ev) {
  ev.preventDefault();
  const out = $("send-result");
  const button = $("send-button");
  const op = $("send-op").value;
  const form = {
    op,
    target: $("send-target").value,
    namespace: $("send-namespace").value,
    rooms: op === "emit" ? rooms($("send-rooms").value) : [],
    except_rooms: rooms($("send-except").value),
    event: $("send-event").value,
    args: $("send-args").value,
    ack: $("send-ack").checked,
    timeout_ms: Number($("send-wait").value.trim() || "0"),
  };
  button.disabled = true;
  out.className = "pending";
  out.textContent = "Sending…";
  try {
    const r = await api("/api/send", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(form),
    });
    if (r.status !== 200 || !r.body) {
      out.className = "failed";
      out.textContent = "Not sent: " + ((r.body && r.body.error) || "HTTP " + r.status);
    } else if (r.body.ok && r.body.ack) {
      out.className = r.body.complete ? "ok" : "failed";
      const parts = [
        "OK",
        "sockets: " + r.body.sockets,
        "acks: " + r.body.acks.length,
        "servers: " + r.body.servers + "/" + r.body.servers_expected,
        r.body.complete ? "complete" : "incomplete",
      ];
      out.replaceChildren(
        el("div", {}, parts.join(" · ")),
        r.body.acks.length ? el("ul", { class: "acks" }, ...r.body.acks.map((a) => el("li", {}, el("code", {}, ackText(a))))) : null,
      );
    } else if (r.body.ok) {
      out.className = "ok";
      const parts = ["OK", "receivers: " + r.body.receivers];
      if (r.body.stream_id) parts.push("stream entry " + r.body.stream_id);
      if (r.body.duplicate) parts.push("duplicate");
      out.textContent = parts.join(" · ");
    } else {
      failure(out, r.body);
    }
  } catch (e) {
    out.className = "failed";
    out.textContent = "Not sent: " + e.message;
  } finally {
    button.disabled = false;
    answers += 1;
    out.dataset.answer = String(answers);
  }
  refresh();
}

// One ack as text: JSON for a value, the base64 of binary or MessagePack.
function ackText(a) {
  if ("value" in a) return JSON.stringify(a.value);
  if ("binary" in a) return "binary " + a.binary;
  if ("msgpack" in a) return "msgpack " + a.msgpack;
  return JSON.stringify(a);
}

function failure(out, body) {
  out.className = "failed";
  out.replaceChildren(
    el("span", { class: "code" }, body.code),
    ": " + body.message,
    body.violations.length
      ? el("ul", {}, ...body.violations.map((v) => el("li", {}, el("code", {}, v.field), " " + v.description)))
      : null,
  );
}

async function lookUp(ev) {
  ev.preventDefault();
  const out = $("online-result");
  const body = $("online-sockets").tBodies[0];
  const button = $("online-button");
  const form = {
    target: $("online-target").value,
    namespace: $("online-namespace").value,
    room: $("online-room").value.trim(),
  };
  button.disabled = true;
  out.className = "pending";
  out.textContent = "Asking the servers…";
  body.replaceChildren();
  try {
    const r = await api("/api/sockets", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(form),
    });
    if (r.status !== 200 || !r.body) {
      out.className = "failed";
      out.textContent = "Not asked: " + ((r.body && r.body.error) || "HTTP " + r.status);
    } else if (r.body.ok) {
      const n = r.body.sockets.length;
      out.className = r.body.complete ? "ok" : "failed";
      out.textContent = [
        n + (n === 1 ? " socket" : " sockets"),
        "servers: " + r.body.servers + "/" + r.body.servers_expected,
        r.body.complete ? "complete" : "incomplete",
        r.body.truncated ? "truncated" : null,
      ]
        .filter((p) => p)
        .join(" · ");
      const rows = r.body.sockets.map((s) =>
        el("tr", { "data-socket": s.id }, el("td", {}, el("code", {}, s.id)), el("td", {}, s.rooms.join(", "))),
      );
      if (!rows.length) rows.push(el("tr", {}, el("td", { class: "empty", colspan: "2" }, "nobody")));
      body.replaceChildren(...rows);
    } else {
      failure(out, r.body);
    }
  } catch (e) {
    out.className = "failed";
    out.textContent = "Not asked: " + e.message;
  } finally {
    button.disabled = false;
    lookups += 1;
    out.dataset.answer = String(lookups);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("send").addEventListener("submit", send);
  $("online").addEventListener("submit", lookUp);
  $("send-op").addEventListener("change", syncOp);
  $("send-ack").addEventListener("change", syncOp);
  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    key = $("key").value.trim();
    $("key").value = "";
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
    refresh();
  });
  $("forget-key").addEventListener("click", () => {
    key = "";
    sessionStorage.removeItem(KEY_STORAGE);
    refresh();
  });
  syncOp();
  refresh();
});
