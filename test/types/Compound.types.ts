/**
 * Type tests of compound (nested) states, checked by `npm run typecheck` (tsc): every
 * `@ts-expect-error` below must be an error, or the typecheck fails.
 */
import { Context, Effect, Schema } from "effect"
import { Procedure } from "proctor"

const Ctx = Schema.Struct({ n: Schema.Number, log: Schema.Array(Schema.String) })
const Go = Schema.TaggedStruct("Go", { by: Schema.String })
const Stop = Schema.TaggedStruct("Stop", {})

// a nested procedure that type-checks: full paths, actions that see the context and the event
export const Good = Procedure.make("nested-good", { version: 1, input: Ctx, context: Ctx, events: Schema.Union(Go, Stop) }, {
  initial: "deploy",
  states: {
    deploy: Procedure.compound({
      initial: "db",
      onEnter: [({ context }) => ({ ...context, log: [...context.log, "enter deploy"] })],
      on: { Stop: { goto: "stopped", actions: [({ context, event }) => ({ ...context, log: [...context.log, event._tag] })] } },
      always: [{ guard: (c) => c.n > 10, goto: "stopped" }],
      states: {
        db: Procedure.step({ run: ({ context }) => Effect.succeed(context.n), next: "deploy.api" }),
        api: Procedure.wait({
          on: { Go: { goto: "deploy.done", actions: [({ context, event }) => ({ ...context, log: [...context.log, event.by] })] } },
          onExit: [({ context }) => ({ ...context, n: context.n + 1 })]
        }),
        back: Procedure.history({ type: "deep" }),
        done: Procedure.final()
      },
      onDone: "checked"
    }),
    checked: Procedure.wait({ on: { Go: "deploy.back" } }),
    stopped: Procedure.final({ outcome: "stopped" })
  }
})

// a misspelt nested target is a compile-time error
Procedure.make("nested-bad-target", { version: 1, input: Ctx, context: Ctx }, {
  initial: "deploy",
  // @ts-expect-error "deploy.apii" is not a state
  states: {
    deploy: Procedure.compound({
      initial: "db",
      states: {
        db: Procedure.step({ run: () => Effect.void, next: "deploy.apii" }),
        api: Procedure.final()
      },
      onDone: "end"
    }),
    end: Procedure.final()
  }
})

// ... so is a child's name used without its parent's path
Procedure.make("nested-relative-target", { version: 1, input: Ctx, context: Ctx }, {
  initial: "deploy",
  // @ts-expect-error "api" is "deploy.api"
  states: {
    deploy: Procedure.compound({
      initial: "db",
      states: {
        db: Procedure.step({ run: () => Effect.void, next: "api" }),
        api: Procedure.final()
      },
      onDone: "end"
    }),
    end: Procedure.final()
  }
})

// ... a compound's onDone, on and always targets, and a history default
Procedure.make("nested-bad-done", { version: 1, input: Ctx, context: Ctx, events: Go }, {
  initial: "deploy",
  // @ts-expect-error "ended" is not a state
  states: {
    deploy: Procedure.compound({ initial: "x", states: { x: Procedure.final() }, onDone: "ended" }),
    end: Procedure.final()
  }
})
Procedure.make("nested-bad-on", { version: 1, input: Ctx, context: Ctx, events: Go }, {
  initial: "deploy",
  // @ts-expect-error "nowhere" is not a state
  states: {
    deploy: Procedure.compound({ initial: "x", on: { Go: "nowhere" }, states: { x: Procedure.wait({ on: { Go: "end" } }) } }),
    end: Procedure.final()
  }
})
Procedure.make("nested-bad-always", { version: 1, input: Ctx, context: Ctx, events: Go }, {
  initial: "deploy",
  // @ts-expect-error "nowhere" is not a state
  states: {
    deploy: Procedure.compound({ initial: "x", always: [{ goto: "nowhere" }], states: { x: Procedure.wait({ on: { Go: "end" } }) } }),
    end: Procedure.final()
  }
})
Procedure.make("nested-bad-history", { version: 1, input: Ctx, context: Ctx, events: Go }, {
  initial: "deploy",
  // @ts-expect-error "deploy.y" is not a state
  states: {
    deploy: Procedure.compound({
      initial: "x",
      states: { x: Procedure.wait({ on: { Go: "end" } }), h: Procedure.history({ default: "deploy.y" }) }
    }),
    end: Procedure.final()
  }
})

// a compound's initial child must be one of its states
Procedure.compound({
  // @ts-expect-error "z" is not a child
  initial: "z",
  states: { x: Procedure.final() }
})

// actions see the context's type
Procedure.make("nested-typed-action", { version: 1, input: Ctx, context: Ctx }, {
  initial: "deploy",
  states: {
    deploy: Procedure.compound({
      initial: "x",
      // @ts-expect-error the context has no field `m`
      onEnter: [({ context }) => ({ m: context.n })],
      states: { x: Procedure.final() },
      onDone: "end"
    }),
    end: Procedure.final()
  }
})

// the services of a nested step are the runtime's requirements
class Mailer extends Context.Tag("Mailer")<Mailer, { readonly send: Effect.Effect<void> }>() {}
const WithService = Procedure.make("nested-service", { version: 1, input: Ctx, context: Ctx }, {
  initial: "deploy",
  states: {
    deploy: Procedure.compound({
      initial: "x",
      states: { x: Procedure.step({ run: () => Effect.flatMap(Mailer, (m) => m.send), next: "deploy.y" }), y: Procedure.final() },
      onDone: "end"
    }),
    end: Procedure.final()
  }
})
export const services: Procedure.Services<typeof WithService> extends Mailer ? true : false = true
