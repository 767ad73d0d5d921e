/**
 * Type tests, checked by `npm run typecheck` (tsc): every `@ts-expect-error` below must
 * be an error, or the typecheck fails.
 */
import type { Layer} from "effect";
import { Context, Effect, Schema } from "effect"
import type { Store } from "proctor";
import { Procedure, Runtime } from "proctor"

const Ctx = Schema.Struct({ n: Schema.Number })
const Approve = Schema.TaggedStruct("Approve", { by: Schema.String })
const Reject = Schema.TaggedStruct("Reject", { why: Schema.String })

// a transition to a state that does not exist is a compile-time error: a step's `next`
Procedure.make("bad-next", { version: 1, input: Ctx, context: Ctx }, {
  initial: "a",
  // @ts-expect-error "nope" is not a state
  states: {
    a: Procedure.step({ run: () => Effect.void, next: "nope" }),
    done: Procedure.final()
  }
})

// ... a branching `next` function's results
Procedure.make("bad-branch", { version: 1, input: Ctx, context: Ctx }, {
  initial: "a",
  // @ts-expect-error "elsewhere" is not a state
  states: {
    a: Procedure.step({ run: ({ context }) => Effect.succeed(context.n), next: (n) => (n > 1 ? "done" : "elsewhere") }),
    done: Procedure.final()
  }
})

// ... a wait's event target and timer target, and onFailure
Procedure.make("bad-wait", { version: 1, input: Ctx, context: Ctx, events: Approve }, {
  initial: "w",
  // @ts-expect-error "gone" is not a state
  states: {
    w: Procedure.wait({ on: { Approve: "done" }, after: { delay: "1 hour", goto: "gone" } }),
    done: Procedure.final()
  }
})
Procedure.make("bad-on-failure", { version: 1, input: Ctx, context: Ctx }, {
  initial: "a",
  // @ts-expect-error "oops" is not a state
  states: {
    a: Procedure.step({ run: () => Effect.void, next: "done", onFailure: { goto: "oops" } }),
    done: Procedure.final()
  }
})

// the initial state must be a state
Procedure.make("bad-initial", { version: 1, input: Ctx, context: Ctx }, {
  // @ts-expect-error "start" is not a state
  initial: "start",
  states: { done: Procedure.final() }
})

// a wait accepts only the procedure's event tags, and its handlers see the event's type
Procedure.make("bad-event", { version: 1, input: Ctx, context: Ctx, events: Schema.Union(Approve, Reject) }, {
  initial: "w",
  states: {
    w: Procedure.wait({
      on: {
        Approve: { goto: "done", update: (e, c) => ({ n: c.n + e.by.length }) },
        // @ts-expect-error "Cancel" is not an event of this procedure
        Cancel: "done"
      }
    }),
    done: Procedure.final()
  }
})

// steps see the context type; a step may not return a context of another shape
Procedure.make("typed-context", { version: 1, input: Ctx, context: Ctx }, {
  initial: "a",
  states: {
    a: Procedure.step({
      run: ({ context }) => Effect.succeed(context.n * 2),
      // @ts-expect-error the context has no field `m`
      update: (r, c) => ({ ...c, m: r, n: undefined }),
      next: "done"
    }),
    done: Procedure.final()
  }
})

// a valid procedure type-checks, and the services its steps need flow to the runtime layer
class Db extends Context.Tag("Db")<Db, { readonly save: (n: number) => Effect.Effect<void> }>() {}
const Valid = Procedure.make("valid", { version: 1, input: Ctx, context: Ctx, events: Schema.Union(Approve, Reject) }, {
  initial: "a",
  states: {
    a: Procedure.step({
      run: ({ context }) => Effect.flatMap(Db, (db) => db.save(context.n)),
      next: "w"
    }),
    w: Procedure.wait({ on: { Approve: "done", Reject: { goto: "a" } }, after: { delay: "1 day", goto: "done" } }),
    done: Procedure.final()
  }
})
const needsDb: Layer.Layer<Runtime.Runtime, unknown, Store.Store | Db> = Runtime.layer({ procedures: [Valid] })
void needsDb
// @ts-expect-error without Db the layer's requirements are not met
const missingDb: Layer.Layer<Runtime.Runtime, unknown, Store.Store> = Runtime.layer({ procedures: [Valid] })
void missingDb

// start takes the procedure's input type
Effect.gen(function*() {
  yield* Runtime.start(Valid, { n: 1 })
  // @ts-expect-error the input is { n: number }
  yield* Runtime.start(Valid, { n: "1" })
})

