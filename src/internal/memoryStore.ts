/**
 * The memory store (`Store.makeMemory`, `Store.layerMemory`): the same semantics as the SQL
 * stores, every execution's snapshot, history, inbox, errors and compensations in maps and
 * arrays of this process. Nothing survives the process.
 */
import { Effect, Option } from "effect"
import type { ErrorEntry, Snapshot, Status } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import { StoreError } from "../Errors.js"
import type { ActiveEntry, CompensationRecord, InboxEntry, StoreService, TimerEntry } from "../Store.js"
import { activeOrder, conflict, discardedEvents, ended, matches, Store, timerOrder } from "../Store.js"
import { History, Kinds } from "./memoryHistory.js"

/**
 * An execution in the memory store; its logs are made when first written (most stay empty).
 * It is its own history (one object less per execution).
 */
class MemoryExecution extends History {
  errors: Array<ErrorEntry> | undefined = undefined
  inbox: Array<InboxEntry> | undefined = undefined
  compensations: Array<CompensationRecord> | undefined = undefined
  constructor(public snapshot: Snapshot) {
    super()
  }
}

/** what `active` lists: running, compensating, or waiting with an event in the inbox */
const needsFiber = (e: MemoryExecution) => {
  const status = e.snapshot.status
  return status === "running" || status === "compensating" || (status === "waiting" && e.inbox !== undefined && e.inbox.length > 0)
}

