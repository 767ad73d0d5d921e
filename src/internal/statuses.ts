/**
 * The statuses an execution can have, as plain strings with no dependency, so that the
 * CLI can list them in its `--help` without loading Effect's Schema (`Execution.Status`
 * is built from this list).
 */
export const statuses = [
  "running",
  "waiting",
  "paused",
  "needs_intervention",
  "compensating",
  "succeeded",
  "failed",
  "cancelled",
  "rolled_back"
] as const

/** the terminal statuses (`Execution.terminalStatuses`): left only when a parent undoes a succeeded child or region */
export const terminal: ReadonlySet<(typeof statuses)[number]> = new Set(["succeeded", "failed", "cancelled", "rolled_back"] as const)

/** `Execution.isTerminal` */
export const isTerminal = (status: (typeof statuses)[number]): boolean => terminal.has(status)
