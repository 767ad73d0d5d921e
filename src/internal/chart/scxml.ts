/**
 * Parses SCXML 1.0 text into the statechart model: the state tree (`state`, `parallel`,
 * `final`, `history`, `initial`, `transition`) with its executable content kept as a small
 * AST (`raise`, `log`, `assign`, `if`/`elseif`/`else`, `foreach`, `script`, `send`, `cancel`)
 * that `ecmascript.ts` runs. Expressions stay source text here: they are compiled when
 * first run, so an invalid one becomes `error.execution` at run time as the standard asks.
 * A malformed or hostile document is refused with an `XmlError` or `ScxmlError`.
 */
import { Data } from "effect"
import type { ChartDefinition, StateDefinition, TransitionDefinition } from "./model.js"
import { parseXml, serializeXml, textOf, type XmlElement, type XmlLimits } from "./xml.js"

export const scxmlNamespace = "http://www.w3.org/2005/07/scxml"

/** The document parses as XML but is not valid SCXML (or uses something this engine does not support). */
export class ScxmlError extends Data.TaggedError("ScxmlError")<{
  readonly line: number
  readonly column: number
  readonly reason: string
}> {
  override get message(): string {
    return `SCXML error at line ${this.line}, column ${this.column}: ${this.reason}`
  }
}

/** An expression or location, as source text, with where it was written (for error messages). */
export type Expr = string

export interface Param {
  readonly name: string
  readonly expr?: Expr | undefined
  readonly location?: Expr | undefined
}

/** `<content>`: an expression, or inline text (inline XML is kept as its text). */
export interface Content {
  readonly expr?: Expr | undefined
  readonly text?: string | undefined
}

/** An element of executable content, with where it was written (for `error.execution` data). */
export type Executable = ExecutableElement & { readonly line: number; readonly column: number }

type ExecutableElement =
  | { readonly kind: "raise"; readonly event: string }
  | { readonly kind: "log"; readonly label: string | undefined; readonly expr: Expr | undefined }
  | { readonly kind: "assign"; readonly location: Expr; readonly expr: Expr | undefined; readonly content: Content | undefined }
  | { readonly kind: "if"; readonly branches: ReadonlyArray<{ readonly cond: Expr | undefined; readonly body: ReadonlyArray<Executable> }> }
  | { readonly kind: "foreach"; readonly array: Expr; readonly item: string; readonly index: string | undefined; readonly body: ReadonlyArray<Executable> }
  | { readonly kind: "script"; readonly source: string }
  | {
    readonly kind: "send"
    readonly event: string | undefined
    readonly eventexpr: Expr | undefined
    readonly target: string | undefined
    readonly targetexpr: Expr | undefined
    readonly type: string | undefined
    readonly typeexpr: Expr | undefined
    readonly id: string | undefined
    readonly idlocation: Expr | undefined
    readonly delay: string | undefined
    readonly delayexpr: Expr | undefined
    readonly namelist: ReadonlyArray<string>
    readonly params: ReadonlyArray<Param>
    readonly content: Content | undefined
  }
  | { readonly kind: "cancel"; readonly sendid: string | undefined; readonly sendidexpr: Expr | undefined }

/** A block of executable content (an `onentry`, `onexit`, or a transition's body): an error stops the rest of it. */
export interface Block {
  readonly content: ReadonlyArray<Executable>
  readonly line: number
}

export interface DataDeclaration {
  readonly id: string
  readonly expr?: Expr | undefined
  readonly text?: string | undefined
  /** The state the `<data>` belongs to (for late binding); undefined for the top level. */
  readonly state: string | undefined
}

export interface DoneData {
  readonly params: ReadonlyArray<Param>
  readonly content: Content | undefined
}

/** An `<invoke>` of a child SCXML session. */
export interface Invoke {
  readonly type: string | undefined
  readonly typeexpr: Expr | undefined
  readonly src: string | undefined
  readonly srcexpr: Expr | undefined
  readonly id: string | undefined
  readonly idlocation: Expr | undefined
  readonly namelist: ReadonlyArray<string>
  readonly params: ReadonlyArray<Param>
  readonly autoforward: boolean
  /** Inline `<content>`: a child document, or an expression giving its text. */
  readonly content: { readonly document: ScxmlDocument } | { readonly expr: Expr } | undefined
  readonly finalize: Block | undefined
  readonly line: number
  readonly column: number
}

