"use strict";
const $ = (id) => document.getElementById(id);
let me = null, conversation = null, socket = null, cursor = 0, retry = 0;
const shown = new Set();
// Messages sent but not yet acknowledged, resent with the same id after a drop.
const pending = new Map();

// UUIDv7: 48-bit millisecond time, then random bits (ids are time-ordered).
function uuidv7() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  let t = Date.now();
  for (let i = 5; i >= 0; i--) { b[i] = t % 256; t = Math.floor(t / 256); }
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function setStatus(text) { $("status").textContent = text; }

// Changes made with the session cookie repeat its CSRF token (the
// script-readable portico_csrf cookie) in X-CSRF-Token.
function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)portico_csrf=([^;]*)/);
  return m ? m[1] : "";
}

async function api(path, options = {}) {
  const headers = { "content-type": "application/json", "x-csrf-token": csrfToken() };
  const resp = await fetch(path, { credentials: "same-origin", headers, ...options });
  const body = resp.status === 204 ? null : await resp.json();
  if (!resp.ok) throw new Error(body && body.error ? body.error.message : resp.statusText);
  return body;
}

function show(id, who, text, agent, pending) {
  let el = document.querySelector(`[data-id="${id}"]`);
  if (!el) {
    el = document.createElement("div");
    el.dataset.id = id;
    $("log").appendChild(el);
  }
  el.className = "msg" + (agent ? " agent" : "") + (pending ? " pending" : "");
  el.replaceChildren();
  const w = document.createElement("span"); w.className = "who"; w.textContent = who;
  const t = document.createElement("span"); t.textContent = text;
  el.append(w, t);
  $("log").scrollTop = $("log").scrollHeight;
}

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${proto}://${location.host}/v1/live`);
  socket.onopen = () => { retry = 0; setStatus("Connected."); };
  socket.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === "hello") {
      if (cursor) socket.send(JSON.stringify({ type: "resume", after_seq: cursor }));
      else cursor = frame.seq;
      if (conversation) socket.send(JSON.stringify({ type: "subscribe", conversation_id: conversation }));
      for (const frame of pending.values()) socket.send(JSON.stringify(frame));
    } else if (frame.type === "ack") {
      pending.delete(frame.message_id);
    } else if (frame.type === "change") {
      cursor = Math.max(cursor, frame.change.seq);
      const row = frame.change.row;
      if (frame.change.kind === "message" && row && row.conversation_id === conversation) {
        shown.add(row.id);
        show(row.id, row.author_name || "Support", row.body, row.kind === "agent", false);
        // Their message arrived: they are no longer typing it.
        if (row.author_id !== me.user.id) $("typing").textContent = "";
      }
    } else if (frame.type === "message") {
      // A message as it arrives, before it is stored: shown as sending until
      // its change comes (or taken back if it is withdrawn).
      const m = frame.message;
      if (m.conversation_id === conversation && !shown.has(m.id)) {
        show(m.id, m.author_name || "Support", m.body, m.kind === "agent", true);
        if (m.author_id !== me.user.id) $("typing").textContent = "";
      }
    } else if (frame.type === "withdrawn") {
      const el = document.querySelector(`[data-id="${frame.message_id}"]`);
      if (el && !shown.has(frame.message_id)) el.remove();
    } else if (frame.type === "typing") {
      $("typing").textContent = frame.typing ? `${frame.name} is typing…` : "";
    } else if (frame.type === "error") {
      if (frame.message_id) pending.delete(frame.message_id);
      $("chat-error").textContent = frame.message;
    } else if (frame.type === "lagged" || (frame.type === "resumed" && !frame.complete)) {
      loadHistory();
    }
  };
  socket.onclose = (event) => {
    setStatus(`Disconnected (${event.code}); reconnecting…`);
    const delay = Math.min(30000, 500 * 2 ** retry++) * (0.5 + Math.random());
    setTimeout(connect, delay);
  };
}

async function loadHistory() {
  const page = await api(`/v1/conversations/${conversation}/messages?limit=200`);
  for (const m of page.items) {
    shown.add(m.id);
    show(m.id, m.author_name, m.body, m.kind === "agent", false);
  }
}

$("signin").onsubmit = async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    me = await api("/v1/auth/login", { method: "POST", body: JSON.stringify({ email: form.get("email"), password: form.get("password") }) });
    $("signin").hidden = true;
    $("chat").hidden = false;
    setStatus(`Signed in as ${me.user.name}${me.account ? ", " + me.account.name : ""}.`);
    connect();
  } catch (e) { $("signin-error").textContent = e.message; }
};

$("start").onsubmit = async (event) => {
  event.preventDefault();
  const subject = new FormData(event.target).get("subject");
  try {
    const conv = await api("/v1/conversations", { method: "POST", body: JSON.stringify({ channel: "chat", subject, body: subject }) });
    conversation = conv.id;
    $("start").hidden = true;
    $("compose").hidden = false;
    await loadHistory();
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "subscribe", conversation_id: conversation }));
  } catch (e) { $("chat-error").textContent = e.message; }
};

let typingSent = false;
$("compose").body.oninput = () => {
  const typing = $("compose").body.value.length > 0;
  if (typing !== typingSent && socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ type: "typing", conversation_id: conversation, typing }));
    typingSent = typing;
  }
};

$("compose").onsubmit = (event) => {
  event.preventDefault();
  const body = $("compose").body.value.trim();
  if (!body) return;
  const id = uuidv7();
  show(id, me.user.name, body, false, true);
  const frame = { type: "send", conversation_id: conversation, message_id: id, body };
  // Kept until acknowledged and resent on reconnect with the same id, which
  // the server stores once.
  pending.set(id, frame);
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify(frame));
    // Sent: no longer typing (so the next keystroke says "typing" again).
    if (typingSent) socket.send(JSON.stringify({ type: "typing", conversation_id: conversation, typing: false }));
  }
  typingSent = false;
  $("compose").body.value = "";
};
