/**
 * The dashboard in a real browser (playwright-core driving the system Chromium) against
 * a server in this process. The browser's own waits are the one place these tests use
 * real time (bounded `waitFor…` calls); the procedures never sleep: they wait for
 * events, or for a gate the test opens.
 */
import * as fs from "node:fs"
import { HttpServer } from "@effect/platform"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Layer, ManagedRuntime, Schedule, Schema } from "effect"
import type { Browser, Page } from "playwright-core"
import { chromium } from "playwright-core"
import { Dependency, Execution, Procedure, Runtime, Store } from "proctor"
import * as Server from "../src/http/Server.js"
import { Approval, Broken, Gated, release } from "./fixtures/ops.js"
import { Charted, Nested, Release } from "./fixtures/nested.js"
import { releaseUndo, Saga } from "./fixtures/saga.js"

const wait = { timeout: 20_000 }

/** a step whose dependency's breaker opens on its first failure */
const Mail = Dependency.make("mail", { breaker: { consecutiveFailures: 1, coolDown: "1 hour" }, bulkhead: { concurrency: 2, queue: 4 } })
const Notify = Procedure.make("notify", { version: 1, input: Schema.Struct({}), context: Schema.Struct({}) }, {
  initial: "send",
  states: {
    send: Procedure.step({ dependency: Mail, run: () => Effect.fail({ _tag: "Down" as const }), transient: ["Down"], retry: Schedule.stop, next: "sent" }),
    sent: Procedure.final()
  }
})

/** two versions of one procedure, for a rollout from the first to the second */
const shipVersion = (version: number) =>
  Procedure.make("dash-ship", { version, input: Schema.Struct({}), context: Schema.Struct({}) }, {
    initial: "ship",
    states: { ship: Procedure.step({ run: () => Effect.void, next: "shipped" }), shipped: Procedure.final() }
  })
const Ship = [shipVersion(1), shipVersion(2)]

const makeServer = (token?: string) =>
  ManagedRuntime.make(
    Server.layerNode({ host: "127.0.0.1", port: 0, token }).pipe(
      Layer.provideMerge(Runtime.layer({ procedures: [Approval, Gated, Broken, Saga, Charted, Release, Nested, Notify, ...Ship] }).pipe(Layer.provideMerge(Store.layerMemory)))
    )
  )

type App = ReturnType<typeof makeServer>

const urlOf = async (app: App) => {
  const server = await app.runPromise(HttpServer.HttpServer)
  return `http://127.0.0.1:${server.address._tag === "TcpAddress" ? server.address.port : 0}`
}

/** screenshots go to test-results/; `UPDATE_SCREENSHOTS=1` refreshes the ones in docs/ */
const shots = process.env.UPDATE_SCREENSHOTS === "1" ? "docs/screenshots" : "test-results/screenshots"

/**
 * The browser: `PROCTOR_CHROMIUM`, else a system Chromium or Chrome, else the one
 * `npx playwright-core install chromium` downloads. Without one these tests are skipped
 * with a message on a developer's machine, and fail in CI (`CI=true`).
 */
const browserCandidates = [
  process.env.PROCTOR_CHROMIUM,
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
  "/usr/bin/google-chrome-stable",
  chromium.executablePath()
].filter((p): p is string => p !== undefined && p !== "")
const browserPath = browserCandidates.find((p) => fs.existsSync(p))
const noBrowser = `no Chromium found (looked for ${browserCandidates.join(", ")}). ` +
  "Install one with `npx playwright-core install chromium` (or your system's package, e.g. `sudo apt-get install chromium`), " +
  "or set PROCTOR_CHROMIUM to a Chromium or Chrome executable."
const inCi = process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false" && process.env.CI !== "0"
const skip = browserPath === undefined && !inCi
if (skip) console.warn(`test/dashboard.test.ts is skipped: ${noBrowser}`)

let browser: Browser
let app: App
let url: string

beforeAll(async () => {
  if (browserPath === undefined) {
    if (inCi) throw new Error(`The dashboard tests need a browser: ${noBrowser}`)
    return
  }
  fs.mkdirSync("test-results", { recursive: true })
  fs.mkdirSync(shots, { recursive: true })
  browser = await chromium.launch({
    executablePath: browserPath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
  })
  app = makeServer()
  url = await urlOf(app)
})