export interface ScxmlDocument {
  readonly name: string | undefined
  readonly binding: "early" | "late"
  readonly chart: ChartDefinition<Block, Expr>
  readonly data: ReadonlyArray<DataDeclaration>
  readonly scripts: ReadonlyArray<Block>
  readonly doneData: ReadonlyMap<string, DoneData>
  /** The `<invoke>`s of each state, by state id, in document order. */
  readonly invokes: ReadonlyMap<string, ReadonlyArray<Invoke>>
}

export interface ScxmlOptions extends XmlLimits {
  /** Loads the text of a `<script src>` or `<data src>`; without it such a document is refused. */
  readonly load?: ((src: string) => string | undefined) | undefined
}

interface Context {
  readonly options: ScxmlOptions
  readonly data: Array<DataDeclaration>
  readonly doneData: Map<string, DoneData>
  readonly invokes: Map<string, Array<Invoke>>
}

const fail = (at: XmlElement, reason: string): never => {
  throw new ScxmlError({ line: at.line, column: at.column, reason })
}

const attr = (el: XmlElement, name: string) => el.attributes.get(name)
const ids = (value: string | undefined) => value === undefined ? undefined : value.split(/\s+/).filter((s) => s !== "")
const scxmlChildren = (el: XmlElement): ReadonlyArray<XmlElement> =>
  el.children.filter((c): c is XmlElement => c.kind === "element" && c.namespace === scxmlNamespace)

/** Parses an SCXML document; throws an `XmlError` or `ScxmlError` with the line and column of the problem. */
export const parseScxml = (text: string, options: ScxmlOptions = {}): ScxmlDocument => documentOf(parseXml(text, options), options)

const documentOf = (root: XmlElement, options: ScxmlOptions): ScxmlDocument => {
  if (root.name !== "scxml" || root.namespace !== scxmlNamespace) {
    fail(root, `the root element must be <scxml xmlns="${scxmlNamespace}">, found <${root.name}>`)
  }
  const datamodel = attr(root, "datamodel")
  // the null data model's only expression, In(), is valid ECMAScript too
  if (datamodel !== undefined && datamodel !== "ecmascript" && datamodel !== "null") {
    fail(root, `the datamodel "${datamodel}" is not supported; use datamodel="ecmascript"`)
  }
  const binding = attr(root, "binding") ?? "early"
  if (binding !== "early" && binding !== "late") fail(root, `binding must be "early" or "late", not "${binding}"`)
  const ctx: Context = { options, data: [], doneData: new Map(), invokes: new Map() }
  const children: Array<StateDefinition<Block, Expr>> = []
  const scripts: Array<Block> = []
  for (const child of scxmlChildren(root)) {
    switch (child.name) {
      case "state":
      case "parallel":
      case "final":
        children.push(state(ctx, child))
        break
      case "datamodel":
        datamodelOf(ctx, child, undefined)
        break
      case "script":
        scripts.push({ content: [executable(ctx, child)], line: child.line })
        break
      default:
        fail(child, `<${child.name}> cannot be a child of <scxml>`)
    }
  }
  return {
    name: attr(root, "name"),
    binding: binding as "early" | "late",
    chart: { initial: ids(attr(root, "initial")), children },
    data: ctx.data,
    scripts,
    doneData: ctx.doneData,
    invokes: ctx.invokes
  }
}

