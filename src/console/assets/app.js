// The agents' inbox. Plain JavaScript, no framework and no build: the server sends a fresh
// snapshot of the lists over server-sent events whenever they change, and the open conversation
// is reloaded when its latest message changes. All text goes in through textContent.
"use strict";

let meId = null;
let openId = null;
let opened = null; // the open conversation's detail
let activity = {};
let events = null;

function time(ms) {
  if (!ms) return "";
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

const STATES = {
  queued: "Waiting in the queue",
  agent: "With an agent",
  leaving_message: "Leaving a message for the team",
  ticket: "Message left for the team",
  answered: "Answered",
  closed: "Closed",
  returned: "Back with the bot",
};

function showLogin() {
  csrf = null;
  if (events) events.close();
  events = null;
  $("app").hidden = true;
  $("login").hidden = false;
}

function showInbox(me) {
  csrf = me.csrf;
  meId = me.agent.id;
  $("who").textContent = me.agent.name;
  $("status").value = me.agent.status;
  $("login").hidden = true;
  $("app").hidden = false;
  listen();
}

function listen() {
  if (events) events.close();
  events = new EventSource("/console/api/events");
  events.addEventListener("snapshot", (e) => render(JSON.parse(e.data)));
  events.onopen = () => $("live").classList.add("on");
  events.onerror = () => {
    $("live").classList.remove("on");
    // A closed stream whose session is gone sends the agent back to the login form.
    api("/me").catch((err) => { if (err.status === 401) showLogin(); });
  };
}

function item(h, list) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.id = h.id;
  button.dataset.testid = "item";
  button.setAttribute("aria-current", String(h.id === openId));
  const who = document.createElement("strong");
  who.textContent = h.person;
  const meta = document.createElement("span");
  meta.className = "meta";
  const why = list === "tickets" ? (h.ticketText || "") : (h.reason || STATES[h.state] || h.state);
  meta.textContent = time(h.queuedAt) + " · " + why;
  button.append(who, meta);
  button.addEventListener("click", () => open(h.id));
  li.append(button);
  return li;
}

function render(snapshot) {
  for (const list of ["queue", "mine", "tickets"]) {
    const ul = $(list);
    ul.replaceChildren(...snapshot[list].map((h) => item(h, list)));
    $(list + "-count").textContent = snapshot[list].length;
  }
  if (snapshot.agent) $("status").value = snapshot.agent.status;
  const seen = activity;
  activity = snapshot.activity || {};
  const all = [...snapshot.queue, ...snapshot.mine, ...snapshot.tickets];
  const current = all.find((h) => h.id === openId);
  if (openId && (!current || seen[openId] !== activity[openId] || (opened && current.state !== opened.handoff.state))) {
    open(openId, true);
  }
}

function bubble(m) {
  const li = document.createElement("li");
  const meta = m.meta || {};
  let kind = "bot";
  let by = "Bot";
  if (m.type === "user") { kind = "person"; by = "Person"; }
  else if (m.type === "activity") { kind = "marker"; by = ""; }
  else if (meta.author === "agent") { kind = "agent"; by = meta.agentName || "Agent"; }
  else if (meta.author === "system") { kind = "system"; by = "Chatwire"; }
  li.className = "msg " + kind;
  li.dataset.testid = "message";
  li.dataset.kind = kind;
  if (by) {
    const label = document.createElement("span");
    label.className = "by";
    label.textContent = by + " · " + time(m.createdAt);
    li.append(label);
  }
  li.append(document.createTextNode(m.text));
  if (meta.delivery && meta.delivery.status) {
    const status = document.createElement("span");
    status.className = "status";
    status.dataset.testid = "delivery";
    const code = meta.delivery.errorCode ? " (error " + meta.delivery.errorCode + ")" : "";
    status.textContent = meta.delivery.status + code;
    li.append(status);
  }
  return li;
}

async function open(id, quiet) {
  try {
    const detail = await api("/handoffs/" + encodeURIComponent(id));
    show(detail, quiet);
  } catch (err) {
    if (err.status === 401) return showLogin();
    if (!quiet) toast(err.message);
  }
}

function collectedText(detail) {
  const parts = [];
  const h = detail.handoff;
  if (h.attributes) parts.push("Attributes: " + JSON.stringify(h.attributes, null, 2));
  if (h.ticketText) parts.push("Message left: " + h.ticketText);
  if (detail.botState && Object.keys(detail.botState).length) {
    parts.push("Bot state: " + JSON.stringify(detail.botState, null, 2));
  }
  return parts.join("\n\n");
}

function show(detail, quiet) {
  const h = detail.handoff;
  openId = h.id;
  opened = detail;
  document.querySelectorAll(".lists button[data-id]").forEach((b) => {
    b.setAttribute("aria-current", String(b.dataset.id === openId));
  });
  $("empty").hidden = true;
  $("conversation").hidden = false;
  $("app").classList.add("reading");
  $("person").textContent = h.person;
  const with_ = h.state === "agent" && h.agentName ? " (" + h.agentName + ")" : "";
  $("state").textContent = (STATES[h.state] || h.state) + with_ + (h.reason ? " · " + h.reason : "");
  const mine = h.state === "agent" && h.agentId === meId;
  $("take").hidden = h.state !== "queued";
  $("close").hidden = !(mine || h.state === "queued");
  const collected = collectedText(detail);
  $("collected-box").hidden = !collected;
  $("collected").textContent = collected;
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(...detail.messages.map(bubble));
  if (atBottom || !quiet) list.scrollTop = list.scrollHeight;
  const canWrite = mine || h.state === "ticket";
  $("reply-form").hidden = !canWrite;
  $("reply-send").textContent = h.state === "ticket" ? "Answer" : "Send";
}

async function act(path, body) {
  if (!openId) return;
  try {
    const detail = await api("/handoffs/" + encodeURIComponent(openId) + path, { method: "POST", body: body || {} });
    show(detail);
    return true;
  } catch (err) {
    if (err.status === 401) return showLogin();
    toast(err.message);
    open(openId, true);
    return false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    $("login-error").textContent = "";
    try {
      showInbox(await api("/login", { method: "POST", body: { email: form.get("email"), password: form.get("password") } }));
    } catch (err) {
      $("login-error").textContent = err.message;
    }
  });
  $("logout").addEventListener("click", async () => {
    await api("/logout", { method: "POST", body: {} }).catch(() => {});
    showLogin();
  });
  $("status").addEventListener("change", (e) => {
    api("/status", { method: "POST", body: { status: e.target.value } }).then(render).catch((err) => toast(err.message));
  });
  $("take").addEventListener("click", () => act("/take"));
  $("close").addEventListener("click", () => act("/close"));
  $("back").addEventListener("click", () => $("app").classList.remove("reading"));
  $("reply-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("reply-text").value.trim();
    if (!text) return;
    const path = opened && opened.handoff.state === "ticket" ? "/answer" : "/reply";
    if (await act(path, { text })) $("reply-text").value = "";
  });
  $("reply-text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      $("reply-form").requestSubmit();
    }
  });
  api("/me").then(showInbox).catch(showLogin);
});
