/**
 * Bounds the core keeps on what a caller may record, in a module of its own so that the
 * CLI can show and check them without loading the runtime.
 */

/** The longest reason a cancel may record (`Runtime.cancel(id, { reason })`), in characters. */
export const maxReasonLength = 1000

/** The default of `maxTransitionsWithoutWaiting`: the runaway-loop guard. */
export const defaultLoopLimit = 10_000
