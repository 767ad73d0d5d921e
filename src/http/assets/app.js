/* global document, window, location, history, EventSource, requestAnimationFrame, URLSearchParams, FormData */
// The Proctor dashboard: plain JavaScript over the HTTP API (/api/...) and the live
// event stream (/events). No build step, no external assets.

import { STATUSES, api, h, badge, elapsed, when, toast, dismissToast } from "./dom.js"
import { dependenciesPanel } from "./dependencies.js"
import { rolloutsPanel } from "./rollouts.js"
import { eventForm, skeleton } from "./forms.js"

// ---------------------------------------------------------------------------
// state

const state = {
  procedures: [],
  /** whether a step names a dependency: the list page then refreshes its panel now and then */
  dependencies: false,
  rollouts: false,
  filter: new Set(),
  /** the tenant filter ("" for all) */
  tenant: "",
  route: { page: "list" }
}
const procedureOf = (s) =>
  state.procedures.find((p) => p.name === s.procedure && p.version === s.version) ??
    state.procedures.find((p) => p.name === s.procedure)

// ---------------------------------------------------------------------------
// routing

const parseRoute = () => {
  const m = /^\/executions\/([^/]+)\/?$/.exec(location.pathname)
  return m ? { page: "execution", id: decodeURIComponent(m[1]) } : { page: "list" }
}
const navigate = (path) => {
  dismissToast()
  history.pushState(null, "", path)
  state.route = parseRoute()
  render()
}
document.addEventListener("click", (e) => {
  const a = e.target.closest("a[data-link]")
  if (a && a.origin === location.origin && !e.metaKey && !e.ctrlKey && e.button === 0) {
    e.preventDefault()
    navigate(a.pathname)
  }
})
window.addEventListener("popstate", () => {
  state.route = parseRoute()
  render()
})

// ---------------------------------------------------------------------------
// the executions list

