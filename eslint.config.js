// ESLint flat config. Fast on purpose: no type-aware rules, so `npm run lint` needs no
// type-check of its own (`npx tsc --noEmit` does that). The rules for src/ enforce the
// runtime's promises: every fiber has an owner, time goes through Effect's Clock (so
// TestClock controls it), and every wait has a bound.
import js from "@eslint/js"
import tseslint from "typescript-eslint"

/** Entry points may run Effects (`runMain`, `runPromise`, ...): everything else composes them. */
const entryPoints = ["src/cli/main.ts", "src/bin/**", "src/mcp/main.ts", "src/http/main.ts"]

const timeMessage = "use Effect.sleep / Schedule so TestClock controls time"
const boundMessage = "every wait needs a bound: give it a finite Duration (or an owner that interrupts it)"
const forkMessage = "fork into a Scope/FiberMap: Effect.forkScoped or FiberMap.run"
const runMessage =
  "run Effects only in entry points (src/cli/main.ts, src/bin/**, src/mcp/main.ts, src/http/main.ts); elsewhere return the Effect and let the caller run it"

const durationCalls = "/^(timeout\\w*|sleep|delay\\w*|spaced|fixed|windowed|nanos|micros|millis|seconds|minutes|hours|days|weeks|decode)$/"
const infinite = "Identifier[name='Infinity'], MemberExpression[object.name='Number'][property.name='POSITIVE_INFINITY']"

/** Bans that hold everywhere in src/. */
const coreSyntax = [
  { selector: "MemberExpression[property.name='forkDaemon']", message: forkMessage },
  { selector: "ImportSpecifier[imported.name='forkDaemon']", message: forkMessage },
  { selector: "MemberExpression[object.name='Duration'][property.name='infinity']", message: boundMessage },
  { selector: "ImportSpecifier[imported.name='infinity']", message: boundMessage },
  { selector: "Literal[value=/^\\s*-?Infinity(\\s|$)/]", message: boundMessage },
  { selector: "TemplateElement[value.raw=/^\\s*-?Infinity(\\s|$)/]", message: boundMessage },
  { selector: `CallExpression[callee.property.name=${durationCalls}] > :matches(${infinite})`, message: boundMessage },
  {
    selector: `Property[key.name=/^(timeout|delay|duration|within|horizon|backoff)$/] > :matches(${infinite}).value`,
    message: boundMessage
  }
]

/** Running an Effect: allowed in entry points only. */
const runSyntax = [
  { selector: "MemberExpression[property.name=/^run(Fork|Promise|PromiseExit|Sync|SyncExit|Callback)$/]", message: runMessage },
  { selector: "ImportSpecifier[imported.name=/^run(Fork|Promise|PromiseExit|Sync|SyncExit|Callback)$/]", message: runMessage }
]

const timerGlobals = ["setTimeout", "setInterval"].map((name) => ({ name, message: timeMessage }))
const timerProperties = ["globalThis", "window", "global"].flatMap((object) =>
  ["setTimeout", "setInterval"].map((property) => ({ object, property, message: timeMessage }))
)

export default tseslint.config(
  {
    ignores: [
      "node_modules/**",
      ".data/**",
      ".proctor/**",
      "test-results/**",
      "bench/results/**",
      "coverage/**",
      // downloaded test data (scripts/scxml-tests.mjs)
      ".cache/**",
      "dist/**",
      "**/*.d.ts",
      // personal scratch space, never committed
      ".scratch*/**",
      ".tmp/**"
    ]
  },
  {
    files: ["**/*.js", "**/*.mjs", "**/*.cjs"],
    ...js.configs.recommended,
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { console: "readonly", process: "readonly", URL: "readonly" }
    }
  },
  {
    files: ["**/*.ts", "**/*.tsx", "**/*.mts"],
    extends: [js.configs.recommended, tseslint.configs.eslintRecommended],
    languageOptions: { parser: tseslint.parser, ecmaVersion: 2022, sourceType: "module" },
    plugins: { "@typescript-eslint": tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      "@typescript-eslint/consistent-type-imports": ["error", { prefer: "type-imports", fixStyle: "separate-type-imports" }],
      // TypeScript checks these better (overloads, declaration merging, type-only names)
      "no-unused-vars": "off",
      "no-redeclare": "off",
      "no-dupe-class-members": "off",
      // `while (true)` loops with a `return` inside are the actor's idiom
      "no-constant-condition": ["error", { checkLoops: false }],
      "prefer-const": "error",
      "no-var": "error",
      // `x != null` (null or undefined) is the one loose comparison worth keeping
      eqeqeq: ["error", "always", { null: "ignore" }]
    }
  },
  {
    files: ["src/**/*.ts"],
    rules: {
      "no-console": "error",
      "no-restricted-syntax": ["error", ...coreSyntax, ...runSyntax],
      "no-restricted-globals": ["error", ...timerGlobals],
      "no-restricted-properties": ["error", ...timerProperties],
      "no-restricted-imports": ["error", {
        paths: [
          { name: "timers", message: timeMessage },
          { name: "node:timers", message: timeMessage },
          { name: "timers/promises", message: timeMessage },
          { name: "node:timers/promises", message: timeMessage }
        ]
      }]
    }
  },
  {
    // the CLI's output modules print to the terminal
    files: ["src/cli/**/*.ts"],
    rules: { "no-console": "off" }
  },
  {
    files: entryPoints,
    rules: { "no-restricted-syntax": ["error", ...coreSyntax] }
  }
)
