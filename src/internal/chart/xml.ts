/**
 * A small, dependency-free XML parser for SCXML documents: elements, attributes, text,
 * CDATA, comments, processing instructions, the five predefined entities and character
 * references, and namespace prefixes resolved to URIs. It is deliberately not a full XML
 * 1.0 processor: a DOCTYPE is skipped and no entity is ever defined by the document, so
 * entity-expansion attacks have nothing to expand. Size and nesting are bounded so a
 * hostile document is refused with an `XmlError` instead of exhausting the stack or memory.
 */
import { Data } from "effect"

/** An element, its namespace URI resolved from the prefixes in scope. */
export interface XmlElement {
  readonly kind: "element"
  /** The local name, without its prefix. */
  readonly name: string
  /** The namespace URI the element's prefix (or the default namespace) maps to. */
  readonly namespace: string | undefined
  /** Attributes by their name as written (`event`, `xmlns:conf`, `conf:foo`). */
  readonly attributes: ReadonlyMap<string, string>
  readonly children: ReadonlyArray<XmlNode>
  readonly line: number
  readonly column: number
}

/** Character data (text or CDATA), entities already decoded. */
export interface XmlText {
  readonly kind: "text"
  readonly text: string
  readonly line: number
  readonly column: number
}

export type XmlNode = XmlElement | XmlText

/** Bounds on what a document may hold. */
export interface XmlLimits {
  /** The longest document, in characters. @default 2_000_000 */
  readonly maxLength?: number
  /** The deepest element nesting. @default 100 */
  readonly maxDepth?: number
  /** The most elements in one document. @default 50_000 */
  readonly maxElements?: number
}

/** The document is not well-formed XML, or it is larger or deeper than the limits allow. */
export class XmlError extends Data.TaggedError("XmlError")<{
  readonly line: number
  readonly column: number
  readonly reason: string
}> {
  override get message(): string {
    return `XML error at line ${this.line}, column ${this.column}: ${this.reason}`
  }
}

const entities: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: "\"", apos: "'" }
const nameStart = /[A-Za-z_:\u00C0-\uFFFF]/
const nameChar = /[A-Za-z0-9_:.\-\u00B7\u00C0-\uFFFF]/

interface Open {
  readonly name: string
  readonly attributes: Map<string, string>
  readonly children: Array<XmlNode>
  readonly namespaces: ReadonlyMap<string, string>
  readonly line: number
  readonly column: number
}

