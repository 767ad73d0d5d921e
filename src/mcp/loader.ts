/**
 * Loads workflow folders: each subfolder of the workflows directory that holds a
 * `workflow.json`. Each file is decoded with the `WorkflowFile` Schema, its checkpoint
 * specs are checked and compiled, and Markdown content files are read. A bad folder is
 * reported with its path and the exact problem; it does not stop the others from loading.
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Either, ParseResult, Schema } from "effect"
import type { Phase, Task, Workflow } from "./definition.js"
import { checkFieldSpec, compileCheckpoint, WorkflowFile } from "./definition.js"

/**
 * A workflow folder that could not be loaded.
 *
 * @since 0.1.0
 * @category models
 */
export interface LoadProblem {
  /** the file or folder at fault */
  readonly path: string
  readonly problem: string
}

/**
 * What `load` found.
 *
 * @since 0.1.0
 * @category models
 */
export interface Loaded {
  readonly workflows: ReadonlyArray<Workflow>
  readonly problems: ReadonlyArray<LoadProblem>
}

/** a content file larger than this is refused */
const MAX_CONTENT_BYTES = 1024 * 1024
/** a workflow.json larger than this is refused */
const MAX_DEFINITION_BYTES = 4 * 1024 * 1024

class Problem {
  constructor(readonly path: string, readonly problem: string) {}
}

const readText = (file: string, limit: number): string => {
  let stat: fs.Stats
  try {
    stat = fs.statSync(file)
  } catch {
    throw new Problem(file, "the file does not exist or cannot be read")
  }
  if (!stat.isFile()) throw new Problem(file, "this is not a regular file")
  if (stat.size > limit) throw new Problem(file, `the file is ${stat.size} bytes; the limit is ${limit} bytes`)
  return fs.readFileSync(file, "utf8")
}

/** Resolves a content file inside the workflow folder (no `..`, no absolute path, no symlink out). */
const contentFile = (folder: string, definition: string, where: string, file: string): string => {
  const normalized = file.replace(/\\/g, "/")
  if (path.isAbsolute(file) || normalized.split("/").includes("..")) {
    throw new Problem(definition, `${where}: content file "${file}" must be a path inside the workflow folder, without ".."`)
  }
  const full = path.join(folder, normalized)
  let real: string
  try {
    real = fs.realpathSync(full)
  } catch {
    throw new Problem(definition, `${where}: content file "${file}" does not exist (looked for ${full})`)
  }
  const realFolder = fs.realpathSync(folder)
  if (!real.startsWith(realFolder + path.sep)) {
    throw new Problem(definition, `${where}: content file "${file}" resolves outside the workflow folder`)
  }
  return readText(real, MAX_CONTENT_BYTES)
}

const resolveContent = (folder: string, definition: string, where: string, content: typeof WorkflowFile.Type["phases"][number]["content"]) =>
  typeof content === "string" ? content : contentFile(folder, definition, where, content.file)

/**
 * Loads one workflow folder.
 *
 * @since 0.1.0
 * @category constructors
 */
export const loadFolder = (folder: string): Either.Either<Workflow, LoadProblem> => {
  const definition = path.join(folder, "workflow.json")
  try {
    const text = readText(definition, MAX_DEFINITION_BYTES)
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch (error) {
      throw new Problem(definition, `the file is not valid JSON: ${(error as Error).message}`)
    }
    const decoded = Schema.decodeUnknownEither(WorkflowFile, { errors: "all", onExcessProperty: "error" })(json)
    if (Either.isLeft(decoded)) {
      const issues = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)
        .map((i) => `${i.path.length === 0 ? "(root)" : i.path.map(String).join(".")}: ${i.message}`)
      throw new Problem(definition, issues.join("; "))
    }
    const file = decoded.right
    const phases: Array<Phase> = file.phases.map((phase, i) => {
      const where = `phases.${i}`
      const specProblems = Object.entries(phase.checkpoint.evidence)
        .flatMap(([name, spec]) => checkFieldSpec(spec, `${where}.checkpoint.evidence.${name}`))
      if (specProblems.length > 0) throw new Problem(definition, specProblems.join("; "))
      const tasks: Array<Task> = phase.tasks.map((task, j) => ({
        title: task.title,
        content: resolveContent(folder, definition, `${where}.tasks.${j}.content`, task.content),
        execution_steps: task.execution_steps,
        artifacts: task.artifacts
      }))
      return {
        number: i + 1,
        title: phase.title,
        content: resolveContent(folder, definition, `${where}.content`, phase.content),
        tasks,
        checkpoint: compileCheckpoint(phase.checkpoint)
      }
    })
    return Either.right({
      name: file.name,
      version: file.version,
      description: file.description,
      category: file.category,
      estimated_duration: file.estimated_duration,
      phases,
      path: folder
    })
  } catch (error) {
    if (error instanceof Problem) return Either.left({ path: error.path, problem: error.problem })
    return Either.left({ path: definition, problem: `could not be loaded: ${String(error)}` })
  }
}

/**
 * Loads every workflow folder under `directory` (sorted by folder name). Folders without
 * a `workflow.json` are ignored; a name used twice keeps the first and reports the second.
 *
 * @since 0.1.0
 * @category constructors
 */
export const load = (directory: string): Effect.Effect<Loaded> =>
  Effect.sync(() => {
    const root = path.resolve(directory)
    let entries: Array<fs.Dirent>
    try {
      entries = fs.readdirSync(root, { withFileTypes: true })
    } catch {
      return {
        workflows: [],
        problems: [{ path: root, problem: "the workflows directory does not exist or cannot be read; pass --workflows DIR" }]
      }
    }
    const workflows: Array<Workflow> = []
    const problems: Array<LoadProblem> = []
    const names = new Map<string, string>()
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (!entry.isDirectory()) continue
      const folder = path.join(root, entry.name)
      if (!fs.existsSync(path.join(folder, "workflow.json"))) continue
      const loaded = loadFolder(folder)
      if (Either.isLeft(loaded)) {
        problems.push(loaded.left)
        continue
      }
      const first = names.get(loaded.right.name)
      if (first !== undefined) {
        problems.push({
          path: path.join(folder, "workflow.json"),
          problem: `the name "${loaded.right.name}" is already used by ${first}; give each workflow its own name`
        })
        continue
      }
      names.set(loaded.right.name, folder)
      workflows.push(loaded.right)
    }
    return { workflows, problems }
  })
