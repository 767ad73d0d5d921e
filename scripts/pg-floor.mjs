// The floor of W7's "one 10-step execution alone" on a Postgres: 11 single-row prepared
// UPDATE commits one after another with `pg` and nothing else (an execution alone is 11
// commits), 300 times; prints their p50, p90 and the client's CPU. Creates and keeps the
// table `floor_t`.
//
//   node scripts/pg-floor.mjs postgres://postgres@127.0.0.1:5432/postgres
import pg from "pg"

const url = process.argv[2]
if (url === undefined) {
  console.log("usage: node scripts/pg-floor.mjs <postgres url>")
  process.exit(1)
}
const client = new pg.Client({ connectionString: url })
await client.connect()
await client.query("DROP TABLE IF EXISTS floor_t; CREATE TABLE floor_t (id int PRIMARY KEY, v int); INSERT INTO floor_t VALUES (1, 0)")
const update = { name: "floor_u", text: "UPDATE floor_t SET v = v + 1 WHERE id = $1", values: [1] }
for (let i = 0; i < 50; i++) await client.query(update)
const times = []
const cpu0 = process.cpuUsage()
for (let r = 0; r < 300; r++) {
  const t0 = process.hrtime.bigint()
  for (let k = 0; k < 11; k++) await client.query(update)
  times.push(Number(process.hrtime.bigint() - t0) / 1e6)
}
const cpu = process.cpuUsage(cpu0)
times.sort((a, b) => a - b)
const at = (q) => times[Math.floor(q * (times.length - 1))].toFixed(2)
console.log(`11 sequential commits: p50 ${at(0.5)} ms, p90 ${at(0.9)} ms (300 runs); client CPU ${((cpu.user + cpu.system) / 1000 / 300).toFixed(2)} ms per 11`)
await client.end()
