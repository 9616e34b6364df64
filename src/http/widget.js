// Chatwire's web chat widget. Embed with one tag:
//   <script src="https://chatwire.example/widget.js" data-widget="WIDGET_ID" async></script>
// Optional: data-token="..." (a visitor token your server minted for a signed-in user with
// POST /v1/integration/widget/{id}/visitor), data-open="true" (start open).
// It draws itself in a shadow root (the page's styles do not leak in), keeps the visitor's
// token in localStorage (a reload continues the conversation) and follows the conversation over
// server-sent events. All text goes in through textContent.
(function () {
  "use strict";
  const script = document.currentScript;
  if (!script || !script.dataset.widget) return;
  const id = script.dataset.widget;
  const base = new URL(script.src).origin;
  const storeKey = "chatwire:" + id;
  const css = `
    :host { all: initial; }
    .launcher { position: fixed; right: 20px; bottom: 20px; width: 56px; height: 56px; border-radius: 50%;
      border: 0; background: #1f6feb; color: #fff; display: grid; place-items: center; cursor: pointer;
      box-shadow: 0 4px 14px rgba(0,0,0,.25); z-index: 2147483000; }
    .panel { position: fixed; right: 20px; bottom: 88px; width: min(360px, calc(100vw - 40px)); height: min(520px, calc(100vh - 120px));
      display: flex; flex-direction: column; background: #fff; border: 1px solid #d9dde3; border-radius: 12px;
      box-shadow: 0 8px 28px rgba(0,0,0,.2); font: 14px/1.4 system-ui, -apple-system, sans-serif; color: #1b1f24;
      overflow: hidden; z-index: 2147483000; }
    .panel[hidden] { display: none; }
    header { padding: 12px 14px; background: #1f6feb; color: #fff; }
    header h2 { margin: 0; font-size: 16px; }
    header p { margin: 2px 0 0; opacity: .9; font-size: 13px; }
    ol { list-style: none; margin: 0; padding: 12px; flex: 1; overflow: auto; display: flex; flex-direction: column; gap: 6px; background: #f6f7f9; }
    li { max-width: 80%; padding: 7px 10px; border-radius: 10px; white-space: pre-wrap; word-break: break-word; background: #fff; border: 1px solid #e3e6ea; }
    li.person { align-self: flex-end; background: #1f6feb; color: #fff; border-color: #1f6feb; }
    li.agent { background: #e8f5e9; border-color: #c8e6c9; }
    li.system { align-self: center; background: transparent; border: 0; color: #5f6b7a; font-size: 12px; text-align: center; }
    li .by { display: block; font-size: 11px; color: #5f6b7a; margin-bottom: 2px; }
    .typing { padding: 0 14px 6px; color: #5f6b7a; font-size: 12px; background: #f6f7f9; }
    .typing[hidden] { display: none; }
    form { display: flex; gap: 6px; padding: 10px; border-top: 1px solid #e3e6ea; }
    input { flex: 1; font: inherit; padding: 8px 10px; border: 1px solid #d9dde3; border-radius: 8px; }
    button.send { font: inherit; border: 0; border-radius: 8px; padding: 8px 12px; background: #1f6feb; color: #fff; cursor: pointer; }
    .error { color: #c62828; font-size: 12px; padding: 0 12px 6px; }
  `;

  const host = document.createElement("div");
  host.id = "chatwire-widget";
  const root = host.attachShadow({ mode: "open" });
  root.innerHTML = `<style>${css}</style>
    <button class="launcher" data-testid="chatwire-launcher" aria-label="Open chat"><svg width="26" height="26" viewBox="0 0 24 24" aria-hidden="true"><path fill="currentColor" d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z"/></svg></button>
    <section class="panel" data-testid="chatwire-panel" hidden role="dialog" aria-label="Chat">
      <header><h2 data-testid="chatwire-title"></h2><p data-testid="chatwire-intro"></p></header>
      <ol data-testid="chatwire-messages" aria-live="polite"></ol>
      <div class="typing" data-testid="chatwire-typing" hidden>typing&hellip;</div>
      <div class="error" data-testid="chatwire-error"></div>
      <form data-testid="chatwire-form"><input data-testid="chatwire-input" aria-label="Message" autocomplete="off">
        <button class="send" type="submit" data-testid="chatwire-send">Send</button></form>
    </section>`;
  const $ = (sel) => root.querySelector(sel);
  let config = {};
  let token = null;
  let events = null;
  let pending = []; // sent, not yet in the view

  async function call(path, options) {
    const headers = { "content-type": "application/json" };
    if (token) headers.authorization = "Bearer " + token;
    const res = await fetch(base + "/widget/" + encodeURIComponent(id) + path, {
      method: options && options.body !== undefined ? "POST" : "GET",
      headers,
      body: options && options.body !== undefined ? JSON.stringify(options.body) : undefined,
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.message || res.statusText);
    return data;
  }

  function bubble(author, text, name) {
    const li = document.createElement("li");
    li.className = author;
    li.dataset.testid = "chatwire-message";
    li.dataset.author = author;
    if (author === "agent" && name) {
      const by = document.createElement("span");
      by.className = "by";
      by.textContent = name;
      li.append(by);
    }
    li.append(document.createTextNode(text));
    return li;
  }

  function render(view) {
    const list = $("ol");
    const items = [];
    if (config.initial) items.push(bubble("bot", config.initial));
    for (const m of view.messages) items.push(bubble(m.author, m.text, m.agentName));
    const shown = new Set(view.messages.filter((m) => m.author === "person").map((m) => m.text));
    pending = pending.filter((t) => !shown.has(t));
    for (const t of pending) items.push(bubble("person", t));
    list.replaceChildren(...items);
    list.scrollTop = list.scrollHeight;
    $(".typing").hidden = !(view.typing || pending.length);
  }

  async function start() {
    config = await call("/config");
    $("h2").textContent = config.title || config.name || "Chat";
    $("header p").textContent = config.intro || "";
    if (config.placeholder) $("input").placeholder = config.placeholder;
    let stored = null;
    try { stored = localStorage.getItem(storeKey); } catch (e) { /* storage blocked */ }
    const session = await call("/session", { body: { token: script.dataset.token || stored || undefined } });
    token = session.token;
    try { localStorage.setItem(storeKey, token); } catch (e) { /* storage blocked */ }
    render({ messages: [], typing: false });
    events = new EventSource(base + "/widget/" + encodeURIComponent(id) + "/events?token=" + encodeURIComponent(token));
    events.addEventListener("view", (e) => render(JSON.parse(e.data)));
  }

  let started = null;
  function open() {
    $(".panel").hidden = false;
    if (!started) started = start().catch((e) => { $(".error").textContent = e.message; started = null; });
    $("input").focus();
  }

  $(".launcher").addEventListener("click", () => {
    if ($(".panel").hidden) open(); else $(".panel").hidden = true;
  });
  $("form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("input").value.trim();
    if (!text) return;
    await started;
    $("input").value = "";
    $(".error").textContent = "";
    pending.push(text);
    $(".typing").hidden = false;
    const messageId = Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10);
    try {
      await call("/messages", { body: { text, id: messageId } });
    } catch (err) {
      pending = pending.filter((t) => t !== text);
      $(".error").textContent = err.message;
    }
  });
  document.body.append(host);
  if (script.dataset.open === "true") open();
})();
