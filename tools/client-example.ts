/**
 * The example from docs/client.md, runnable:
 *
 *   npm run build
 *   node dist/tools/client-example.js ws://127.0.0.1:7101 ws://127.0.0.1:7102 ws://127.0.0.1:7103
 *
 * It writes, reads, compare-and-sets, counts and batches against a running cluster, and exits
 * non-zero if any step does not behave as documented.
 */
import { connect, PaxosStoreError } from '../src/index.js';

const endpoints = process.argv.slice(2);
if (endpoints.length === 0) {
  console.error('usage: client-example <ws://host:port> [more endpoints…]');
  process.exit(2);
}

const db = await connect({ endpoints, timeoutMs: 5000 });
const text = (bytes: Uint8Array | null) => (bytes === null ? null : new TextDecoder().decode(bytes));
const key = `example:${process.pid}:${Date.now()}`;

// Writes return the key's new version; reads return the value and its version.
const created = await db.set(key, 'hello', { onlyIfAbsent: true });
const { value, version } = await db.get(key);
console.log(`set → version ${created.version}; get → ${text(value)} @ ${version}`);

// Compare-and-set on the version: the second writer with the same expectation loses.
const won = await db.cas(key, version, 'hello, world');
const lost = await db.cas(key, version, 'lost update');
console.log(`cas@${version}: applied=${won.applied} (now v${won.version}); again: applied=${lost.applied}`);

// Counters and batches.
const counter = await db.incr(`${key}:visits`, 5);
const [a, b] = await db.mset([
  [`${key}:a`, 'A'],
  [`${key}:b`, new Uint8Array([0, 1, 2])],
]);
const values = await db.mget([`${key}:a`, `${key}:b`, `${key}:missing`]);
console.log(`incr → ${counter.value}; mset → v${a.version}, v${b.version}; mget → ${values.map((r) => r.value?.length ?? 'null').join(', ')} bytes`);

// Errors are PaxosStoreError with a stable code.
try {
  await db.incr(key);
} catch (error) {
  if (!(error instanceof PaxosStoreError)) throw error;
  console.log(`incr on text → ${error.code}`);
}

// Deadlines and cancellation per call.
const controller = new AbortController();
setTimeout(() => controller.abort(new Error('gave up')), 1000).unref();
await db.get(key, { consistency: 'local', signal: controller.signal, timeoutMs: 500 });

await db.close();

const ok = created.applied && text(value) === 'hello' && won.applied && !lost.applied && counter.value === 5n;
if (!ok) {
  console.error('unexpected results');
  process.exit(1);
}
console.log('ok');
