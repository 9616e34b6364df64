// The operations page: the overview's charts (plain SVG) and the channel log with filters and
// replay. Plain JavaScript like the inbox; all text goes in through textContent.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
let cursor = null;

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (className) e.className = className;
  return e;
}

function drawHours(hours) {
  const svg = $("hours");
  svg.replaceChildren();
  const max = Math.max(1, ...hours.map((h) => Math.max(h.inbound, h.outbound)));
  const slot = 480 / hours.length;
  const bar = Math.max(1, slot / 2 - 1);
  hours.forEach((h, i) => {
    for (const [kind, n, dx] of [["in", h.inbound, 0], ["out", h.outbound, bar]]) {
      const height = (n / max) * 110;
      const rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("x", String(i * slot + dx));
      rect.setAttribute("y", String(118 - height));
      rect.setAttribute("width", String(bar));
      rect.setAttribute("height", String(height));
      rect.setAttribute("class", kind);
      rect.dataset.count = String(n);
      const title = document.createElementNS(SVG, "title");
      title.textContent = new Date(h.hour).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) + ": " + n + " " + kind;
      rect.appendChild(title);
      svg.appendChild(rect);
    }
  });
}

function drawDelivery(d) {
  const box = $("delivery");
  box.replaceChildren();
  const total = d.delivered + d.sent + d.failed + d.pending;
  const rate = total ? Math.round((d.delivered / total) * 100) : 0;
  const headline = el("p", total ? rate + "% delivered" : "Nothing sent yet", "rate");
  headline.dataset.testid = "delivery-rate";
  box.appendChild(headline);
  const stack = el("div", undefined, "stack");
  for (const key of ["delivered", "sent", "pending", "failed"]) {
    const part = el("span", undefined, key);
    part.style.flexGrow = String(d[key]);
    part.title = d[key] + " " + key;
    stack.appendChild(part);
  }
  box.appendChild(stack);
  box.appendChild(el("p", d.delivered + " delivered · " + d.sent + " sent · " + d.pending + " pending · " + d.failed + " failed", "sub"));
}

function drawErrors(errors) {
  const list = $("errors");
  list.replaceChildren();
  if (!errors.length) list.appendChild(el("li", "No errors", "sub"));
  const max = Math.max(1, ...errors.map((e) => e.count));
  for (const e of errors) {
    const li = el("li");
    li.appendChild(el("span", String(e.code), "code"));
    const meter = el("span", undefined, "meter");
    meter.style.width = Math.round((e.count / max) * 100) + "%";
    li.appendChild(meter);
    li.appendChild(el("span", String(e.count), "n"));
    list.appendChild(li);
  }
}

async function loadOverview() {
  const o = await api("/overview?hours=24");
  drawHours(o.hours);
  drawDelivery(o.delivery);
  drawErrors(o.topErrors);
}

function describe(e) {
  const parts = [];
  if (e.reason) parts.push(e.reason.replace(/_/g, " "));
  if (e.detail) parts.push(e.detail);
  if (e.errorCode) parts.push("error " + e.errorCode);
  if (e.messageSid) parts.push(e.messageSid);
  if (e.elapsedMs !== null && e.elapsedMs !== undefined) parts.push(e.elapsedMs + " ms");
  if (e.replayOutcome) parts.push("replayed: " + e.replayOutcome);
  return parts.join(" · ");
}

function row(e) {
  const tr = el("tr");
  tr.dataset.id = e.id;
  tr.dataset.outcome = e.outcome;
  tr.appendChild(el("td", new Date(e.createdAt).toLocaleString()));
  tr.appendChild(el("td", e.kind));
  tr.appendChild(el("td", e.outcome, "outcome " + e.outcome));
  const detail = el("td", describe(e), "detail");
  if (e.url) detail.title = "Checked against " + e.url;
  tr.appendChild(detail);
  const action = el("td");
  if (e.replayable) {
    const b = el("button", "Replay", "quiet");
    b.type = "button";
    b.dataset.testid = "replay";
    b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        const r = await api("/channel-log/" + encodeURIComponent(e.id) + "/replay", { method: "POST", body: {} });
        toast(r.outcome === "accepted" || r.outcome === "applied"
          ? "Replayed: " + r.outcome
          : "Replayed, " + r.outcome + (r.detail ? ": " + r.detail : ""));
        await reload();
      } catch (err) {
        toast(err.message);
      } finally {
        b.disabled = false;
      }
    });
    action.appendChild(b);
  }
  tr.appendChild(action);
  return tr;
}

function query() {
  const form = new FormData($("filters"));
  const q = new URLSearchParams();
  for (const [k, v] of form) if (v) q.set(k, v);
  q.set("take", "50");
  if (cursor) q.set("cursor", cursor);
  return q.toString();
}

async function loadLog(append) {
  const page = await api("/channel-log?" + query());
  const body = $("entries");
  if (!append) body.replaceChildren();
  for (const e of page.items) body.appendChild(row(e));
  if (!body.children.length) {
    const tr = el("tr");
    tr.appendChild(el("td", "No entries", "sub"));
    body.appendChild(tr);
  }
  cursor = page.cursor || null;
  $("more").hidden = !cursor;
}

async function reload() {
  cursor = null;
  await Promise.all([loadOverview(), loadLog(false)]);
}

document.addEventListener("DOMContentLoaded", async () => {
  try {
    const me = await api("/me");
    csrf = me.csrf;
    $("who").textContent = me.agent.name;
    $("app").hidden = false;
  } catch (err) {
    $("signed-out").hidden = false;
    return;
  }
  $("filters").addEventListener("change", () => { cursor = null; loadLog(false).catch((e) => toast(e.message)); });
  $("refresh").addEventListener("click", () => reload().catch((e) => toast(e.message)));
  $("more").addEventListener("click", () => loadLog(true).catch((e) => toast(e.message)));
  await reload().catch((e) => toast(e.message));
});
