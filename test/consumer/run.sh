#!/usr/bin/env bash
# The package as a user gets it: packs Proctor, installs the tarball into fresh projects
# in a temporary folder and checks that
#   - the README's quick start runs with plain `node` (as an .mjs file) and `require("proctor")` works;
#   - a strict TypeScript project (default flags otherwise, skipLibCheck off) type-checks the
#     quick start, the examples and a misspelt target (`@ts-expect-error`) against the
#     tarball's declarations, with `nodenext` and with `bundler` resolution;
#   - `npx proctor --help`, `list --help` and `-v` work, `procedures` lists none of Proctor's
#     own examples, and `npx proctor run flow.ts` runs a user's TypeScript
#     module in a `"type": "module"` project and in a CommonJS one; `list` and `show` (their
#     bundle) read what it ran, and an unknown id exits 1.
# Prints one PASS/FAIL line per check; exits 1 when one fails. Called by .ci/run; run it
# alone with `test/consumer/run.sh` (it uses the npm registry, through npm's cache).
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$repo/test/consumer"
work="$(mktemp -d "${TMPDIR:-/tmp}/proctor-consumer.XXXXXX")"
trap 'rm -rf "$work"' EXIT

failures=0
# check NAME COMMAND...: runs the command in the current folder; on failure shows its output
check() {
  local name="$1" out
  shift
  if out="$("$@" 2>&1)"; then
    printf 'PASS %s\n' "$name"
  else
    printf 'FAIL %s\n' "$name"
    printf '%s\n' "$out" | tail -n 40 | sed 's/^/    /'
    failures=$((failures + 1))
  fi
}
# expect TEXT COMMAND...: the command succeeds and prints TEXT
expect() {
  local text="$1" out
  shift
  out="$("$@" 2>&1)" || { printf '%s\n' "$out"; return 1; }
  grep -qF -- "$text" <<<"$out" || { printf 'expected "%s" in:\n%s\n' "$text" "$out"; return 1; }
}
dev_version() { node -p "require('$repo/package.json').devDependencies['$1']"; }
installed() { node -p "require('$1/node_modules/$2/package.json').version" 2>/dev/null; }

echo "==> npm pack (builds dist/ through prepare)"
(cd "$repo" && npm pack --silent --pack-destination "$work" >/dev/null) || { echo "FAIL npm pack"; exit 1; }
tarball="$(ls "$work"/proctor-*.tgz)"
printf '%s: %s files\n' "$(basename "$tarball")" "$(tar -tzf "$tarball" | wc -l | tr -d ' ')"

echo "==> install the tarball into an empty project"
app="$work/app"
mkdir -p "$app"
cat >"$app/package.json" <<'EOF'
{ "name": "app", "private": true, "type": "module" }
EOF
# Install scripts are skipped: the only one Proctor needs is better-sqlite3's native build,
# which compiles SQLite (minutes), so the addon the repository already built for this Node
# is copied instead when the versions match, and rebuilt otherwise.
(cd "$app" && npm install --silent --no-audit --no-fund --prefer-offline --ignore-scripts \
  "$tarball" "typescript@$(dev_version typescript)" "@types/node@$(dev_version @types/node)") ||
  { echo "FAIL npm install of the tarball"; exit 1; }
if [[ "$(installed "$app" better-sqlite3)" == "$(installed "$repo" better-sqlite3)" &&
  -f "$repo/node_modules/better-sqlite3/build/Release/better_sqlite3.node" ]]; then
  mkdir -p "$app/node_modules/better-sqlite3/build/Release"
  cp "$repo/node_modules/better-sqlite3/build/Release/better_sqlite3.node" "$app/node_modules/better-sqlite3/build/Release/"
else
  (cd "$app" && npm rebuild --silent better-sqlite3) || { echo "FAIL building better-sqlite3"; exit 1; }
fi

cd "$app"
# the quick start exactly as the README shows it (its code is plain JavaScript)
awk '/^## Quick start/{q=1} q&&/^```ts$/{f=1;next} f&&/^```$/{exit} f' "$repo/README.md" >quickstart.mjs
check "node runs the README quick start (ESM, plain node)" \
  expect "succeeded { amount: 250, approvedBy: 'ann' }" node quickstart.mjs
mkdir -p cjs-require
echo '{ "type": "commonjs" }' >cjs-require/package.json
echo 'const { Procedure, Runtime } = require("proctor"); if (typeof Runtime.layer !== "function" || typeof Procedure.make !== "function") process.exit(1)' >cjs-require/index.js
check "require(\"proctor\") from CommonJS (require(esm))" node cjs-require/index.js

mkdir -p ts
cp quickstart.mjs ts/quickstart.ts
cp "$repo"/examples/*.ts "$here/misspelt.ts" ts/
# otel.ts needs @effect/opentelemetry and the OpenTelemetry SDK, cluster.ts the optional peer
# @effect/sql-pg (and, with skipLibCheck off, @types/pg): an app installs those itself
rm ts/otel.ts ts/cluster.ts
for resolution in nodenext bundler; do
  module="$resolution"
  [[ "$resolution" == "bundler" ]] && module="preserve"
  cat >"ts/tsconfig.$resolution.json" <<EOF
{
  "compilerOptions": {
    "strict": true,
    "target": "ES2022",
    "module": "$module",
    "moduleResolution": "$resolution",
    "skipLibCheck": false,
    "noEmit": true,
    "types": ["node"]
  },
  "include": ["*.ts"]
}
EOF
  check "tsc: quick start, examples and a misspelt target type-check (strict, $resolution, skipLibCheck off)" \
    npx --no -- tsc -p "ts/tsconfig.$resolution.json"
done

check "npx proctor --help" expect "proctor run" npx --no -- proctor --help
check "npx proctor list --help (rendered at build time)" expect '$ proctor list' npx --no -- proctor list --help
check "npx proctor -v" expect "$(node -p "require('$repo/package.json').version")" npx --no -- proctor -v
check "an installed Proctor offers none of its own examples" expect '[]' npx --no -- proctor procedures --json
cp "$here/flow.ts" flow.ts
check "npx proctor run flow.ts in a \"type\": \"module\" project" \
  expect '"status": "succeeded"' npx --no -- proctor run flow.ts --input '{"name":"esm"}' --db .proctor/esm.db --json
# list and show run from their bundle (dist/cli/read.js); show loads flow.ts again, recorded by run
check "npx proctor list (the read bundle) shows what run started" expect "greeting@1" npx --no -- proctor list --db .proctor/esm.db
id="$(npx --no -- proctor list --db .proctor/esm.db --json | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8"))[0]?.id ?? "")')"
check "npx proctor show <id> (the read bundle)" expect '"text": "hello esm"' npx --no -- proctor show "$id" --db .proctor/esm.db
check "npx proctor show of an unknown id exits 1" bash -c 'npx --no -- proctor show nope --db .proctor/esm.db; test $? -eq 1'

# a CommonJS project (no "type") on the same install
cjs="$work/app-cjs"
mkdir -p "$cjs"
echo '{ "name": "app-cjs", "private": true }' >"$cjs/package.json"
ln -s "$app/node_modules" "$cjs/node_modules"
cp "$here/flow.ts" "$cjs/flow.ts"
cd "$cjs"
check "npx proctor run flow.ts in a CommonJS project" \
  expect '"status": "succeeded"' npx --no -- proctor run flow.ts --input '{"name":"cjs"}' --db .proctor/cjs.db --json

if ((failures > 0)); then
  echo "consumer tests: $failures failed"
  exit 1
fi
echo "consumer tests: all passed"
