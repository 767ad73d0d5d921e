/**
 * A release: validate → build → test → roll out the database, the API and the web front
 * in parallel (`Procedure.parallel`: three regions, each a child execution), each region
 * a deploy with a `compensate` that undeploys it, then a health check (web) or a warm-up
 * (db, api). The rollout fails as one: when web fails its health check, web undoes its
 * own deploy, the regions still running are stopped and rolled back (api, then db: the
 * one whose deploy completed last first), and the release ends `failed`.
 *
 * Run it: `npx tsx examples/deploy.ts`
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Context, Effect, Layer, Ref, Schema } from "effect"
import { Procedure, Runtime } from "proctor"
import type { Run } from "./report.js"
import { awaitEnd, isMain, printReport } from "./report.js"
import { description, StoreLive } from "./store.js"

// ---------------------------------------------------------------------------
// errors

/**
 * The release's version is not `major.minor.patch`. A business error: not retried.
 *
 * @since 0.1.0
 */
export class InvalidRelease extends Schema.TaggedError<InvalidRelease>()("InvalidRelease", {
  version: Schema.String
}) {
  override get message(): string {
    return `version "${this.version}" is not major.minor.patch`
  }
}

/**
 * A service did not pass its health check. Not declared transient: the rollout is rolled back.
 *
 * @since 0.1.0
 */