const state = (ctx: Context, el: XmlElement): StateDefinition<Block, Expr> => {
  const onEntry: Array<Block> = []
  const onExit: Array<Block> = []
  const transitions: Array<TransitionDefinition<Block, Expr>> = []
  const children: Array<StateDefinition<Block, Expr>> = []
  let initialTransition: StateDefinition<Block, Expr>["initialTransition"]
  // a state that invokes needs an id to be found again when it is entered and exited
  const id = attr(el, "id") ?? (scxmlChildren(el).some((c) => c.name === "invoke") ? `#invoker${ctx.invokes.size + 1}` : undefined)
  for (const child of scxmlChildren(el)) {
    switch (child.name) {
      case "onentry":
        onEntry.push(block(ctx, child))
        break
      case "onexit":
        onExit.push(block(ctx, child))
        break
      case "transition":
        transitions.push(transition(ctx, child))
        break
      case "initial": {
        const t = scxmlChildren(child).find((c) => c.name === "transition")
        if (t === undefined) fail(child, "<initial> must hold one <transition>")
        initialTransition = { target: ids(attr(t!, "target")) ?? [], actions: [block(ctx, t!)] }
        break
      }
      case "state":
      case "parallel":
      case "final":
        if (el.name === "final") fail(child, "a <final> state cannot have child states")
        children.push(state(ctx, child))
        break
      case "history": {
        const type = attr(child, "type") ?? "shallow"
        if (type !== "shallow" && type !== "deep") fail(child, `a history type is "shallow" or "deep", not "${type}"`)
        children.push({
          id: attr(child, "id"),
          kind: "history",
          history: type as "shallow" | "deep",
          transitions: scxmlChildren(child).filter((c) => c.name === "transition").map((t) => transition(ctx, t))
        })
        break
      }
      case "datamodel":
        datamodelOf(ctx, child, id)
        break
      case "donedata":
        if (el.name !== "final" || id === undefined) fail(child, "<donedata> belongs in a <final> state with an id")
        ctx.doneData.set(id!, { params: params(ctx, child), content: contentOf(ctx, child) })
        break
      case "invoke": {
        const list = ctx.invokes.get(id!) ?? []
        list.push(invoke(ctx, child))
        ctx.invokes.set(id!, list)
        break
      }
      default:
        fail(child, `<${child.name}> cannot be a child of <${el.name}>`)
    }
  }
  return {
    id,
    kind: el.name === "parallel" ? "parallel" : el.name === "final" ? "final" : "state",
    initial: ids(attr(el, "initial")),
    initialTransition,
    onEntry,
    onExit,
    transitions,
    children
  }
}

const transition = (ctx: Context, el: XmlElement): TransitionDefinition<Block, Expr> => {
  const type = attr(el, "type")
  if (type !== undefined && type !== "internal" && type !== "external") fail(el, `a transition type is "internal" or "external", not "${type}"`)
  const content = executables(ctx, el)
  return {
    event: attr(el, "event"),
    cond: attr(el, "cond"),
    target: ids(attr(el, "target")),
    type: type as "internal" | "external" | undefined,
    actions: content.length === 0 ? [] : [{ content, line: el.line }]
  }
}

const datamodelOf = (ctx: Context, el: XmlElement, stateId: string | undefined) => {
  for (const data of scxmlChildren(el)) {
    if (data.name !== "data") fail(data, `<${data.name}> cannot be a child of <datamodel>`)
    const id = attr(data, "id")
    if (id === undefined) fail(data, "<data> needs an id")
    const src = attr(data, "src")
    const text = src !== undefined ? load(ctx, data, src) : data.children.length > 0 ? textOf(data) : undefined
    ctx.data.push({ id: id!, expr: attr(data, "expr"), text, state: stateId })
  }
}

const load = (ctx: Context, el: XmlElement, src: string): string => {
  const text = ctx.options.load?.(src)
  if (text === undefined) fail(el, `cannot load src="${src}"; pass a \`load\` option that returns its text`)
  return text!
}

const script = (ctx: Context, el: XmlElement): Extract<ExecutableElement, { kind: "script" }> => {
  const src = attr(el, "src")
  return { kind: "script", source: src !== undefined ? load(ctx, el, src) : textOf(el) }
}

const block = (ctx: Context, el: XmlElement): Block => ({ content: executables(ctx, el), line: el.line })

const executables = (ctx: Context, el: XmlElement): Array<Executable> =>
  scxmlChildren(el).map((child) => executable(ctx, child))

const required = (el: XmlElement, name: string): string => {
  const value = attr(el, name)
  if (value === undefined) fail(el, `<${el.name}> needs a ${name} attribute`)
  return value!
}

