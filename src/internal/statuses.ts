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
