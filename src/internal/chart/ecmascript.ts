/**
 * The SCXML ECMAScript data model: variables in a plain object, expressions and scripts
 * compiled with `new Function` and run against it through a `with` scope. This RUNS THE
 * DOCUMENT'S CODE with the rights of the process: load only SCXML documents you trust.
 * Also the executor of executable content (`raise`, `send`, `assign`, `if`, ...): an error
 * in a block raises `error.execution` and stops that block, as the standard asks.
 */
import type { Block, Content, Executable, Expr, Param } from "./scxml.js"
import { parseXml, XmlDom } from "./xml.js"

/** An SCXML event as the data model sees it (`_event`). */
export interface ScxmlEvent {
  readonly name: string
  readonly type: "platform" | "internal" | "external"
  readonly sendid?: string | undefined
  readonly origin?: string | undefined
  readonly origintype?: string | undefined
  readonly invokeid?: string | undefined
  readonly data?: unknown
}

/** What executable content needs from the session running it. */
export interface Host {
  readonly sessionId: string
  raise(event: ScxmlEvent): void
  /**
   * Queues an external event for `target` (undefined: this session) after `delay` ms;
   * `id` lets `cancel` find it. False when no session answers to `target`.
   */
  send(event: ScxmlEvent, delay: number, id: string, target: string | undefined): boolean
  cancel(id: string): void
  isActive(state: string): boolean
  log(label: string | undefined, value: unknown): void
}

export const scxmlProcessor = "http://www.w3.org/TR/scxml/#SCXMLEventProcessor"

const scopeName = "__proctorScope$"
const valueName = "__proctorValue$"
const systemNames = new Set(["_event", "_sessionid", "_name", "_ioprocessors", "In"])
const identifier = /^[A-Za-z_$][\w$]*$/
// one compiled function per source text, shared by all sessions: the code is a function of the scope
const compiled = new Map<string, (scope: object, value?: unknown) => unknown>()

const compile = (key: string, body: string) => {
  let f = compiled.get(key)
  if (f === undefined) {
    f = new Function(scopeName, valueName, `with (${scopeName}) {\n${body}\n}`) as (scope: object, value?: unknown) => unknown
    if (compiled.size > 10_000) compiled.clear()
    compiled.set(key, f)
  }
  return f
}

/** A failure inside executable content, turned into an `error.execution` event by the block runner. */
class ExecutionError extends Error {}

/** Where an error happened, as `_event.data` of `error.execution` (the fields SCION's tests check). */
interface ErrorData {
  readonly tagname: string
  readonly line: number
  readonly column: number
  readonly reason: string
}

class ElementError extends Error {
  constructor(readonly data: ErrorData) {
    super(data.reason)
  }
}

/** The element already raised its own error event (a failed `<send>`): only the rest of the block stops. */
class Stop extends Error {}

const reasonOf = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error))

/** Builds an event with every field `_event` must have, unset ones undefined. */
export const makeEvent = (name: string, type: ScxmlEvent["type"], fields: Partial<ScxmlEvent> = {}): ScxmlEvent => ({
  name,
  type,
  sendid: fields.sendid,
  origin: fields.origin,
  origintype: fields.origintype,
  invokeid: fields.invokeid,
  data: fields.data
})

/** Expressions are written with or without a trailing semicolon. */
const expression = (expr: Expr) => {
  // a loop, not a regex: /[\s;]+$/ backtracks quadratically on a long run of spaces
  let out = expr.trimEnd()
  while (out.endsWith(";")) out = out.slice(0, -1).trimEnd()
  return out
}

export class EcmaDataModel {
  // no prototype: names such as "constructor" or "toString" are not variables until declared
  readonly data: Record<string, unknown> = Object.create(null)
  event: ScxmlEvent | undefined
  /** how many send ids were generated: a restored session goes on counting, so ids stay unique */
  sends = 0
  private readonly system: Record<string, unknown>
  private readonly scope: object

