/**
 * Proctor: a durable, supervised state-machine runtime on Effect.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as AuditLog from "./AuditLog.js"
/** @since 0.1.0 */
export * as Dependency from "./Dependency.js"
/** @since 0.1.0 */
export * as Errors from "./Errors.js"
/** @since 0.1.0 */
export * from "./Errors.js"
/** @since 0.1.0 */
export * as Execution from "./Execution.js"
/** @since 0.1.0 */
export * as Plugin from "./Plugin.js"
/** @since 0.1.0 */
export * as Procedure from "./Procedure.js"
/** @since 0.1.0 */
export * as Runtime from "./Runtime.js"
/** @since 0.1.0 */
export * as SqlStore from "./SqlStore.js"
/** @since 0.1.0 */
export * as Store from "./Store.js"
/** @since 0.1.0 */
export * as Validate from "./Validate.js"