/** Parses `text` into its root element, or throws an `XmlError` saying where and what is wrong. */
export const parseXml = (text: string, limits: XmlLimits = {}): XmlElement => {
  const maxLength = limits.maxLength ?? 2_000_000
  const maxDepth = limits.maxDepth ?? 100
  const maxElements = limits.maxElements ?? 50_000
  let pos = 0
  let line = 1
  let lineStart = 0
  const fail = (reason: string, at = pos): never => {
    // recount up to `at` so errors raised after a look-ahead still point at the right place
    let l = 1
    let start = 0
    for (let i = 0; i < at && i < text.length; i++) {
      if (text.charCodeAt(i) === 10) {
        l++
        start = i + 1
      }
    }
    throw new XmlError({ line: l, column: at - start + 1, reason })
  }
  if (text.length > maxLength) {
    throw new XmlError({ line: 1, column: 1, reason: `the document has ${text.length} characters, more than the limit of ${maxLength}` })
  }
  const advanceTo = (end: number) => {
    for (let i = pos; i < end; i++) {
      if (text.charCodeAt(i) === 10) {
        line++
        lineStart = i + 1
      }
    }
    pos = end
  }
  const skipPast = (terminator: string, what: string) => {
    const end = text.indexOf(terminator, pos)
    if (end < 0) fail(`${what} is not closed with "${terminator}"`)
    advanceTo(end + terminator.length)
  }
  const skipSpace = () => {
    let end = pos
    while (end < text.length && /\s/.test(text[end]!)) end++
    advanceTo(end)
  }
  const readName = (): string => {
    const start = pos
    if (!nameStart.test(text[pos] ?? "")) fail(`expected a name, found ${describe(text[pos])}`)
    let end = pos + 1
    while (end < text.length && nameChar.test(text[end]!)) end++
    advanceTo(end)
    return text.slice(start, end)
  }
  const decode = (raw: string, at: number): string =>
    raw.replace(/&([^;&\s]*);?/g, (whole, ref: string, offset: number) => {
      if (!whole.endsWith(";")) fail(`"&" must start an entity such as &amp;`, at + offset)
      if (ref.startsWith("#")) {
        const code = ref[1] === "x" ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10)
        if (!Number.isFinite(code) || code < 0 || code > 0x10ffff) fail(`bad character reference &${ref};`, at + offset)
        return String.fromCodePoint(code)
      }
      const value = entities[ref]
      if (value === undefined) fail(`unknown entity &${ref}; (only &lt; &gt; &amp; &quot; &apos; are defined)`, at + offset)
      return value!
    })

  const stack: Array<Open> = []
  let root: XmlElement | undefined
  let elements = 0
  const resolve = (qualified: string, namespaces: ReadonlyMap<string, string>, at: number) => {
    const colon = qualified.indexOf(":")
    const prefix = colon < 0 ? "" : qualified.slice(0, colon)
    const namespace = namespaces.get(prefix)
    if (prefix !== "" && namespace === undefined) fail(`the prefix "${prefix}" is not declared (add xmlns:${prefix}="...")`, at)
    return { name: colon < 0 ? qualified : qualified.slice(colon + 1), namespace }
  }
  const addChild = (node: XmlNode) => {
    const parent = stack[stack.length - 1]
    if (parent !== undefined) parent.children.push(node)
    else if (node.kind === "text" && node.text.trim() !== "") fail("text outside the root element")
  }
  const close = (open: Open, at: number) => {
    const { name, namespace } = resolve(open.name, open.namespaces, at)
    const element: XmlElement = {
      kind: "element",
      name,
      namespace,
      attributes: open.attributes,
      children: open.children,
      line: open.line,
      column: open.column
    }
    if (stack.length === 0) {
      if (root !== undefined) fail("a second root element (a document has exactly one)", at)
      root = element
    } else addChild(element)
  }

  while (pos < text.length) {
    const lt = text.indexOf("<", pos)
    const textEnd = lt < 0 ? text.length : lt
    if (textEnd > pos) {
      const at = pos
      const node: XmlText = { kind: "text", text: decode(text.slice(pos, textEnd), at), line, column: pos - lineStart + 1 }
      advanceTo(textEnd)
      addChild(node)
      continue
    }
    if (text.startsWith("<!--", pos)) skipPast("-->", "a comment")
    else if (text.startsWith("<![CDATA[", pos)) {
      const end = text.indexOf("]]>", pos)
      if (end < 0) fail("a CDATA section is not closed with \"]]>\"")
      const node: XmlText = { kind: "text", text: text.slice(pos + 9, end), line, column: pos - lineStart + 1 }
      if (stack.length === 0) fail("CDATA outside the root element")
      advanceTo(end + 3)
      addChild(node)
    } else if (text.startsWith("<?", pos)) skipPast("?>", "a processing instruction")
    else if (text.startsWith("<!DOCTYPE", pos)) {
      const bracket = text.indexOf("[", pos)
      const gt = text.indexOf(">", pos)
      if (bracket >= 0 && (gt < 0 || bracket < gt)) fail("a DOCTYPE with an internal subset is not supported (remove the [...] part)")
      skipPast(">", "a DOCTYPE")
    } else if (text.startsWith("</", pos)) {
      const at = pos
      advanceTo(pos + 2)
      const name = readName()
      skipSpace()
      if (text[pos] !== ">") fail(`expected ">" to end </${name}, found ${describe(text[pos])}`)
      advanceTo(pos + 1)
      const open = stack.pop()
      if (open === undefined) fail(`the closing tag </${name}> has no opening tag`, at)
      if (open!.name !== name) fail(`the closing tag </${name}> does not match <${open!.name}> opened at line ${open!.line}, column ${open!.column}`, at)
      close(open!, at)
    } else {
      const at = pos
      const column = pos - lineStart + 1
      const startLine = line
      advanceTo(pos + 1)
      const name = readName()
      const attributes = new Map<string, string>()
      while (true) {
        const before = pos
        skipSpace()
        if (text[pos] === ">" || text.startsWith("/>", pos)) break
        if (pos === before) fail(`expected a space, ">" or "/>" in <${name}>, found ${describe(text[pos])}`)
        const attrAt = pos
        const attr = readName()
        skipSpace()
        if (text[pos] !== "=") fail(`expected "=" after the attribute ${attr}, found ${describe(text[pos])}`)
        advanceTo(pos + 1)
        skipSpace()
        const quote = text[pos]
        if (quote !== "\"" && quote !== "'") fail(`the value of the attribute ${attr} must be quoted`)
        const end = text.indexOf(quote!, pos + 1)
        if (end < 0) fail(`the value of the attribute ${attr} is not closed`)
        const raw = text.slice(pos + 1, end)
        if (raw.includes("<")) fail(`"<" is not allowed in the value of the attribute ${attr} (write &lt;)`, pos + 1 + raw.indexOf("<"))
        if (attributes.has(attr)) fail(`the attribute ${attr} appears twice`, attrAt)
        attributes.set(attr, decode(raw, pos + 1).replace(/[\t\n\r]/g, " "))
        advanceTo(end + 1)
      }
      if (++elements > maxElements) fail(`the document has more than ${maxElements} elements`, at)
      if (stack.length >= maxDepth) fail(`elements are nested more than ${maxDepth} deep`, at)
      if (stack.length === 0 && root !== undefined) fail("a second root element (a document has exactly one)", at)
      const parentNamespaces = stack[stack.length - 1]?.namespaces ?? new Map<string, string>()
      let namespaces = parentNamespaces
      for (const [key, value] of attributes) {
        if (key === "xmlns" || key.startsWith("xmlns:")) {
          if (namespaces === parentNamespaces) namespaces = new Map(parentNamespaces)
          ;(namespaces as Map<string, string>).set(key === "xmlns" ? "" : key.slice(6), value)
        }
      }
      const open: Open = { name, attributes, children: [], namespaces, line: startLine, column }
      if (text.startsWith("/>", pos)) {
        advanceTo(pos + 2)
        close(open, at)
      } else {
        advanceTo(pos + 1)
        stack.push(open)
      }
    }
  }
  const unclosed = stack[stack.length - 1]
  if (unclosed !== undefined) fail(`<${unclosed.name}> opened at line ${unclosed.line}, column ${unclosed.column} is never closed`)
  if (root === undefined) fail("the document has no root element")
  return root!
}