  constructor(readonly host: Host, name: string | undefined) {
    const location = `#_scxml_${host.sessionId}`
    this.system = {
      _sessionid: host.sessionId,
      _name: name,
      _ioprocessors: { [scxmlProcessor]: { location }, scxml: { location } },
      In: (state: string) => host.isActive(state)
    }
    const data = this.data
    const system = this.system
    const self = this
    this.scope = new Proxy(data, {
      // every name not a real global resolves here, so undeclared reads throw and sloppy writes land in `data`
      has: (_, key) => typeof key === "string" && key !== scopeName && key !== valueName && (key in data || systemNames.has(key) || !(key in globalThis)),
      get: (_, key) => {
        if (typeof key !== "string") return undefined
        if (key in data) return data[key]
        if (key === "_event") return self.event
        if (key in system) return system[key]
        throw new ReferenceError(`${key} is not defined`)
      },
      set: (_, key, value) => {
        if (typeof key !== "string" || systemNames.has(key)) throw new ExecutionError(`${String(key)} is a system variable and cannot be assigned`)
        data[key] = value
        return true
      }
    })
  }

  evaluate(expr: Expr): unknown {
    return compile(`e:${expr}`, `return (${expression(expr)}\n)`)(this.scope)
  }

  declare(id: string, value: unknown) {
    this.data[id] = value
  }

  assign(location: Expr, value: unknown) {
    const root = /^\s*([A-Za-z_$][\w$]*)/.exec(location)?.[1]
    if (root === undefined || systemNames.has(root)) throw new ExecutionError(`cannot assign to "${location}"`)
    if (!(root in this.data)) throw new ExecutionError(`"${root}" is not declared in the data model`)
    compile(`a:${location}`, `${location} = ${valueName}`)(this.scope, value)
  }

  script(source: string) {
    // function declarations are block-scoped inside `with`: copy each declared name that is
    // visible at the script's top level into the data model (nested ones are not, and are skipped)
    const names = [...new Set([...source.matchAll(/\bfunction\s+([A-Za-z_$][\w$]*)/g)].map((m) => m[1]!))]
    const exports = names.map((n) => `try { if (typeof ${n} === "function") ${scopeName}.${n} = ${n} } catch (e) {}`).join("\n")
    compile(`s:${source}`, `${source}\n;${exports}`)(this.scope)
  }

  /** `<content>`: the value of its expression, or its text (parsed as JSON when it is JSON). */
  content(content: Content): unknown {
    if (content.expr !== undefined) return this.evaluate(content.expr)
    return literal(content.text ?? "")
  }

  /** Runs a block of executable content; an error raises `error.execution` and ends the block. */
  run(block: Block) {
    try {
      for (const element of block.content) this.execute(element)
    } catch (error) {
      if (error instanceof Stop) return
      const data = error instanceof ElementError ? error.data : { tagname: "", line: block.line, column: 0, reason: reasonOf(error) }
      this.host.raise(makeEvent("error.execution", "platform", { data }))
    }
  }

  /** Evaluates a guard; an error counts as false and raises `error.execution`. */
  cond(expr: Expr): boolean {
    try {
      return Boolean(this.evaluate(expr))
    } catch (error) {
      this.host.raise(makeEvent("error.execution", "platform", { data: { tagname: "transition", line: 0, column: 0, reason: reasonOf(error) } }))
      return false
    }
  }

  /** The data of an event built from `namelist`, `<param>` and `<content>`. */
  eventData(namelist: ReadonlyArray<string>, params: ReadonlyArray<Param>, content: Content | undefined): unknown {
    if (content !== undefined) return this.content(content)
    if (namelist.length === 0 && params.length === 0) return undefined
    const out: Record<string, unknown> = {}
    for (const name of namelist) {
      if (!(name in this.data)) throw new ExecutionError(`the namelist names "${name}", which is not declared`)
      out[name] = this.data[name]
    }
    for (const p of params) {
      out[p.name] = p.expr !== undefined ? this.evaluate(p.expr) : p.location !== undefined ? this.evaluate(p.location) : undefined
    }
    return out
  }

  private execute(e: Executable): void {
    try {
      this.element(e)
    } catch (error) {
      if (error instanceof ElementError || error instanceof Stop) throw error
      throw new ElementError({ tagname: e.kind, line: e.line, column: e.column, reason: reasonOf(error) })
    }
  }

