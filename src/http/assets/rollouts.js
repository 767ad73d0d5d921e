/* global window */
// The dashboard's Rollouts panel: the latest rollout of each procedure (GET /api/rollouts):
// its phase and share, both versions' health over the phase, why it reverted, and buttons
// for the controls the server says it takes now (POST /api/rollouts/:name/:control).

import { api, h, toast } from "./dom.js"

const stateColor = { holding: "running", paused: "paused", reverting: "compensating", completed: "succeeded", reverted: "failed" }

const percent = (x) => `${(x * 100).toFixed(1)}%`
const ms = (x) => x === undefined ? "—" : x < 1000 ? `${Math.round(x)}ms` : `${(x / 1000).toFixed(1)}s`
const side = (s) => s === undefined ? "—"
  : `${s.failed}/${s.ended} failed${s.ended > 0 ? ` (${percent(s.failed / s.ended)})` : ""}, p99 ${ms(s.p99)}, ${s.restarts ?? 0} restarts`

const control = async (r, action, refresh) => {
  const body = action === "revert" ? { reason: window.prompt(`Revert the rollout of ${r.procedure}: why?`) || undefined } : {}
  try {
    const after = await api(`/api/rollouts/${encodeURIComponent(r.procedure)}/${action}`, { method: "POST", body })
    toast(`${action}: phase ${after.phase}, ${after.share}% on version ${after.to}, ${after.state}`)
  } catch (error) {
    toast(error.message, true)
  }
  refresh()
}

/** the panel, or null when there has been no rollout */
export const rolloutsPanel = async (refresh) => {
  const all = await api("/api/rollouts")
  if (all.length === 0) return null
  const latest = [...new Map(all.slice().reverse().map((r) => [r.procedure, r])).values()].reverse()
  return h("div", { class: "card", "data-testid": "rollouts" },
    h("h2", {}, "Rollouts"),
    h("table", {},
      h("thead", {}, h("tr", {}, ["Procedure", "Versions", "Phase", "Share", "State", "Old version", "New version", "Reason", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, latest.map((r) =>
        h("tr", { "data-testid": "rollout", "data-procedure": r.procedure, "data-state": r.state },
          h("td", { class: "mono" }, r.procedure),
          h("td", {}, `${r.from} → ${r.to}`),
          h("td", { "data-testid": "phase" }, `${r.phase} of ${r.phases.length}`, h("div", { class: "hint" }, r.phases.map((p) => `${p}%`).join(" · "))),
          h("td", { "data-testid": "share" }, `${r.share}%`),
          h("td", {}, h("span", { class: `badge ${stateColor[r.state] ?? "running"}` }, r.state),
            r.state === "holding" ? h("div", { class: "hint" }, `advances ${new Date(r.holdUntil).toLocaleTimeString()}`) : ""),
          h("td", { "data-testid": "health-from" }, side(r.health?.from)),
          h("td", { "data-testid": "health-to" }, side(r.health?.to)),
          h("td", { "data-testid": "reason" }, r.reason ?? ""),
          h("td", {}, r.controls.map((c) =>
            h("button", { type: "button", "data-testid": `rollout-${c}`, onclick: () => control(r, c, refresh) }, c))))))),
    h("p", { class: "hint" }, "Health is compared over the current phase and checked every 5 seconds; latency and restarts as the server's process sees them."))
}