export class DeployFailed extends Schema.TaggedError<DeployFailed>()("DeployFailed", {
  service: Schema.String,
  version: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.service} ${this.version} ${this.reason}`
  }
}

// ---------------------------------------------------------------------------
// the service the steps use

/**
 * One thing the deployer did.
 *
 * @since 0.1.0
 */
export interface Action {
  readonly executionId: string
  readonly action: "deploy" | "undeploy"
  readonly service: string
  readonly version: string
}

/**
 * Deploys and undeploys services. Steps name the requirement; `Runtime.layer` then
 * needs it, and whoever builds the runtime provides it.
 *
 * @since 0.1.0
 */
export class Deployer extends Context.Tag("examples/Deployer")<Deployer, {
  /** deploys once per idempotency key: a re-run of the same visit does nothing twice */
  readonly deploy: (service: string, version: string, key: string) => Effect.Effect<void>
  /** checks a deployed service's health */
  readonly check: (service: string, version: string) => Effect.Effect<void, DeployFailed>
  readonly undeploy: (service: string, version: string, key: string) => Effect.Effect<void>
  /** everything done so far, in order */
  readonly actions: Effect.Effect<ReadonlyArray<Action>>
}>() {}

/**
 * An in-memory deployer. Releases listed in `broken` (`"service@version"`) fail their
 * health check. A deploy takes 20 ms for db, 60 ms for api and 100 ms for web.
 *
 * @since 0.1.0
 */
export const layerDeployerMemory = (options: { readonly broken: ReadonlyArray<string> }) =>
  Layer.effect(
    Deployer,
    Effect.gen(function*() {
      const actions = yield* Ref.make<ReadonlyArray<Action>>([])
      const done = new Set<string>()
      const record = (action: Action, key: string) =>
        Effect.suspend(() => {
          if (done.has(key)) return Effect.void
          done.add(key)
          return Ref.update(actions, (all) => [...all, action])
        })
      // a step's key starts with its execution's id (a region's, for the deploys)
      const executionOf = (key: string) => key.split("/")[0]!
      const durations: Record<string, number> = { db: 20, api: 60, web: 100 }
      return Deployer.of({
        deploy: (service, version, key) =>
          Effect.sleep(durations[service] ?? 20).pipe(
            Effect.zipRight(record({ executionId: executionOf(key), action: "deploy", service, version }, key))
          ),
        check: (service, version) =>
          Effect.sleep("10 millis").pipe(
            Effect.zipRight(
              options.broken.includes(`${service}@${version}`)
                ? Effect.fail(new DeployFailed({ service, version, reason: "failed its health check" }))
                : Effect.void
            )
          ),
        undeploy: (service, version, key) =>
          Effect.sleep("10 millis").pipe(
            Effect.zipRight(record({ executionId: executionOf(key), action: "undeploy", service, version }, key))
          ),
        actions: Ref.get(actions)
      })
    })
  )

/**
 * The deployer the demo uses: web 1.5.0 is broken.
 *
 * @since 0.1.0
 */
export const DeployerLive = layerDeployerMemory({ broken: ["web@1.5.0"] })

// ---------------------------------------------------------------------------
// the procedure

const DeployContextSchema = Schema.Struct({
  app: Schema.String,
  version: Schema.String,
  artifact: Schema.optional(Schema.String),
  deployed: Schema.Array(Schema.String)
})
type DeployContext = typeof DeployContextSchema.Type

/** A step that deploys `service` and, as its compensation, undeploys it. */
const deployStep = <const N extends string>(service: string, next: N) =>
  Procedure.step({
    run: ({ context, idempotencyKey }: Procedure.StepArgs<DeployContext>) =>
      Effect.flatMap(Deployer, (d) => d.deploy(service, context.version, idempotencyKey)),
    update: (_, context) => ({ ...context, deployed: [...context.deployed, service] }),
    next,
    compensate: ({ context, idempotencyKey }) =>
      Effect.flatMap(Deployer, (d) => d.undeploy(service, context.version, idempotencyKey))
  })

/** A region of the rollout: deploy `service`, then check its health (web) or warm it up (db, api). */
const rollout = (service: string, after: "check" | "warm") => ({
  initial: "deploy" as const,
  states: {
    deploy: deployStep(service, "ready"),
    ready: Procedure.step({
      run: ({ context }: Procedure.StepArgs<DeployContext>) =>
        after === "check" ? Effect.flatMap(Deployer, (d) => d.check(service, context.version)) : Effect.sleep("200 millis"),
      next: "done"
    }),
    done: Procedure.final()
  }
})

/**
 * The release procedure's Schemas, the same in each of its versions.
 *
 * @since 0.1.0
 */
export const deploySchemas = {
  input: Schema.Struct({ app: Schema.String, version: Schema.String }),
  context: DeployContextSchema,
  init: (input: { readonly app: string; readonly version: string }): DeployContext => ({ ...input, deployed: [] })
}

/**
 * The release procedure's states; `runTests` is the work of its `test` step, the one
 * thing its versions do differently (examples/phased-rollout.ts rolls out a version
 * whose tests fail now and then).
 *
 * @since 0.1.0
 */
export const deployStates = <E>(runTests: (context: DeployContext) => Effect.Effect<void, E>) => ({
  initial: "validate" as const,
  states: {
    validate: Procedure.step({
      run: ({ context }: Procedure.StepArgs<DeployContext>) =>
        /^\d+\.\d+\.\d+$/.test(context.version)
          ? Effect.void
          : Effect.fail(new InvalidRelease({ version: context.version })),
      next: "build"
    }),
    build: Procedure.step({
      run: ({ context }: Procedure.StepArgs<DeployContext>) => Effect.as(Effect.sleep("30 millis"), `${context.app}-${context.version}.tgz`),
      update: (artifact, context) => ({ ...context, artifact }),
      timeout: "5 minutes",
      next: "test"
    }),
    test: Procedure.step({ run: ({ context }: Procedure.StepArgs<DeployContext>) => runTests(context), timeout: "10 minutes", next: "rollout" }),
    // three regions, each a child execution (deploy.rollout.db, ...): all must succeed
    rollout: Procedure.parallel({
      regions: { db: rollout("db", "warm"), api: rollout("api", "warm"), web: rollout("web", "check") },
      // what each region deployed, in the regions' order
      update: (result: Procedure.ParallelResult<DeployContext>, context: DeployContext): DeployContext => ({
        ...context,
        deployed: Object.values(result.regions).flatMap((r) => r.context.deployed)
      }),
      timeout: "30 minutes",
      next: "live"
    }),
    live: Procedure.final({ outcome: "succeeded" })
  }
})

/**
 * The release procedure (version 2): its tests take 40 ms and pass.
 *
 * @since 0.1.0
 */
export const Deploy = Procedure.make("deploy", {
  version: 2,
  description: "validate, build, test, then roll out db, api and web in parallel; roll the rollout back if one fails",
  ...deploySchemas
}, deployStates(() => Effect.sleep("40 millis")))

// ---------------------------------------------------------------------------
// the demo

/**
 * What the deployer did for a release: its regions' deploys and undeploys, in order.
 *
 * @since 0.1.0
 */
export const actionsOf = (id: string) =>
  Effect.gen(function*() {
    const regions = yield* Runtime.list({ parentId: id })
    const ids = new Set([id, ...regions.map((r) => r.id)])
    const actions = yield* Effect.flatMap(Deployer, (d) => d.actions)
    return actions.filter((a) => ids.has(a.executionId)).map((a) => `${a.action} ${a.service}`)
  })

/** How each region of a release ended (`db succeeded, ...`). */
const regionsOf = (id: string) =>
  Effect.map(Runtime.list({ parentId: id }), (regions) =>
    regions.map((r) => r.procedure.slice(r.procedure.lastIndexOf(".") + 1) + " " + r.status)
      .sort((a, b) => services.indexOf(a.split(" ")[0]!) - services.indexOf(b.split(" ")[0]!))
      .join(", "))
const services = ["db", "api", "web"]

/**
 * Releases 1.4.0 (succeeds) and 1.5.0 (web fails its health check: web, api and db are
 * undeployed, in that order), side by side.
 *
 * @since 0.1.0
 */
export const scenarios = Effect.gen(function*() {
  const good = yield* Runtime.start(Deploy, { app: "shop", version: "1.4.0" })
  const bad = yield* Runtime.start(Deploy, { app: "shop", version: "1.5.0" })
  yield* Effect.all([awaitEnd(good), awaitEnd(bad)], { concurrency: "unbounded" })
  const notes = (id: string) =>
    Effect.gen(function*() {
      const actions = yield* actionsOf(id)
      return [`regions: ${yield* regionsOf(id)}`, ...(actions.length === 0 ? [] : [`deployer: ${actions.join(", ")}`])]
    })
  const runs: ReadonlyArray<Run> = [
    { example: "deploy", label: "release 1.4.0", id: good, notes: yield* notes(good) },
    { example: "deploy", label: "release 1.5.0 (web unhealthy)", id: bad, notes: yield* notes(bad) }
  ]
  return runs
})

/**
 * Runs the demo on its own runtime and prints what happened.
 *
 * @since 0.1.0
 */
export const main = Effect.gen(function*() {
  yield* Console.log(`deploy example: executions are kept ${description}\n`)
  yield* Effect.flatMap(scenarios, printReport)
}).pipe(
  Effect.provide(
    Runtime.layer({ procedures: [Deploy] }).pipe(Layer.provideMerge(Layer.merge(StoreLive, DeployerLive)))
  )
)

if (isMain(import.meta.url)) NodeRuntime.runMain(main)