const executable = (ctx: Context, el: XmlElement): Executable => ({ ...element(ctx, el), line: el.line, column: el.column })

const element = (ctx: Context, el: XmlElement): ExecutableElement => {
  switch (el.name) {
    case "raise":
      return { kind: "raise", event: required(el, "event") }
    case "log":
      return { kind: "log", label: attr(el, "label"), expr: attr(el, "expr") }
    case "assign":
      return { kind: "assign", location: required(el, "location"), expr: attr(el, "expr"), content: el.children.length > 0 ? { text: inline(el) } : undefined }
    case "script":
      return script(ctx, el)
    case "if": {
      const branches: Array<{ cond: Expr | undefined; body: Array<Executable> }> = [{ cond: required(el, "cond"), body: [] }]
      for (const child of scxmlChildren(el)) {
        if (child.name === "elseif") branches.push({ cond: required(child, "cond"), body: [] })
        else if (child.name === "else") branches.push({ cond: undefined, body: [] })
        else branches[branches.length - 1]!.body.push(executable(ctx, child))
      }
      return { kind: "if", branches }
    }
    case "foreach":
      return { kind: "foreach", array: required(el, "array"), item: required(el, "item"), index: attr(el, "index"), body: executables(ctx, el) }
    case "send":
      return {
        kind: "send",
        event: attr(el, "event"),
        eventexpr: attr(el, "eventexpr"),
        target: attr(el, "target"),
        targetexpr: attr(el, "targetexpr"),
        type: attr(el, "type"),
        typeexpr: attr(el, "typeexpr"),
        id: attr(el, "id"),
        idlocation: attr(el, "idlocation"),
        delay: attr(el, "delay"),
        delayexpr: attr(el, "delayexpr"),
        namelist: ids(attr(el, "namelist")) ?? [],
        params: params(ctx, el),
        content: contentOf(ctx, el)
      }
    case "cancel":
      return { kind: "cancel", sendid: attr(el, "sendid"), sendidexpr: attr(el, "sendidexpr") }
    default:
      return fail(el, `<${el.name}> is not executable content (expected raise, log, assign, if, foreach, script, send or cancel)`)
  }
}

const invoke = (ctx: Context, el: XmlElement): Invoke => {
  const content = scxmlChildren(el).find((c) => c.name === "content")
  const child = content === undefined ? undefined : scxmlChildren(content).find((c) => c.name === "scxml")
  const finalize = scxmlChildren(el).find((c) => c.name === "finalize")
  return {
    type: attr(el, "type"),
    typeexpr: attr(el, "typeexpr"),
    src: attr(el, "src"),
    srcexpr: attr(el, "srcexpr"),
    id: attr(el, "id"),
    idlocation: attr(el, "idlocation"),
    namelist: ids(attr(el, "namelist")) ?? [],
    params: params(ctx, el),
    autoforward: attr(el, "autoforward") === "true",
    content: child !== undefined
      ? { document: documentOf(child, ctx.options) }
      : content !== undefined
      ? { expr: attr(content, "expr") ?? JSON.stringify(textOf(content)) }
      : undefined,
    finalize: finalize === undefined ? undefined : block(ctx, finalize),
    line: el.line,
    column: el.column
  }
}

const params = (_ctx: Context, el: XmlElement): ReadonlyArray<Param> =>
  scxmlChildren(el).filter((c) => c.name === "param").map((p) => ({
    name: required(p, "name"),
    expr: attr(p, "expr"),
    location: attr(p, "location")
  }))

const contentOf = (_ctx: Context, el: XmlElement): Content | undefined => {
  const content = scxmlChildren(el).find((c) => c.name === "content")
  if (content === undefined) return undefined
  const expr = attr(content, "expr")
  return expr !== undefined ? { expr } : { text: inline(content) }
}

/** Inline content: its text, or its XML written back as text when it holds elements. */
const inline = (el: XmlElement): string =>
  el.children.some((c) => c.kind === "element") ? el.children.map((c) => serializeXml(c)).join("").trim() : textOf(el)
