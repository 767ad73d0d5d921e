// The dashboard's Dependencies panel: each dependency's circuit breaker, bulkhead and rate
// limit, as the server's process sees them (GET /api/dependencies). Shown on the
// executions page when a step names a dependency.

import { api, h, when } from "./dom.js"

const breakerColor = { closed: "succeeded", "half-open": "waiting", open: "failed" }

const breakerCell = (b) => {
  if (!b) return h("td", {}, "—")
  const detail = b.state === "open"
    ? `probes at ${when(b.probeAt)}`
    : b.state === "half-open" ? "probe calls decide" : `${b.failures}/${b.calls} failed, ${b.consecutiveFailures} in a row`
  return h("td", {},
    h("span", { class: `badge ${breakerColor[b.state]}`, "data-testid": "breaker" }, b.state), " ",
    h("span", { class: "hint" }, detail))
}

const refusedText = (refused) =>
  Object.entries(refused).filter(([, n]) => n > 0).map(([tag, n]) => `${n} ${tag}`).join(", ") || "0"

/** the panel, or null when no step names a dependency */
export const dependenciesPanel = async () => {
  const deps = await api("/api/dependencies")
  if (deps.length === 0) return null
  return h("div", { class: "card", "data-testid": "dependencies" },
    h("h2", {}, "Dependencies"),
    h("table", {},
      h("thead", {}, h("tr", {}, ["Dependency", "Circuit breaker", "Bulkhead", "Rate limit", "Calls", "Failed", "Refused"].map((t) => h("th", {}, t)))),
      h("tbody", {}, deps.map((d) =>
        h("tr", { "data-testid": "dependency", "data-name": d.name, "data-breaker": d.breaker?.state ?? "" },
          h("td", { class: "mono" }, d.name),
          breakerCell(d.breaker),
          h("td", {}, d.bulkhead ? `${d.bulkhead.running}/${d.bulkhead.concurrency} running, ${d.bulkhead.queued}/${d.bulkhead.queue} queued` : "—"),
          h("td", {}, d.rateLimit ? `${d.rateLimit.available}/${d.rateLimit.limit} free` : "—"),
          h("td", {}, String(d.calls)),
          h("td", {}, String(d.failures)),
          h("td", { "data-testid": "refused" }, refusedText(d.refused)))))),
    h("p", { class: "hint" }, "The state of the server's process: with several runners, each keeps its own."))
}