// a child state: its targets are checked like a step's, its input is the child's input type,
// and its result carries the child's context type
const Kid = Procedure.make("kid", { version: 1, input: Schema.Struct({ amount: Schema.Number }), context: Schema.Struct({ amount: Schema.Number, receipt: Schema.String }), init: (i) => ({ ...i, receipt: "" }) }, {
  initial: "done",
  states: { done: Procedure.final() }
})
Procedure.make("bad-child-target", { version: 1, input: Ctx, context: Ctx }, {
  initial: "pay",
  // @ts-expect-error "shipp" is not a state
  states: {
    pay: Procedure.child(Kid, { input: (c) => ({ amount: c.n }), next: "shipp" }),
    ship: Procedure.final()
  }
})
Procedure.child(Kid, {
  // @ts-expect-error the child's input has `amount`, not `total`
  input: (c: { readonly n: number }) => ({ total: c.n }),
  next: "done"
})
Procedure.child(Kid, {
  input: (c: { readonly n: number }) => ({ amount: c.n }),
  // @ts-expect-error the child's context has no `missing`
  update: (result, c) => ({ ...c, n: result.context.missing }),
  next: "done"
})
Procedure.child(Kid, {
  input: (c: { readonly n: number }) => ({ amount: c.n }),
  update: (result, c) => ({ ...c, n: result.context.amount + result.context.receipt.length }),
  next: "done"
})

// a parallel state: its regions' states are typed with the parent's context and events, a
// target or an initial state that is not one of the region's states is an error, the
// result names the regions, and the services of the regions' steps flow to the runtime layer
Procedure.make("bad-region-target", { version: 1, input: Ctx, context: Ctx }, {
  initial: "p",
  states: {
    p: Procedure.parallel({
      regions: {
        // @ts-expect-error "finish" is not a state of region a
        a: { initial: "s", states: { s: Procedure.step({ run: () => Effect.void, next: "finish" }), done: Procedure.final() } }
      },
      next: "done"
    }),
    done: Procedure.final()
  }
})
Procedure.make("bad-region-initial", { version: 1, input: Ctx, context: Ctx }, {
  initial: "p",
  states: {
    p: Procedure.parallel({
      regions: {
        // @ts-expect-error "start" is not a state of region a
        a: { initial: "start", states: { done: Procedure.final() } }
      },
      next: "done"
    }),
    done: Procedure.final()
  }
})
Procedure.make("bad-parallel-next", { version: 1, input: Ctx, context: Ctx }, {
  initial: "p",
  // @ts-expect-error "gone" is not a state
  states: {
    p: Procedure.parallel({ regions: { a: { initial: "done", states: { done: Procedure.final() } } }, next: "gone" }),
    done: Procedure.final()
  }
})
Procedure.make("bad-region-event", { version: 1, input: Ctx, context: Ctx, events: Approve }, {
  initial: "p",
  states: {
    p: Procedure.parallel({
      regions: {
        // @ts-expect-error Reject is not one of the procedure's events
        a: { initial: "w", states: { w: Procedure.wait({ on: { Reject: "done" } }), done: Procedure.final() } }
      },
      next: "done"
    }),
    done: Procedure.final()
  }
})
const Fanout = Procedure.make("fanout", { version: 1, input: Ctx, context: Ctx, events: Approve }, {
  initial: "p",
  states: {
    p: Procedure.parallel({
      regions: {
        a: {
          initial: "save",
          states: {
            save: Procedure.step({ run: ({ context }) => Effect.flatMap(Db, (db) => db.save(context.n)), next: "w" }),
            w: Procedure.wait({ on: { Approve: { goto: "done", guard: (event, context) => event.by.length > context.n } } }),
            done: Procedure.final()
          }
        },
        b: { initial: "done", states: { done: Procedure.final() } }
      },
      update: (result, context) => ({ n: context.n + result.regions.a.context.n + result.regions.b.context.n }),
      next: (result) => (result.regions.a.status === "succeeded" ? "done" : "done"),
      targets: ["done"]
    }),
    done: Procedure.final()
  }
})
Procedure.parallel({
  regions: { a: { initial: "done", states: { done: Procedure.final() } } },
  // @ts-expect-error there is no region c
  update: (result, context: { readonly n: number }) => ({ n: result.regions.c.context.n + context.n }),
  next: "done"
})
const fanoutNeedsDb: Layer.Layer<Runtime.Runtime, unknown, Store.Store | Db> = Runtime.layer({ procedures: [Fanout] })
void fanoutNeedsDb
// @ts-expect-error without Db (a region's step needs it) the layer's requirements are not met
const fanoutMissingDb: Layer.Layer<Runtime.Runtime, unknown, Store.Store> = Runtime.layer({ procedures: [Fanout] })
void fanoutMissingDb