const describe = (c: string | undefined) => (c === undefined ? "the end of the document" : JSON.stringify(c))

/** The concatenated text of an element's children (text and CDATA). */
export const textOf = (element: XmlElement): string =>
  element.children.map((child) => (child.kind === "text" ? child.text : textOf(child))).join("")

const escapeText = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/** Writes a node back as XML text, declaring each element's namespace where it changes. */
export const serializeXml = (node: XmlNode, inherited?: string): string => {
  if (node.kind === "text") return escapeText(node.text)
  const attributes = [...node.attributes].filter(([name]) => name !== "xmlns" && !name.startsWith("xmlns:") && !name.includes(":"))
  if (node.namespace !== inherited) attributes.unshift(["xmlns", node.namespace ?? ""])
  const open = [node.name, ...attributes.map(([name, value]) => `${name}="${escapeText(value).replace(/"/g, "&quot;")}"`)].join(" ")
  if (node.children.length === 0) return `<${open}/>`
  return `<${open}>${node.children.map((c) => serializeXml(c, node.namespace)).join("")}</${node.name}>`
}

/**
 * A read-only, minimal DOM view of an element, the value XML content gets in the ECMAScript
 * data model (`getElementsByTagName`, `getAttribute`, `textContent`); it prints as its XML.
 */
export class XmlDom {
  constructor(readonly element: XmlElement) {}
  get tagName(): string {
    return this.element.name
  }
  get textContent(): string {
    return textOf(this.element)
  }
  get childNodes(): ReadonlyArray<XmlDom | string> {
    return this.element.children.map((c) => (c.kind === "text" ? c.text : new XmlDom(c)))
  }
  getAttribute(name: string): string | null {
    return this.element.attributes.get(name) ?? null
  }
  getElementsByTagName(name: string): ReadonlyArray<XmlDom> {
    const out: Array<XmlDom> = []
    const walk = (el: XmlElement) => {
      for (const c of el.children) {
        if (c.kind !== "element") continue
        if (name === "*" || c.name === name) out.push(new XmlDom(c))
        walk(c)
      }
    }
    walk(this.element)
    return out
  }
  toString(): string {
    return serializeXml(this.element)
  }
}
