/**
 * A user's procedure module, as `proctor run flow.ts` loads it from an installed tarball
 * (test/consumer/run.sh copies it into a `"type": "module"` and a CommonJS project).
 */
import { Effect, Schema } from "effect"
import { Procedure } from "proctor"

export const Greeting = Procedure.make("greeting", {
  version: 1,
  input: Schema.Struct({ name: Schema.String }),
  context: Schema.Struct({ name: Schema.String, text: Schema.optional(Schema.String) })
}, {
  initial: "greet",
  states: {
    greet: Procedure.step({
      run: ({ context }) => Effect.succeed(`hello ${context.name}`),
      update: (text, context) => ({ ...context, text }),
      next: "done"
    }),
    done: Procedure.final()
  }
})