afterAll(async () => {
  await browser?.close()
  await app?.dispose()
})

const newPage = async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  const problems: Array<string> = []
  page.on("pageerror", (e) => problems.push(e.message))
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`))
  page.on("request", (r) => {
    if (!r.url().startsWith(url) && !r.url().startsWith("data:")) problems.push(`outside request: ${r.url()}`)
  })
  return { page, problems }
}

/** a marker that survives only as long as the page is not reloaded */
const mark = (page: Page) => page.evaluate(() => ((window as any).__notReloaded = true))
const stillSamePage = (page: Page) => page.evaluate(() => (window as any).__notReloaded === true)

const nodeClass = (page: Page, state: string) =>
  page.locator(`[data-testid=diagram] g.node[data-state="${state}"]`).getAttribute("class")

describe.skipIf(skip)("dashboard", () => {
  it("links a parent to its children and a child to its parent", async () => {
    const [parent, child] = await app.runPromise(
      Effect.gen(function*() {
        const parent = yield* Runtime.start(Approval, { doc: "contract.pdf" })
        const child = yield* Runtime.start(Approval, { doc: "annex.pdf" }, { parentId: parent })
        return [parent, child] as const
      })
    )
    const { page, problems } = await newPage()
    await page.goto(`${url}/executions/${parent}`)
    await page.waitForSelector(`[data-testid=children] a[href="/executions/${child}"]`, wait)
    await page.click(`[data-testid=children] a[href="/executions/${child}"]`)
    await page.waitForSelector(`[data-testid=parent] a[href="/executions/${parent}"]`, wait)
    assert.strictEqual(await page.locator("[data-testid=children]").count(), 0)
    assert.deepStrictEqual(problems, [])
    await page.close()
  })

  it("shows a waiting approval, sends Approve through the form and watches it succeed live", async () => {
    const id = await app.runPromise(
      Effect.gen(function*() {
        const id = yield* Runtime.start(Approval, { doc: "q3-budget.pdf" })
        return id
      })
    )
    const { page, problems } = await newPage()
    await page.goto(`${url}/`)
    await page.waitForSelector(`[data-testid=execution-row][data-id="${id}"][data-status=waiting]`, wait)
    await page.waitForSelector("[data-testid=live].on", wait)
    await mark(page)

    // the list updates live: a new execution appears without a reload
    const second = await app.runPromise(Runtime.start(Approval, { doc: "offsite-plan.pdf" }))
    await page.waitForSelector(`[data-testid=execution-row][data-id="${second}"][data-status=waiting]`, wait)
    // the status filter
    await page.click("[data-testid=filter-succeeded]")
    await page.waitForSelector("text=No executions match", wait)
    await page.click("[data-testid=filter-succeeded]")
    await page.waitForSelector(`[data-testid=execution-row][data-id="${id}"]`, wait)
    await page.screenshot({ path: `${shots}/executions.png`, fullPage: true })

    await page.click(`[data-testid=execution-row][data-id="${id}"] a`)
    await page.waitForSelector(`[data-testid=execution][data-status=waiting]`, wait)
    assert.include(await nodeClass(page, "review"), "current")
    assert.include(await nodeClass(page, "submit"), "visited")
    assert.notInclude(await nodeClass(page, "approved"), "visited")
    assert.deepStrictEqual(
      await page.locator("[data-testid=event-tag] option").allTextContents(),
      ["Approve", "Reject"]
    )
    assert.isTrue(await page.isDisabled("[data-testid=action-resume]"))
    assert.isTrue(await page.isEnabled("[data-testid=action-pause]"))
    await page.screenshot({ path: `${shots}/execution-waiting.png`, fullPage: true })

    // a field the event's Schema requires
    await page.selectOption("[data-testid=event-tag]", "Approve")
    await page.fill("[data-testid=field-by]", "ann")
    await page.click("[data-testid=send-event]")
    await page.waitForSelector(`[data-testid=execution][data-status=succeeded]`, wait)
    assert.isTrue(await stillSamePage(page), "the page followed the execution without a reload")
    assert.strictEqual(await page.textContent("[data-testid=current-state]"), "approved")
    assert.include(await nodeClass(page, "approved"), "current")
    assert.include(await nodeClass(page, "review"), "visited")
    assert.include(await page.textContent("[data-testid=context]") ?? "", `"approvedBy": "ann"`)
    assert.strictEqual(await page.locator("[data-testid=timeline] li").count(), 3)
    await page.screenshot({ path: "test-results/dashboard-approved.png", fullPage: true })
    await page.screenshot({ path: `${shots}/execution-succeeded.png`, fullPage: true })

    const done = await app.runPromise(Runtime.get(id))
    assert.strictEqual(done.status, "succeeded")
    assert.deepStrictEqual(done.context, { doc: "q3-budget.pdf", approvedBy: "ann" })
    assert.deepStrictEqual(problems, [])
    await page.close()
  })

  it("shows a refused event's reason and writes nothing", async () => {
    const id = await app.runPromise(Runtime.start(Approval, { doc: "needs-a-name.pdf" }))
    const { page } = await newPage()
    await page.goto(`${url}/executions/${id}`)
    await page.waitForSelector(`[data-testid=execution][data-status=waiting]`, wait)
    // the `by` field is left empty: the browser form requires it, so drop that to hit the server
    await page.evaluate(() => document.querySelector("[data-testid=field-by]")!.removeAttribute("required"))
    // on a loaded machine the form may be re-rendered by a live update between the click and
    // its handler: a refused event changes nothing, so click again until the refusal shows
    let shown = false
    for (let i = 0; i < 4 && !shown; i++) {
      await page.evaluate(() => document.querySelector("[data-testid=field-by]")?.removeAttribute("required"))
      await page.click("[data-testid=send-event]")
      shown = await page.waitForSelector("#toast.error", { timeout: 5_000 }).then(() => true, () => false)
    }
    assert.isTrue(shown, "the refusal was never shown")
    assert.include(await page.textContent("#toast") ?? "", "does not match its Schema")
    const s = await app.runPromise(Runtime.get(id))
    assert.strictEqual(s.status, "waiting")
    assert.strictEqual(s.seq, 2)
    await page.close()
  })

  it("pauses and resumes a running execution, highlighting the state it is in", async () => {
    const id = await app.runPromise(Runtime.start(Gated, { n: 1 }))
    const { page, problems } = await newPage()
    await page.goto(`${url}/executions/${id}`)
    await page.waitForSelector(`[data-testid=execution][data-status=running][data-state=work]`, wait)
    await mark(page)
    assert.include(await nodeClass(page, "work"), "current")
    assert.include(await nodeClass(page, "prepare"), "visited")

    await page.click("[data-testid=action-pause]")
    await page.waitForSelector(`[data-testid=execution][data-status=paused]`, wait)
    assert.strictEqual((await app.runPromise(Runtime.get(id))).status, "paused")
    assert.include(await nodeClass(page, "work"), "current")
    assert.isTrue(await page.isEnabled("[data-testid=action-resume]"))
    await page.screenshot({ path: `${shots}/execution-paused.png`, fullPage: true })

    await page.click("[data-testid=action-resume]")
    await page.waitForSelector(`[data-testid=execution][data-status=running]`, wait)
    // the step runs again after the resume; let it finish
    await app.runPromise(release(id))
    await page.waitForSelector(`[data-testid=execution][data-status=succeeded]`, wait)
    assert.isTrue(await stillSamePage(page))
    assert.include(await nodeClass(page, "done"), "current")
    const causes = (await app.runPromise(Runtime.history(id))).map((t) => t.cause)
    assert.deepStrictEqual(causes, ["start", "step", "pause", "resume", "step"])
    assert.deepStrictEqual(problems, [])
    await page.close()
  })

  it("draws nested states as boxes and highlights the active configuration: a chart's regions, a parallel state's regions, compound states", async () => {
    const [chart, rollout] = await app.runPromise(
      Effect.gen(function*() {
        const chart = yield* Runtime.start(Charted, {})
        yield* Runtime.send(chart, { _tag: "built" })
        return [chart, yield* Runtime.start(Release, {})] as const
      })
    )
    const { page, problems } = await newPage()
    await page.goto(`${url}/executions/${chart}`)
    // one active state in each region of the chart's parallel state, and every state holding them
    await page.waitForSelector(`[data-testid=diagram] g.node[data-state="web.ship"].current`, wait)
    assert.include(await nodeClass(page, "db.migrate"), "current")
    for (const state of ["chart", "deploy", "db", "web"]) assert.include(await nodeClass(page, state), "active")
    assert.notInclude(await nodeClass(page, "web.build"), "current")
    assert.notInclude(await nodeClass(page, "cancelled"), "current")
    // the SVG nests the boxes: a region's state lies inside its parallel state's box
    const inside = await page.evaluate(() => {
      const box = (s: string) => (document.querySelector(`[data-testid=diagram] g.node[data-state="${s}"] rect`) as SVGGraphicsElement).getBBox()
      const [outer, inner] = [box("deploy"), box("web.ship")]
      return inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.width <= outer.x + outer.width && inner.y + inner.height <= outer.y + outer.height
    })
    assert.isTrue(inside)
    await page.screenshot({ path: `${shots}/execution-chart.png`, fullPage: true })

    // a parallel state's regions run as child executions: each region's state is highlighted in the parent's diagram
    await page.goto(`${url}/executions/${rollout}`)
    await page.waitForSelector(`[data-testid=diagram] g.node[data-state="rollout.web.approve"].current`, wait)
    await page.waitForSelector(`[data-testid=diagram] g.node[data-state="rollout.db.done"].current`, wait)
    assert.include(await nodeClass(page, "rollout"), "active")
    assert.include(await nodeClass(page, "prepare"), "visited")
    // the state picker offers the procedure's own states only
    assert.deepStrictEqual(await page.locator("[data-testid=skip-state] option").allTextContents(), ["prepare", "rollout", "live"])

    // compound states: the active leaf and the compound states holding it; a compound state left behind is visited
    const nested = await app.runPromise(Runtime.start(Nested, {}))
    await page.goto(`${url}/executions/${nested}`)
    await page.waitForSelector(`[data-testid=diagram] g.node[data-state="rollout.verify"].current`, wait)
    assert.include(await nodeClass(page, "rollout"), "active")
    assert.include(await nodeClass(page, "rollout.api"), "visited")
    assert.include(await nodeClass(page, "rollout.api.push"), "visited")
    assert.notInclude(await nodeClass(page, "rollout.api"), "active")
    await page.screenshot({ path: `${shots}/execution-nested.png`, fullPage: true })
    assert.deepStrictEqual(problems, [])
    await page.close()
  })

  it("offers exactly the commands the runtime accepts, from the server's `allowed` (cancel while compensating)", async () => {
    const id = await app.runPromise(Runtime.start(Saga, {}))
    const { page, problems } = await newPage()
    const buttons = async () => {
      const enabled: Array<Execution.Command> = []
      for (const command of Execution.commands) {
        if (await page.isEnabled(`[data-testid=action-${command}]`)) enabled.push(command)
      }
      return enabled
    }
    await page.goto(`${url}/executions/${id}`)
    await page.waitForSelector(`[data-testid=execution][data-status=waiting]`, wait)
    assert.deepStrictEqual(await buttons(), Execution.allowedOperations(await app.runPromise(Runtime.get(id)), Saga).commands)
    await page.click("[data-testid=action-rollback]")
    await page.waitForSelector(`[data-testid=execution][data-status=compensating]`, wait)
    assert.deepStrictEqual(await buttons(), ["cancel"])
    assert.include(await page.textContent("body") ?? "", "it handles no more events")
    await page.click("[data-testid=action-cancel]")
    await page.waitForSelector(`[data-testid=execution][data-status=cancelled]`, wait)
    assert.deepStrictEqual(await buttons(), [])
    // no reason typed: none recorded, none shown
    assert.isUndefined((await app.runPromise(Runtime.history(id))).at(-1)!.reason)
    assert.strictEqual(await page.locator("[data-testid=transition-reason]").count(), 0)
    await app.runPromise(releaseUndo(id))
    assert.deepStrictEqual(problems, [])
    await page.close()
  })

  it("cancels with the reason typed next to the Cancel button; the history shows it on the cancel row", async () => {
    const id = await app.runPromise(Runtime.start(Approval, { doc: "withdrawn.pdf" }))
    const { page, problems } = await newPage()
    await page.goto(`${url}/executions/${id}`)
    await page.waitForSelector(`[data-testid=execution][data-status=waiting]`, wait)
    await mark(page)
    await page.fill("[data-testid=cancel-reason]", "the document was withdrawn")
    await page.click("[data-testid=action-cancel]")
    await page.waitForSelector(`[data-testid=execution][data-status=cancelled]`, wait)
    assert.isTrue(await stillSamePage(page))
    const last = page.locator("[data-testid=timeline] li").last()
    assert.strictEqual(await last.locator("[data-testid=transition-reason]").textContent(), "cancel: the document was withdrawn")
    assert.isTrue(await page.isDisabled("[data-testid=cancel-reason]"), "an ended execution takes no more reasons")
    const row = (await app.runPromise(Runtime.history(id))).at(-1)!
    assert.strictEqual(row.cause, "cancel")
    assert.strictEqual(row.reason, "the document was withdrawn")
    await page.screenshot({ path: `${shots}/execution-cancelled.png`, fullPage: true })
    assert.deepStrictEqual(problems, [])
    await page.close()
  })

  it("skips a step that needs a person with the state picker", async () => {
    const id = await app.runPromise(Runtime.start(Broken, {}))
    const { page } = await newPage()
    await page.goto(`${url}/executions/${id}`)
    await page.waitForSelector(`[data-testid=execution][data-status=needs_intervention]`, wait)
    assert.include(await page.textContent("[data-testid=errors]") ?? "", "the check always fails")
    await page.selectOption("[data-testid=skip-state]", "manual")
    await page.click("[data-testid=action-skip]")
    await page.waitForSelector(`[data-testid=execution][data-status=succeeded][data-state=manual]`, wait)
    await page.close()
  })

  it("shows the dependencies' breakers: open after a failure, with its counts", async () => {
    await app.runPromise(Effect.flatMap(Runtime.start(Notify, {}), Runtime.await))
    const { page, problems } = await newPage()
    await page.goto(url)
    await page.waitForSelector("[data-testid=dependency][data-name=mail][data-breaker=open]", wait)
    const row = page.locator("[data-testid=dependency][data-name=mail]")
    assert.strictEqual(await row.locator("[data-testid=breaker]").textContent(), "open")
    assert.include(await row.textContent(), "0/2 running, 0/4 queued")
    await page.screenshot({ path: `${shots}/dependencies.png` })
    assert.deepStrictEqual(problems, [])
    await page.close()
  })

  it("shows the tenant of executions started for one, and filters by it", async () => {
    const [acme, globex] = await app.runPromise(Effect.all([
      Runtime.start(Approval, { doc: "acme.pdf" }, { tenant: "acme" }),
      Runtime.start(Approval, { doc: "globex.pdf" }, { tenant: "globex" })
    ]))
    const { page, problems } = await newPage()
    await page.goto(url)
    await page.waitForSelector(`[data-testid=execution-row][data-id="${acme}"] [data-testid=tenant]`, wait)
    assert.strictEqual(await page.locator(`[data-testid=execution-row][data-id="${acme}"] [data-testid=tenant]`).textContent(), "acme")
    // the list is re-rendered every few seconds (the panels' figures): on a loaded machine one may
    // replace the field between the typing and the Enter, so type again until the filter is applied
    let filtered = false
    for (let i = 0; i < 4 && !filtered; i++) {
      await page.fill("[data-testid=tenant-filter]", "globex")
      await page.press("[data-testid=tenant-filter]", "Enter")
      filtered = await page.waitForSelector(`[data-testid=execution-row][data-id="${acme}"]`, { timeout: 5_000, state: "detached" }).then(() => true, () => false)
    }
    assert.isTrue(filtered, "the tenant filter was never applied")
    assert.strictEqual(await page.locator(`[data-testid=execution-row][data-id="${globex}"]`).count(), 1)
    assert.strictEqual(await page.locator("[data-testid=execution-row]").count(), 1)
    assert.deepStrictEqual(problems, [])
    await page.close()
  })

  it("shows a rollout's phase, share and health, and pauses, advances and reverts it with the buttons its status offers", async () => {
    const started = await fetch(`${url}/api/rollouts`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ procedure: "dash-ship", from: 1, to: 2, phases: [10, 50, 100], hold: "1 hour" })
    })
    assert.strictEqual(started.status, 200, await started.clone().text())
    const { page, problems } = await newPage()
    const row = `[data-testid=rollout][data-procedure=dash-ship]`
    /** the core's status of the rollout, and the panel's buttons, which must be its controls */
    const status = async () => (await app.runPromise(Runtime.rollouts("dash-ship")))[0]!
    const buttons = () => page.locator(`${row} button`).allTextContents()
    await page.goto(url)
    await page.waitForSelector(`${row}[data-state=holding]`, wait)
    await mark(page)
    assert.include(await page.textContent(`${row} [data-testid=phase]`) ?? "", "1 of 3")
    assert.strictEqual(await page.textContent(`${row} [data-testid=share]`), "10%")
    // the first health check runs as the rollout starts; the panel shows it at its next refresh
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent?.includes("failed") === true, `${row} [data-testid=health-to]`, wait)
    assert.include(await page.textContent(`${row} [data-testid=health-to]`) ?? "", "0/0 failed")
    assert.include(await page.textContent(`${row} [data-testid=health-from]`) ?? "", "0/0 failed")
    assert.deepStrictEqual(await buttons(), [...(await status()).controls])
    assert.deepStrictEqual(await buttons(), ["pause", "advance", "revert"])

    await page.click(`${row} [data-testid=rollout-pause]`)
    await page.waitForSelector(`${row}[data-state=paused]`, wait)
    assert.strictEqual((await status()).state, "paused")
    assert.deepStrictEqual(await buttons(), [...(await status()).controls])
    assert.deepStrictEqual(await buttons(), ["resume", "advance", "revert"])

    // advancing a paused rollout goes to the next phase and holds there
    await page.click(`${row} [data-testid=rollout-advance]`)
    await page.waitForSelector(`${row}[data-state=holding]`, wait)
    assert.include(await page.textContent(`${row} [data-testid=phase]`) ?? "", "2 of 3")
    assert.strictEqual(await page.textContent(`${row} [data-testid=share]`), "50%")
    const advanced = await status()
    assert.strictEqual(advanced.phase, 2)
    assert.strictEqual(advanced.share, 50)
    assert.deepStrictEqual(await buttons(), [...advanced.controls])
    await page.screenshot({ path: `${shots}/rollouts.png` })

    // the revert button asks why
    page.once("dialog", (dialog) => void dialog.accept("the new version looks slow"))
    await page.click(`${row} [data-testid=rollout-revert]`)
    await page.waitForSelector(`${row}[data-state=reverted]`, wait)
    assert.strictEqual(await page.textContent(`${row} [data-testid=reason]`), "the new version looks slow")
    assert.strictEqual(await page.textContent(`${row} [data-testid=share]`), "0%")
    const reverted = await status()
    assert.strictEqual(reverted.state, "reverted")
    assert.strictEqual(reverted.reason, "the new version looks slow")
    assert.deepStrictEqual(await buttons(), [...reverted.controls])
    assert.deepStrictEqual(await buttons(), [])
    assert.isTrue(await stillSamePage(page), "the panel followed the rollout without a reload")
    // the panel's controls are the rollout's events, nothing else
    const events = (await app.runPromise(Runtime.history(reverted.id))).map((t) => t.cause)
    assert.deepStrictEqual(events, ["start", "event:Pause", "event:Advance", "event:Revert", "step"])
    assert.deepStrictEqual(problems, [])
    await page.close()
  })

  it("with a token: takes it once from ?token=, then works live without it in the address", async () => {
    const secured = makeServer("dash-token")
    try {
      const base = await urlOf(secured)
      const id = await secured.runPromise(Runtime.start(Approval, { doc: "secret.pdf" }))
      const page = await browser.newPage()
      const denied = await page.goto(`${base}/`)
      assert.strictEqual(denied?.status(), 401)
      await page.goto(`${base}/?token=dash-token`)
      await page.waitForSelector(`[data-testid=execution-row][data-id="${id}"]`, wait)
      assert.notInclude(page.url(), "token", "the token is taken out of the address")
      await page.waitForSelector("[data-testid=live].on", wait)
      await page.click(`[data-testid=execution-row][data-id="${id}"] a`)
      await page.waitForSelector(`[data-testid=execution][data-status=waiting]`, wait)
      await page.selectOption("[data-testid=event-tag]", "Reject")
      await page.fill("[data-testid=field-reason]", "not in budget")
      await page.click("[data-testid=send-event]")
      await page.waitForSelector(`[data-testid=execution][data-status=failed][data-state=rejected]`, wait)
      await page.reload()
      await page.waitForSelector(`[data-testid=execution][data-status=failed]`, wait)
      await page.close()
    } finally {
      await secured.dispose()
    }
  })
})
