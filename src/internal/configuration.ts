/**
 * The whole active configuration of an execution, as the diagrams name its states: the
 * active leaf and the compound states holding it; for an SCXML chart, the chart's active
 * states (its context's); for a parallel state, the configuration of each of its regions'
 * executions, under the region's own name `<state>.<region>`. `Runtime.configuration` answers it, so the HTTP
 * API, the CLI and the dashboard show it instead of working it out themselves.
 */
import { Effect, Option } from "effect"
import type { StoreError } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import { configuration as ownConfiguration, isTerminal } from "../Execution.js"
import type { StoreService } from "../Store.js"
import { regionOf } from "./child.js"
import { configurationIn } from "./chartView.js"
import { parallelOf } from "./regions.js"
import { stateOf } from "./states.js"
import type { Compiled } from "./transition.js"
import { procedureKey } from "./transition.js"

export const make = (store: StoreService, registry: ReadonlyMap<string, Compiled>) => {
  const of = (snapshot: Snapshot): Effect.Effect<ReadonlyArray<string>, StoreError> => {
    const own = ownConfiguration(snapshot)
    const def = registry.get(procedureKey(snapshot.procedure, snapshot.version))?.def
    const state = def === undefined ? undefined : stateOf(def, snapshot.state)
    if (state?._tag === "Chart") return Effect.succeed([...own, ...configurationIn(snapshot.context) ?? []])
    const spec = parallelOf(state)
    // an ended execution's regions have ended too: its configuration is its last state
    if (spec === undefined || isTerminal(snapshot.status)) return Effect.succeed(own)
    // the regions this visit of the state started (a region not started yet adds nothing)
    return Effect.forEach(Object.keys(spec.regions), (region) =>
      Effect.flatMap(store.get(regionOf(snapshot.id, snapshot.state, snapshot.visit, region)), (found) =>
        Option.isNone(found)
          ? Effect.succeed([])
          : Effect.map(of(found.value), (inner) => [`${snapshot.state}.${region}`, ...inner.map((name) => `${snapshot.state}.${region}.${name}`)]))).pipe(
      Effect.map((regions) => [...own, ...regions.flat()])
    )
  }
  return of
}