/** A new memory store. */
export const make = (): StoreService => {
  const executions = new Map<string, MemoryExecution>()
  const byKey = new Map<string, string>()
  let inboxSeq = 0
  const kinds = new Kinds()
  const lookup = (id: string) => executions.get(id)

  return Store.of({
    create: (snapshot, transition) =>
      Effect.sync(() => {
        if (snapshot.idempotencyKey !== undefined) {
          const existing = byKey.get(snapshot.idempotencyKey)
          if (existing !== undefined) return { created: false, snapshot: executions.get(existing)!.snapshot }
        }
        if (executions.has(snapshot.id)) return { created: false, snapshot: executions.get(snapshot.id)!.snapshot }
        const entry = new MemoryExecution(snapshot)
        entry.push(kinds, transition)
        executions.set(snapshot.id, entry)
        if (snapshot.idempotencyKey !== undefined) byKey.set(snapshot.idempotencyKey, snapshot.id)
        return { created: true, snapshot }
      }),
    commit: (commit) =>
      Effect.suspend(() => {
        const entry = lookup(commit.snapshot.id)
        if (entry === undefined || entry.snapshot.rowVersion !== commit.expectedVersion) {
          return Effect.fail(conflict("commit", commit.snapshot.id, commit.expectedVersion, entry?.snapshot.rowVersion))
        }
        entry.snapshot = commit.snapshot
        if (commit.transition !== undefined) entry.push(kinds, commit.transition)
        if (commit.errors !== undefined && commit.errors.length > 0) (entry.errors ??= []).push(...commit.errors)
        if (commit.compensation !== undefined) (entry.compensations ??= []).push(commit.compensation)
        const inbox = entry.inbox
        if (commit.consumed !== undefined && inbox !== undefined) {
          const i = inbox.findIndex((e) => e.seq === commit.consumed)
          if (i >= 0) inbox.splice(i, 1)
        }
        if (isTerminal(commit.snapshot.status) && inbox !== undefined && inbox.length > 0) {
          ;(entry.errors ??= []).push(...discardedEvents(commit.snapshot, inbox))
          entry.inbox = undefined
        }
        return Effect.void
      }),
    get: (id) => Effect.sync(() => Option.map(Option.fromNullable(lookup(id)), (e) => e.snapshot)),
    getMany: (ids) =>
      Effect.sync(() => {
        const out: Array<Snapshot> = []
        for (const id of ids) {
          const e = lookup(id)
          if (e !== undefined) out.push(e.snapshot)
        }
        return out
      }),
    list: (filter) =>
      Effect.sync(() => {
        const out: Array<Snapshot> = []
        const offset = filter.offset ?? 0
        const limit = filter.limit ?? 100
        let skipped = 0
        for (const e of executions.values()) {
          if (out.length >= limit) break
          if (!matches(e.snapshot, filter)) continue
          if (skipped++ < offset) continue
          out.push(e.snapshot)
        }
        return out
      }),
    countByVersion: (query) =>
      Effect.sync(() => {
        const counts = new Map<string, { procedure: string; version: number; status: Status; count: number }>()
        for (const { snapshot: s } of executions.values()) {
          if (query?.procedure !== undefined && s.procedure !== query.procedure) continue
          if (query?.startedSince !== undefined && s.startedAt < query.startedSince) continue
          const key = `${s.procedure}@${s.version}/${s.status}`
          const found = counts.get(key)
          if (found === undefined) counts.set(key, { procedure: s.procedure, version: s.version, status: s.status, count: 1 })
          else found.count++
        }
        return [...counts.values()]
      }),
    history: (id, options) =>
      Effect.sync(() => {
        const h = lookup(id)
        if (h === undefined) return []
        return options?.tail === undefined ? h.rows(kinds, id) : h.rows(kinds, id, h.length - options.tail)
      }),
    errors: (id) => Effect.sync(() => lookup(id)?.errors?.slice() ?? []),
    appendErrors: (entries) =>
      Effect.sync(() => {
        for (const entry of entries) {
          const e = lookup(entry.executionId)
          if (e !== undefined) (e.errors ??= []).push(entry)
        }
      }),
    enqueue: (executionId, event, at) =>
      Effect.suspend(() => {
        const entry = lookup(executionId)
        if (entry === undefined) {
          return Effect.fail(new StoreError({ kind: "Conflict", operation: "enqueue", detail: `execution ${executionId} does not exist` }))
        }
        // checked in the same synchronous step as the push: no commit can end it in between
        if (isTerminal(entry.snapshot.status)) return Effect.fail(ended(executionId, entry.snapshot.status))
        const item: InboxEntry = { executionId, seq: ++inboxSeq, event, at }
        ;(entry.inbox ??= []).push(item)
        return Effect.succeed(item)
      }),
    enqueueAll: (entries) =>
      Effect.suspend(() => {
        // every execution checked, then every event stored, in one synchronous step
        for (const { executionId } of entries) {
          const entry = lookup(executionId)
          if (entry === undefined) {
            return Effect.fail(new StoreError({ kind: "Conflict", operation: "enqueue", detail: `execution ${executionId} does not exist` }))
          }
          if (isTerminal(entry.snapshot.status)) return Effect.fail(ended(executionId, entry.snapshot.status))
        }
        return Effect.succeed(entries.map(({ executionId, event, at }) => {
          const item: InboxEntry = { executionId, seq: ++inboxSeq, event, at }
          const entry = lookup(executionId)!
          ;(entry.inbox ??= []).push(item)
          return item
        }))
      }),
    inbox: (executionId, limit) => Effect.sync(() => lookup(executionId)?.inbox?.slice(0, limit) ?? []),
    compensations: (executionId) => Effect.sync(() => lookup(executionId)?.compensations?.slice() ?? []),
    active: () =>
      Effect.sync(() => {
        const out: Array<string> = []
        for (const [id, e] of executions) if (needsFiber(e)) out.push(id)
        return out
      }),
    activePage: ({ after, limit }) =>
      Effect.sync(() => {
        const out: Array<ActiveEntry> = []
        for (const [id, e] of executions) {
          if (!needsFiber(e)) continue
          const entry = { id, startedAt: e.snapshot.startedAt }
          if (after === undefined || activeOrder(entry, after) > 0) out.push(entry)
        }
        return out.sort(activeOrder).slice(0, Math.max(0, Math.floor(limit)))
      }),
    dueTimers: ({ after, limit, until }) =>
      Effect.sync(() => {
        const out: Array<TimerEntry> = []
        for (const [id, e] of executions) {
          const s = e.snapshot
          if (s.status !== "waiting" || s.timerDueAt === undefined || s.timerDueAt > until) continue
          const entry = { id, dueAt: s.timerDueAt }
          if (after === undefined || timerOrder(after, entry) < 0) out.push(entry)
        }
        return out.sort(timerOrder).slice(0, limit)
      }),
    prune: ({ before, keepLast }) =>
      Effect.sync(() => {
        let deleted = 0
        for (const e of executions.values()) {
          if (!isTerminal(e.snapshot.status)) continue
          deleted += e.retain(kinds, e.snapshot.id, (t, i, length) =>
            (keepLast === undefined || i >= length - keepLast) && (before === undefined || t.at >= before)
          )
        }
        return deleted
      })
  })
}
