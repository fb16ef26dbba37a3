// Contender: BullMQ (node; BULLMQ_ENTRY is the path of an installed bullmq's CommonJS entry).
// Prints one JSON line of figures.
import { createRequire } from "node:module";

const { Queue, Worker } = createRequire(import.meta.url)(process.env.BULLMQ_ENTRY);

const [url, countArg, concurrencyArg] = process.argv.slice(2);
const count = Number(countArg), concurrency = Number(concurrencyArg);
const { hostname, port } = new URL(url);
const connection = { host: hostname, port: Number(port), maxRetriesPerRequest: null };

const queue = new Queue("bench", { connection });
await (await queue.client).flushall();
const started = performance.now();
for (let i = 0; i < count; i += 500) {
  const adds = [];
  for (let n = i; n < Math.min(count, i + 500); n++) {
    adds.push(queue.add("noop", { n }, { jobId: `j${n}`, removeOnComplete: true }));
  }
  await Promise.all(adds);
}
const enqueued = performance.now();
let done = 0;
const finished = new Promise((resolve) => {
  const worker = new Worker("bench", async () => {}, { connection, concurrency });
  worker.on("completed", () => {
    done += 1;
    if (done === count) resolve(worker);
  });
});
const worker = await finished;
const drained = performance.now();
await worker.close();
await queue.close();
console.log(JSON.stringify({ name: "BullMQ", enqueue_s: (enqueued - started) / 1000,
                             drain_s: (drained - enqueued) / 1000, jobs: count }));
process.exit(0);