  private element(e: Executable): void {
    switch (e.kind) {
      case "raise":
        return this.host.raise(makeEvent(e.event, "internal"))
      case "log":
        return this.host.log(e.label, e.expr === undefined ? undefined : this.evaluate(e.expr))
      case "assign":
        return this.assign(e.location, e.expr !== undefined ? this.evaluate(e.expr) : e.content !== undefined ? this.content(e.content) : undefined)
      case "script":
        return this.script(e.source)
      case "if": {
        const branch = e.branches.find((b) => b.cond === undefined || Boolean(this.evaluate(b.cond)))
        for (const child of branch?.body ?? []) this.execute(child)
        return
      }
      case "foreach":
        return this.foreach(e)
      case "send":
        return this.send(e)
      case "cancel":
        return this.host.cancel(e.sendid ?? String(this.evaluate(e.sendidexpr ?? "undefined")))
    }
  }

  private foreach(e: Extract<Executable, { kind: "foreach" }>) {
    const array = this.evaluate(e.array)
    if (array === null || typeof array !== "object" || !(Symbol.iterator in array)) {
      throw new ExecutionError(`foreach: "${e.array}" is not an array`)
    }
    for (const name of [e.item, e.index]) {
      if (name !== undefined && (!identifier.test(name) || systemNames.has(name))) throw new ExecutionError(`foreach: "${name}" is not a variable name`)
    }
    const items = [...(array as Iterable<unknown>)]
    items.forEach((item, i) => {
      this.data[e.item] = item
      if (e.index !== undefined) this.data[e.index] = i
      for (const child of e.body) this.execute(child)
    })
  }

  private send(e: Extract<Executable, { kind: "send" }>) {
    const name = e.event ?? (e.eventexpr !== undefined ? String(this.evaluate(e.eventexpr)) : undefined)
    const target = e.target ?? (e.targetexpr !== undefined ? String(this.evaluate(e.targetexpr)) : undefined)
    const type = e.type ?? (e.typeexpr !== undefined ? String(this.evaluate(e.typeexpr)) : undefined)
    const delayText = e.delay ?? (e.delayexpr !== undefined ? String(this.evaluate(e.delayexpr)) : undefined)
    let id = e.id
    if (id === undefined) {
      id = `send.${this.host.sessionId}.${++this.sends}`
      if (e.idlocation !== undefined) this.assign(e.idlocation, id)
    }
    const sendid = e.id !== undefined || e.idlocation !== undefined ? id : undefined
    const failed = (name: string, reason: string) => {
      this.host.raise(makeEvent(name, "platform", { sendid, data: { tagname: "send", line: e.line, column: e.column, reason } }))
      throw new Stop(reason)
    }
    if (type !== undefined && type !== scxmlProcessor && type !== "scxml") {
      return failed("error.execution", `the event processor type "${type}" is not supported`)
    }
    const delay = delayText === undefined ? 0 : parseDelay(delayText)
    const data = this.eventData(e.namelist, e.params, e.content)
    const origin = `#_scxml_${this.host.sessionId}`
    const event = makeEvent(name ?? "", "external", { sendid, origin, origintype: scxmlProcessor, data })
    if (target === "#_internal") return this.host.raise({ ...event, type: "internal" })
    if (this.host.send(event, delay, id, target)) return
    // a session, parent or invoked child that is not there; any other target is not a valid one
    if (target!.startsWith("#_")) return failed("error.communication", `the send target "${target}" cannot be reached`)
    return failed("error.execution", `the send target "${target}" is not valid`)
  }
}

/** Parses a CSS2 time (`5s`, `.5s`, `100ms`, or a bare number of ms) into milliseconds. */
export const parseDelay = (text: string): number => {
  const m = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*$/.exec(text)
  if (m === null) throw new ExecutionError(`"${text}" is not a delay (write e.g. "5s" or "100ms")`)
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? "ms"]!
  return Number(m[1]) * unit
}

/** Inline content: JSON when it parses as JSON, a DOM view when it is XML, otherwise the text with its spaces collapsed. */
const literal = (text: string): unknown => {
  const trimmed = text.trim()
  try {
    return JSON.parse(trimmed)
  } catch {
    if (trimmed.startsWith("<")) {
      try {
        return new XmlDom(parseXml(trimmed))
      } catch {
        // not XML after all: keep the text
      }
    }
    return trimmed.replace(/\s+/g, " ")
  }
}
