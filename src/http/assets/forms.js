/* global document */
// The dashboard's forms built from a JSON Schema: the skeleton input of the start form, and
// the event form of one execution (one input per field of the event's Schema).

import { TERMINAL, api, h, toast } from "./dom.js"

/** a skeleton input from a JSON Schema, to start from */
export const skeleton = (schema) => {
  if (!schema || typeof schema !== "object") return {}
  if (schema.type === "object" || schema.properties) {
    // fromEntries: a property named "__proto__" stays a property (assignment would set the prototype)
    return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([k, v]) => [k, skeleton(v)]))
  }
  if (Array.isArray(schema.enum)) return schema.enum[0]
  if (schema.type === "string") return ""
  if (schema.type === "number" || schema.type === "integer") return 0
  if (schema.type === "boolean") return false
  if (schema.type === "array") return []
  return null
}

/** one input per field of the event's JSON Schema */
const fieldInput = (name, schema, required) => {
  const id = `field-${name}`
  const label = h("label", { for: id, class: required ? "req" : undefined }, name)
  let input
  if (Array.isArray(schema.enum)) {
    input = h("select", { id, name, "data-kind": "enum" }, schema.enum.map((v) => h("option", { value: JSON.stringify(v) }, String(v))))
  } else if (schema.type === "boolean") {
    input = h("input", { id, name, type: "checkbox", "data-kind": "boolean" })
  } else if (schema.type === "number" || schema.type === "integer") {
    input = h("input", { id, name, type: "number", step: schema.type === "integer" ? "1" : "any", "data-kind": "number", required })
  } else if (schema.type === "string") {
    input = h("input", { id, name, type: "text", "data-kind": "string", required, placeholder: schema.description ?? "" })
  } else {
    input = h("textarea", { id, name, "data-kind": "json", placeholder: "JSON" })
  }
  input.setAttribute("data-testid", id)
  return [label, input]
}

export const eventForm = (s, procedure, onSent) => {
  const card = h("div", { class: "card" }, h("h2", {}, "Send an event"))
  const accepts = s.allowed.events
  if (accepts.length === 0) {
    card.append(h("p", { class: "hint" }, TERMINAL.has(s.status)
      ? "The execution has ended."
      : s.status === "compensating" ? "The execution is rolling back; it handles no more events." : `State "${s.state}" waits for no event.`))
    return card
  }
  const events = accepts.map((tag) => procedure.events.find((e) => e.tag === tag) ?? { tag, schema: {} })
  const select = h("select", { name: "event", "data-testid": "event-tag" }, events.map((e) => h("option", { value: e.tag }, e.tag)))
  const fields = h("div", {})
  const draw = () => {
    fields.replaceChildren()
    const e = events[select.selectedIndex]
    const required = new Set(e.schema.required ?? [])
    for (const [name, schema] of Object.entries(e.schema.properties ?? {})) {
      if (name === "_tag") continue
      fields.append(...fieldInput(name, schema, required.has(name)))
    }
  }
  select.addEventListener("change", draw)
  draw()
  const form = h("form", {
    class: "event",
    "data-testid": "event-form",
    onsubmit: async (ev) => {
      ev.preventDefault()
      // field names come from the event's Schema: collected as entries, so "__proto__" stays a field
      const entries = [["_tag", select.value]]
      for (const input of fields.querySelectorAll("input, select, textarea")) {
        const kind = input.dataset.kind
        if (kind === "boolean") entries.push([input.name, input.checked])
        else if (input.value === "") continue
        else if (kind === "number") entries.push([input.name, Number(input.value)])
        else if (kind === "enum") entries.push([input.name, JSON.parse(input.value)])
        else if (kind === "json") {
          try {
            entries.push([input.name, JSON.parse(input.value)])
          } catch {
            return toast(`${input.name} is not valid JSON`, true)
          }
        } else entries.push([input.name, input.value])
      }
      const body = Object.fromEntries(entries)
      try {
        await api(`/api/executions/${encodeURIComponent(s.id)}/send`, { method: "POST", body })
        toast(`Sent ${body._tag}`)
        document.activeElement?.blur()
        onSent()
      } catch (error) {
        toast(error.message, true)
      }
    }
  },
  h("label", { for: "event-tag" }, "Event"), select, fields,
  h("p", {}, h("button", { class: "primary", type: "submit", "data-testid": "send-event" }, "Send")),
  s.status === "paused" ? h("p", { class: "hint" }, "The execution is paused: the event waits in its inbox until it is resumed.") : null)
  card.append(form)
  return card
}
