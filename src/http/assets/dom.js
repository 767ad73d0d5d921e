/* global document, window, location, history, sessionStorage, fetch, URLSearchParams */
// The dashboard's plumbing: the status names, the API client (with the token given once as
// ?token=) and tiny DOM helpers. No state of the page: that lives in app.js.

export const STATUSES = ["running", "waiting", "paused", "needs_intervention", "compensating", "succeeded", "failed", "cancelled", "rolled_back"]
export const TERMINAL = new Set(["succeeded", "failed", "cancelled", "rolled_back"])

// ---------------------------------------------------------------------------
// auth: a token given once as ?token= is kept for this tab and sent as a header

export const TOKEN_KEY = "proctor-token"
{
  const params = new URLSearchParams(location.search)
  const given = params.get("token")
  if (given !== null) {
    sessionStorage.setItem(TOKEN_KEY, given)
    params.delete("token")
    const rest = params.toString()
    history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : "") + location.hash)
  }
}
const token = () => sessionStorage.getItem(TOKEN_KEY)

export const api = async (path, options = {}) => {
  const headers = { accept: "application/json" }
  if (options.body !== undefined) headers["content-type"] = "application/json"
  const t = token()
  if (t) headers.authorization = `Bearer ${t}`
  const response = await fetch(path, {
    method: options.method ?? "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body)
  })
  const text = await response.text()
  const data = text === "" ? null : JSON.parse(text)
  if (!response.ok) {
    const error = new Error(data?.message ?? `${response.status} ${response.statusText}`)
    error.status = response.status
    throw error
  }
  return data
}

// ---------------------------------------------------------------------------
// tiny DOM helpers (text goes through textContent: no HTML injection)

export const h = (tag, attrs = {}, ...children) => {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    if (k === "class") el.className = v
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v)
    else if (k === "dataset") Object.assign(el.dataset, v)
    else el.setAttribute(k, v === true ? "" : String(v))
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue
    el.append(c instanceof window.Node ? c : document.createTextNode(String(c)))
  }
  return el
}

export const badge = (status) => h("span", { class: `badge ${status}`, "data-testid": "status" }, status.replace("_", " "))

export const elapsed = (s) => {
  const ms = (TERMINAL.has(s.status) ? s.updatedAt : Date.now()) - s.startedAt
  if (ms < 1000) return `${Math.max(0, ms)}ms`
  if (ms < 60000) return `${(ms / 1000).toFixed(1)}s`
  const sec = Math.floor(ms / 1000)
  if (sec < 3600) return `${Math.floor(sec / 60)}m${String(sec % 60).padStart(2, "0")}s`
  return `${Math.floor(sec / 3600)}h${String(Math.floor(sec / 60) % 60).padStart(2, "0")}m`
}
export const when = (at) => new Date(at).toLocaleString()

export const toast = (message, isError = false) => {
  const el = document.getElementById("toast")
  el.textContent = message
  el.className = isError ? "toast error" : "toast"
  el.hidden = false
  el.dataset.shown = String(Date.now())
}
export const dismissToast = () => {
  document.getElementById("toast").hidden = true
}