const listView = async () => {
  const root = h("div", {})
  const filters = h("div", { class: "filters", role: "group", "aria-label": "status filter" },
    h("button", {
      class: "chip",
      "aria-pressed": String(state.filter.size === 0),
      onclick: () => {
        state.filter.clear()
        render()
      }
    }, "all"),
    STATUSES.map((s) =>
      h("button", {
        class: "chip",
        "data-testid": `filter-${s}`,
        "aria-pressed": String(state.filter.has(s)),
        onclick: () => {
          if (state.filter.has(s)) state.filter.delete(s)
          else state.filter.add(s)
          render()
        }
      }, s.replace("_", " "))
    ))
  const params = new URLSearchParams({ limit: "200" })
  if (state.filter.size > 0) params.set("status", [...state.filter].join(","))
  if (state.tenant !== "") params.set("tenant", state.tenant)
  const rows = await api(`/api/executions?${params}`)
  rows.sort((a, b) => b.startedAt - a.startedAt)
  // the tenant column only when some execution has one
  const tenants = rows.some((s) => s.tenant !== undefined)
  const table = rows.length === 0
    ? h("p", { class: "empty" }, "No executions match. Start one below, or with `proctor run <module>`.")
    : h("table", { "data-testid": "executions" },
      h("thead", {}, h("tr", {}, ["Execution", "Procedure", ...(tenants ? ["Tenant"] : []), "State", "Status", "Elapsed", "Started"].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows.map((s) => row(s, tenants))))
  const tenantFilter = h("form", {
    class: "filters",
    onsubmit: (e) => {
      e.preventDefault()
      state.tenant = new FormData(e.target).get("tenant").trim()
      e.target.querySelector("input").blur()
      render()
    }
  },
  h("label", { for: "tenant-filter" }, "Tenant"),
  h("input", { id: "tenant-filter", name: "tenant", "data-testid": "tenant-filter", value: state.tenant, placeholder: "all tenants" }))
  const dependencies = await dependenciesPanel()
  state.dependencies = dependencies !== null
  const rollouts = await rolloutsPanel(render)
  state.rollouts = rollouts !== null
  // the versions' in-flight counts change with every execution: read them with the list
  state.procedures = await api("/api/procedures")
  root.append(
    h("h1", {}, "Executions"),
    h("div", { class: "card" }, filters, tenantFilter, table),
    ...(rollouts === null ? [] : [rollouts]),
    ...(dependencies === null ? [] : [dependencies]),
    versionsCard(),
    startForm()
  )
  return root
}

/** how many executions run on each version of each procedure (one grouped count on the server) */
const versionsCard = () =>
  state.procedures.length === 0 ? h("div") : h("div", { class: "card", "data-testid": "versions" },
    h("h2", {}, "Versions in flight"),
    h("table", {},
      h("thead", {}, h("tr", {}, ["Procedure", "Version", "In flight"].map((t) => h("th", {}, t)))),
      h("tbody", {}, state.procedures.map((p) =>
        h("tr", { "data-testid": "version-row", "data-procedure": p.name, "data-version": String(p.version) },
          h("td", {}, p.name), h("td", {}, `v${p.version}`), h("td", { "data-testid": "in-flight" }, String(p.inFlight ?? 0)))))))

const row = (s, tenants) =>
  h("tr", { "data-testid": "execution-row", "data-id": s.id, "data-status": s.status, "data-state": s.state },
    h("td", { class: "mono" }, h("a", { href: `/executions/${encodeURIComponent(s.id)}`, "data-link": true }, s.id.slice(0, 8))),
    h("td", {}, `${s.procedure}@${s.version}`),
    tenants ? h("td", { "data-testid": "tenant" }, s.tenant ?? "") : null,
    h("td", { "data-testid": "state" }, s.state),
    h("td", {}, badge(s.status)),
    h("td", {}, elapsed(s)),
    h("td", {}, when(s.startedAt)))

const startForm = () => {
  if (state.procedures.length === 0) return h("div")
  const select = h("select", { name: "procedure", "data-testid": "start-procedure" },
    state.procedures.map((p) => h("option", { value: `${p.name}@${p.version}` }, `${p.name}@${p.version}`)))
  const input = h("textarea", { name: "input", "data-testid": "start-input", spellcheck: "false" })
  const fill = () => {
    const p = state.procedures[select.selectedIndex]
    input.value = JSON.stringify(skeleton(p.input), null, 2)
  }
  select.addEventListener("change", fill)
  fill()
  const form = h("form", {
    class: "start card",
    "data-testid": "start-form",
    onsubmit: async (e) => {
      e.preventDefault()
      const p = state.procedures[select.selectedIndex]
      let parsed
      try {
        parsed = JSON.parse(input.value)
      } catch (error) {
        return toast(`The input is not valid JSON: ${error.message}`, true)
      }
      try {
        const s = await api("/api/executions", { method: "POST", body: { procedure: p.name, version: p.version, input: parsed } })
        toast(`Started ${s.id.slice(0, 8)}`)
        navigate(`/executions/${encodeURIComponent(s.id)}`)
      } catch (error) {
        toast(error.message, true)
      }
    }
  },
  h("h2", {}, "Start an execution"),
  h("label", {}, "Procedure"), select,
  h("label", {}, "Input (JSON)"), input,
  h("p", {}, h("button", { class: "primary", type: "submit" }, "Start")))
  return form
}

// ---------------------------------------------------------------------------
// one execution

// what the execution accepts now comes from the server (`allowed`, computed by the
// runtime's own rules): the dashboard keeps no table of its own
const can = (s, op) => s.allowed.commands.includes(op)

const operate = async (id, operation, body) => {
  try {
    const s = await api(`/api/executions/${encodeURIComponent(id)}/${operation}`, { method: "POST", body })
    toast(`${operation}: now ${s.status} in ${s.state}`)
  } catch (error) {
    toast(error.message, true)
  }
  if (state.route.page === "execution" && state.route.id === id) render()
}

const executionView = async (id) => {
  const enc = encodeURIComponent(id)
  let s
  try {
    s = await api(`/api/executions/${enc}`)
  } catch (error) {
    return h("div", {}, h("h1", {}, "Execution not found"), h("p", {}, error.message), h("a", { href: "/", "data-link": true }, "← all executions"))
  }
  const [history, errors, children] = await Promise.all([
    api(`/api/executions/${enc}/history`),
    api(`/api/executions/${enc}/errors`),
    api(`/api/executions?parentId=${enc}`)
  ])
  const link = (id) => h("a", { href: `/executions/${encodeURIComponent(id)}`, "data-link": true, class: "mono" }, id)
  const procedure = procedureOf(s)

  const header = h("div", { class: "card", "data-testid": "execution", "data-status": s.status, "data-state": s.state },
    h("h1", {}, `${s.procedure}@${s.version} `, badge(s.status)),
    h("dl", { class: "meta" },
      h("dt", {}, "id"), h("dd", { class: "mono" }, s.id),
      h("dt", {}, "state"), h("dd", { "data-testid": "current-state" }, s.state),
      h("dt", {}, "elapsed"), h("dd", {}, elapsed(s)),
      h("dt", {}, "started"), h("dd", {}, when(s.startedAt)),
      s.outcome ? [h("dt", {}, "outcome"), h("dd", {}, s.outcome)] : [],
      s.runner ? [h("dt", {}, "runner"), h("dd", { class: "mono", "data-testid": "runner" }, s.runner)] : [],
      s.error ? [h("dt", {}, "error"), h("dd", { class: "bad" }, `${s.error.tag}: ${s.error.message}`)] : [],
      s.timerDueAt ? [h("dt", {}, "timer due"), h("dd", {}, when(s.timerDueAt))] : [],
      s.parentId ? [h("dt", {}, "parent"), h("dd", { "data-testid": "parent" }, link(s.parentId))] : []),
    actions(s, procedure))

  const diagram = h("div", { class: "card" }, h("h2", {}, "Diagram"), diagramOf(procedure, s, history))
  const left = h("div", {}, header, diagram, eventForm(s, procedure, render),
    h("div", { class: "card" }, h("h2", {}, "Context"), h("pre", { class: "context", "data-testid": "context" }, JSON.stringify(s.context, null, 2))))
  const right = h("div", {},
    h("div", { class: "card" }, h("h2", {}, `History (${history.length})`),
      h("ol", { class: "timeline", "data-testid": "timeline" }, history.map((t) =>
        h("li", { "data-seq": t.seq },
          h("div", {}, h("strong", {}, t.from === "" ? `→ ${t.to}` : `${t.from} → ${t.to}`), " ", badge(t.status)),
          h("div", { class: "when" }, `#${t.seq} · ${when(t.at)} · ${t.cause}${t.seq > 1 ? ` · after ${Math.round(t.duration)}ms` : ""}`),
          t.reason === undefined ? null : h("div", { class: "reason", "data-testid": "transition-reason" }, `${t.cause}: ${t.reason}`))))),
    children.length === 0 ? null : h("div", { class: "card" }, h("h2", {}, `Children (${children.length})`),
      h("ul", { class: "children", "data-testid": "children" }, children.map((c) =>
        h("li", {}, link(c.id), ` ${c.procedure}@${c.version} · ${c.state} `, badge(c.status))))),
    h("div", { class: "card" }, h("h2", {}, `Errors (${errors.length})`),
      errors.length === 0
        ? h("p", { class: "hint" }, "none")
        : h("ul", { class: "errors", "data-testid": "errors" }, errors.map((e) =>
          h("li", {}, `${when(e.at)} · ${e.state} · attempt ${e.attempt}${e.transient ? " (transient)" : ""}: ${e.tag}: ${e.message}`)))))
  return h("div", {}, h("p", {}, h("a", { href: "/", "data-link": true }, "← all executions")), h("div", { class: "grid" }, left, right))
}

// the state picked to skip to, per execution: a live update redraws the page and must not reset it
const skipChoice = new Map()
// the reason typed for a cancel, per execution, kept the same way
const cancelReason = new Map()

const actions = (s, procedure) => {
  const button = (op, label, cls) =>
    h("button", { class: cls, "data-testid": `action-${op}`, disabled: !can(s, op), onclick: () => operate(s.id, op) }, label)
  // the procedure's own states: not a history pseudo-state, nor a state of a region or of an SCXML chart
  const states = procedure ? procedure.states.filter((x) => x.kind !== "history" && x.runsIn === undefined).map((x) => x.name) : []
  const chosen = skipChoice.get(s.id) ?? s.state
  const picker = h("select", {
    "data-testid": "skip-state",
    "aria-label": "state to skip to",
    disabled: !can(s, "skip"),
    onchange: () => skipChoice.set(s.id, picker.value)
  }, states.map((n) => h("option", { value: n, selected: n === chosen }, n)))
  return h("div", { class: "actions" },
    button("pause", "Pause"),
    button("resume", "Resume"),
    button("retry", "Retry"),
    button("rollback", "Roll back", "danger"),
    cancelForm(s),
    h("span", { class: "hint" }, "skip to"), picker,
    h("button", { "data-testid": "action-skip", disabled: !can(s, "skip"), onclick: () => {
      skipChoice.delete(s.id)
      operate(s.id, "skip", { state: picker.value })
    } }, "Skip"))
}

/**
 * Cancel, with an optional reason the runtime records on the history's cancel row. A form,
 * so that a live update does not redraw the field while someone types in it.
 */
const cancelForm = (s) => {
  const allowed = can(s, "cancel")
  const reason = h("input", {
    type: "text",
    name: "reason",
    "data-testid": "cancel-reason",
    "aria-label": "why cancel (optional)",
    placeholder: "reason (optional)",
    maxlength: 1000,
    disabled: !allowed,
    value: cancelReason.get(s.id) ?? "",
    oninput: () => cancelReason.set(s.id, reason.value)
  })
  return h("form", {
    class: "cancel",
    "data-testid": "cancel-form",
    onsubmit: (e) => {
      e.preventDefault()
      const why = reason.value.trim()
      cancelReason.delete(s.id)
      reason.blur()
      operate(s.id, "cancel", why === "" ? undefined : { reason: why })
    }
  }, reason, h("button", { type: "submit", class: "danger", "data-testid": "action-cancel", disabled: !allowed }, "Cancel"))
}

const diagramOf = (procedure, s, history) => {
  const box = h("div", { class: "diagram", "data-testid": "diagram" })
  if (!procedure) {
    box.append(h("p", { class: "hint" }, "This procedure is not registered with the server."))
    return box
  }
  // the SVG is generated by the server from the procedure's definition (names escaped)
  box.innerHTML = procedure.svg
  const nodes = new Map([...box.querySelectorAll("g.node")].map((node) => [node.getAttribute("data-state"), node]))
  // a state and the compound and parallel states holding it (the SVG's data-parent)
  const withAncestors = (names) => {
    const out = new Set()
    for (let name of names) {
      while (name !== null && nodes.has(name) && !out.has(name)) {
        out.add(name)
        name = nodes.get(name).getAttribute("data-parent")
      }
    }
    return out
  }
  // the active configuration: the active states (several in parallel regions) and their ancestors
  // the runtime's answer (Runtime.configuration): nested, chart and parallel regions' states
  const active = withAncestors(s.configuration ?? [s.state])
  const visited = withAncestors(history.map((t) => t.to))
  for (const [name, node] of nodes) {
    const container = node.classList.contains("container")
    node.classList.toggle("visited", visited.has(name) && !active.has(name))
    node.classList.toggle("current", active.has(name) && !container)
    node.classList.toggle("active", active.has(name) && container)
  }
  return box
}

// ---------------------------------------------------------------------------
// rendering, coalesced: live events only mark the page dirty

let rendering = false
let dirty = false
const render = async () => {
  if (rendering) {
    dirty = true
    return
  }
  rendering = true
  try {
    const app = document.getElementById("app")
    const active = document.activeElement
    if (active && ["INPUT", "TEXTAREA", "SELECT"].includes(active.tagName) && active.closest("form")) {
      // do not redraw a form the user is typing in; draw when they leave it
      dirty = true
      return
    }
    const view = state.route.page === "execution" ? await executionView(state.route.id) : await listView()
    app.replaceChildren(view)
    document.body.dataset.rendered = String(Date.now())
  } catch (error) {
    if (error.status === 401) {
      document.getElementById("app").replaceChildren(
        h("h1", {}, "Token required"),
        h("p", {}, "Open this page with ?token=<token> (the token the server was started with)."))
    } else toast(error.message, true)
  } finally {
    rendering = false
    if (dirty) {
      dirty = false
      requestAnimationFrame(() => render())
    }
  }
}
document.addEventListener("focusout", () => {
  if (dirty) requestAnimationFrame(() => render())
})

const connect = () => {
  const live = document.getElementById("live")
  const source = new EventSource("/events")
  source.addEventListener("open", () => {
    live.textContent = "● live"
    live.classList.add("on")
  })
  source.addEventListener("ready", () => render())
  source.addEventListener("execution", (message) => {
    const event = JSON.parse(message.data)
    if (state.route.page === "list" || state.route.id === event.executionId) render()
  })
  source.addEventListener("error", () => {
    live.textContent = "● reconnecting"
    live.classList.remove("on")
  })
}

const main = async () => {
  state.route = parseRoute()
  try {
    state.procedures = await api("/api/procedures")
  } catch (error) {
    if (error.status !== 401) toast(error.message, true)
  }
  document.getElementById("toast").addEventListener("click", dismissToast)
  await render()
  connect()
  // a breaker changes on failed attempts, a rollout's health with its versions' executions: no live event of theirs says so
  window.setInterval(() => {
    if (state.route.page === "list" && (state.dependencies || state.rollouts)) render()
  }, 3000)
}

main()
