/**
 * A release: validate → build → test → deploy the database, the API and the web front,
 * each deploy a step with a `compensate` that undeploys it. When a later deploy fails for
 * good, the deploys that completed are undone in reverse order and the execution ends
 * `failed`.
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
 * A service did not come up healthy. Not declared transient: the release is rolled back.
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
  readonly deploy: (service: string, version: string, key: string) => Effect.Effect<void, DeployFailed>
  readonly undeploy: (service: string, version: string, key: string) => Effect.Effect<void>
  /** everything done so far, in order */
  readonly actions: Effect.Effect<ReadonlyArray<Action>>
}>() {}

/**
 * An in-memory deployer. Releases listed in `broken` (`"service@version"`) fail their
 * health check.
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
      const executionOf = (key: string) => key.split("/")[0]!
      return Deployer.of({
        deploy: (service, version, key) =>
          options.broken.includes(`${service}@${version}`)
            ? Effect.fail(new DeployFailed({ service, version, reason: "failed its health check" }))
            : Effect.sleep("20 millis").pipe(
              Effect.zipRight(record({ executionId: executionOf(key), action: "deploy", service, version }, key))
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

/**
 * The release procedure.
 *
 * @since 0.1.0
 */
export const Deploy = Procedure.make("deploy", {
  version: 1,
  description: "validate, build, test, then deploy db, api and web; undo the deploys if one fails",
  input: Schema.Struct({ app: Schema.String, version: Schema.String }),
  context: DeployContextSchema,
  init: (input) => ({ ...input, deployed: [] })
}, {
  initial: "validate",
  states: {
    validate: Procedure.step({
      run: ({ context }) =>
        /^\d+\.\d+\.\d+$/.test(context.version)
          ? Effect.void
          : Effect.fail(new InvalidRelease({ version: context.version })),
      next: "build"
    }),
    build: Procedure.step({
      run: ({ context }) => Effect.as(Effect.sleep("30 millis"), `${context.app}-${context.version}.tgz`),
      update: (artifact, context) => ({ ...context, artifact }),
      timeout: "5 minutes",
      next: "test"
    }),
    test: Procedure.step({ run: () => Effect.sleep("40 millis"), timeout: "10 minutes", next: "deployDb" }),
    deployDb: deployStep("db", "deployApi"),
    deployApi: deployStep("api", "deployWeb"),
    deployWeb: deployStep("web", "live"),
    live: Procedure.final({ outcome: "succeeded" })
  }
})

// ---------------------------------------------------------------------------
// the demo

/**
 * Releases 1.4.0 (succeeds) and 1.5.0 (web fails its health check: api and db are
 * undeployed, in that order), side by side.
 *
 * @since 0.1.0
 */
export const scenarios = Effect.gen(function*() {
  const good = yield* Runtime.start(Deploy, { app: "shop", version: "1.4.0" })
  const bad = yield* Runtime.start(Deploy, { app: "shop", version: "1.5.0" })
  yield* Effect.all([awaitEnd(good), awaitEnd(bad)], { concurrency: "unbounded" })
  const actions = yield* Effect.flatMap(Deployer, (d) => d.actions)
  const notes = (id: string) => {
    const mine = actions.filter((a) => a.executionId === id)
    return mine.length === 0 ? [] : [`deployer: ${mine.map((a) => `${a.action} ${a.service}`).join(", ")}`]
  }
  const runs: ReadonlyArray<Run> = [
    { example: "deploy", label: "release 1.4.0", id: good, notes: notes(good) },
    { example: "deploy", label: "release 1.5.0 (web unhealthy)", id: bad, notes: notes(bad) }
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
