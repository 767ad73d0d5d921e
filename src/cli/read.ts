/**
 * The entry point of `proctor list` and `proctor show` (src/bin/proctor.ts sends them here):
 * the same CLI as `main.ts`. `npm run build` replaces its compiled form, dist/cli/read.js,
 * with a bundle of `main.ts` and what the two reads import, tree-shaken by esbuild
 * (scripts/build.mjs): about 20 files instead of the 700 modules the CLI loads otherwise,
 * most of them Effect's, which is most of a read's time. The commands that change
 * something, or load a user's module to run it, keep the unbundled CLI, so that their
 * runtime and the user's procedures share one copy of Proctor and of Effect.
 *
 * @since 0.1.0
 */
import "./main.js"
