/**
 * The entry point of `proctor list` and `proctor show` (src/bin/proctor.ts sends them here):
 * plain arguments run through the quick path (`quick.ts`), without `@effect/cli`; any
 * others through the full CLI (`main.ts`). `npm run build` replaces its compiled form,
 * dist/cli/read.js, with a minified bundle of this module and what it imports, tree-shaken
 * by esbuild (scripts/build.mjs): 8 files instead of the 730 modules the CLI loads
 * otherwise, most of them Effect's, whose loading is most of a read's time. The commands
 * that change something, or load a user's module to run it, keep the unbundled CLI, so
 * that their runtime and the user's procedures share one copy of Proctor and of Effect.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Out from "./output.js"
import * as Quick from "./quick.js"
import * as Report from "./report.js"

const args = Quick.readArgs(process.argv.slice(2))
if (args === undefined) {
  await import("./main.js")
} else {
  NodeRuntime.runMain(Quick.run(args).pipe(Effect.provide(Out.layerProcess)), { disableErrorReporting: true, teardown: Report.teardown })
}
