// What every console page shares (loaded before the page's own script, which sees these
// globals): the element lookup, the CSRF token of the session, the JSON API call and the toast.
"use strict";

const $ = (id) => document.getElementById(id);
let csrf = null;

async function api(path, options = {}) {
  const headers = { "content-type": "application/json" };
  if (csrf) headers["x-csrf-token"] = csrf;
  const response = await fetch("/console/api" + path, {
    method: options.method || "GET",
    headers,
    credentials: "same-origin",
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(data.message || response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
}

function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
}
