import { describe, expect, it } from 'vitest';
import { PaxosStoreError } from '../../src/errors.js';
import { compareBytes, type IterateOptions, type Snapshot, type WriteOperation } from '../../src/storage/engine.js';
import { LsmTree, type LsmOptions } from '../../src/storage/lsm/index.js';
import { SimulatedFileSystem } from '../../src/storage/sim-file-system.js';
import { Random } from '../../src/util/random.js';
import { ProcessFileSystem } from '../helpers/process-file-system.js';

/**
 * Model-based test of the LSM tree: thousands of random operations per seed against a plain
 * sorted model, with tiny memtables, blocks and tables so flushes and compactions run all the
 * time, reopens, injected crashes (the simulated disk keeps only durable bytes plus torn tails),
 * bit flips in tables (reads either return the model's data or CORRUPTION, never other bytes)
 * and a full disk. A failure prints the seed; `LSM_SEEDS=20` runs seeds 1..20, `LSM_SEEDS=7,9`
 * runs exactly those, `LSM_STEPS` changes the number of operations per seed.
 */

type Model = Map<string, [Uint8Array, Uint8Array]>;
const DIRECTORY = '/lsm';

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function seedsFromEnvironment(): number[] {
  const text = process.env.LSM_SEEDS;
  if (!text) return [1, 2, 3, 4, 5, 6];
  if (text.includes(',')) return text.split(',').filter((seed) => seed !== '').map((seed) => Number.parseInt(seed, 10));
  return Array.from({ length: Number.parseInt(text, 10) }, (_, index) => index + 1);
}
const STEPS = Number.parseInt(process.env.LSM_STEPS ?? '2500', 10);

function applyToModel(model: Model, operations: readonly WriteOperation[]): void {
  for (const operation of operations) {
    if (operation.type === 'put') model.set(hex(operation.key), [operation.key.slice(), operation.value.slice()]);
    else model.delete(hex(operation.key));
  }
}

function expectedEntries(model: Model, options: IterateOptions): [Uint8Array, Uint8Array][] {
  let entries = [...model.values()].filter(([key]) => {
    if (options.start && compareBytes(key, options.start) < 0) return false;
    if (options.end && compareBytes(key, options.end) >= 0) return false;
    if (options.prefix && (key.length < options.prefix.length || compareBytes(key.subarray(0, options.prefix.length), options.prefix) !== 0)) {
      return false;
    }
    return true;
  });
  entries.sort((a, b) => compareBytes(a[0], b[0]));
  if (options.reverse) entries.reverse();
  if (options.limit !== undefined) entries = entries.slice(0, options.limit);
  return entries;
}

function render(entries: Iterable<[Uint8Array, Uint8Array]>): string[] {
  return [...entries].map(([key, value]) => `${hex(key)}=${hex(value)}`);
}

function isDiskFault(error: unknown): boolean {
  return error instanceof PaxosStoreError && (error.code === 'NO_SPACE' || error.code === 'IO_ERROR');
}

class Harness {
  readonly random: Random;
  readonly disk = new SimulatedFileSystem();
  private killable!: ProcessFileSystem;
  tree!: LsmTree;
  model: Model = new Map();
  private readonly keys: Uint8Array[] = [];
  private readonly prefixes: Uint8Array[];
  private readonly options: Omit<LsmOptions, 'fileSystem'>;
  snapshots: { snapshot: Snapshot; model: Model }[] = [];
  readonly tally = { crashes: 0, reopens: 0, flips: 0, flipsDetected: 0, diskFullWrites: 0, iterations: 0, inFlightSurvived: 0, flushes: 0, compactions: 0, tableMoves: 0 };

  constructor(readonly seed: number) {
    this.random = new Random(seed);
    const random = this.random;
    const bases = [new Uint8Array(0), Uint8Array.of(0x61), Uint8Array.of(0x61, 0x62), Uint8Array.of(0x62), Uint8Array.of(0xff), Uint8Array.of(0xff, 0xff)];
    this.prefixes = bases;
    for (let index = 0; index < 160; index++) {
      const base = random.pick(bases);
      const key = new Uint8Array(base.length + random.int(6));
      key.set(base);
      key.set(random.bytes(key.length - base.length), base.length);
      this.keys.push(key);
    }
    this.options = {
      directory: DIRECTORY,
      memtableBytesMax: random.range(400, 4000),
      blockBytes: random.range(64, 600),
      tableBytesTarget: random.range(300, 3000),
      level0CompactionTrigger: random.range(2, 4),
      level1BytesMax: random.range(1500, 6000),
      levelFanOut: random.range(2, 4),
      blockCacheBytes: random.pick([0, 2048, 1 << 20]),
      compression: random.chance(0.7),
      bloomBitsPerKey: random.range(1, 12),
      immutableMemtablesMax: random.range(1, 3),
    };
  }

  /** Counters of the tree about to be dropped (each open starts them at zero). */
  private collectStats(): void {
    const stats = this.tree.stats();
    this.tally.flushes += stats.flushes;
    this.tally.compactions += stats.compactions;
    this.tally.tableMoves += stats.tableMoves;
  }

  async open(): Promise<void> {
    this.killable = new ProcessFileSystem(this.disk);
    this.tree = await LsmTree.open({ ...this.options, fileSystem: this.killable });
  }

  key(): Uint8Array {
    return this.random.chance(0.9) ? this.random.pick(this.keys) : this.random.bytes(this.random.int(5));
  }

  value(): Uint8Array {
    return this.random.bytes(this.random.chance(0.05) ? this.random.range(200, 900) : this.random.int(40));
  }

  writeOperations(): WriteOperation[] {
    const count = this.random.chance(0.5) ? 1 : this.random.range(0, 8);
    return Array.from({ length: count }, () =>
      this.random.chance(0.7) ? { type: 'put', key: this.key(), value: this.value() } : { type: 'delete', key: this.key() },
    );
  }

  iterateOptions(): IterateOptions {
    const random = this.random;
    const bound = () => (random.chance(0.5) ? random.pick(this.keys) : random.bytes(random.int(3)));
    return {
      start: random.chance(0.4) ? bound() : undefined,
      end: random.chance(0.4) ? bound() : undefined,
      prefix: random.chance(0.3) ? random.pick(this.prefixes) : undefined,
      reverse: random.chance(0.5),
      limit: random.chance(0.4) ? random.int(25) : undefined,
    };
  }

  /** A write whose failure on a full or failing disk leaves the model untouched. */
  async write(operations: WriteOperation[]): Promise<void> {
    try {
      await this.tree.batch(operations);
      applyToModel(this.model, operations);
    } catch (error) {
      if (!isDiskFault(error)) throw error;
      this.tally.diskFullWrites++;
    }
  }

  checkGet(view: { get(key: Uint8Array): Uint8Array | undefined }, model: Model, key: Uint8Array): void {
    const expected = model.get(hex(key))?.[1];
    const actual = view.get(key);
    const same = actual === undefined || expected === undefined ? actual === expected : compareBytes(actual, expected) === 0;
    // expect() only on a mismatch: its bookkeeping would dominate thousands of matching reads.
    if (!same) expect(actual === undefined ? undefined : hex(actual), `get ${hex(key)}`).toBe(expected === undefined ? undefined : hex(expected));
  }

  checkIterate(view: { iterate(options?: IterateOptions): Iterable<[Uint8Array, Uint8Array]> }, model: Model, options: IterateOptions): void {
    this.tally.iterations++;
    const actual = render(view.iterate(options));
    const expected = render(expectedEntries(model, options));
    if (actual.join() !== expected.join()) {
      expect(actual, `iterate ${JSON.stringify(options, (_, v) => (v instanceof Uint8Array ? hex(v) : v))}`).toEqual(expected);
    }
  }

  checkAll(): void {
    this.checkIterate(this.tree, this.model, {});
    for (const [key] of this.model.values()) this.checkGet(this.tree, this.model, key);
  }

  releaseSnapshots(): void {
    for (const { snapshot } of this.snapshots) snapshot.release();
    this.snapshots = [];
  }

  async reopen(): Promise<void> {
    this.releaseSnapshots();
    this.collectStats();
    await this.tree.close();
    await this.open();
    this.tally.reopens++;
    this.checkAll();
  }

  /** Writes in flight, a power cut at a random moment, reopen: acknowledged writes plus a prefix of the in-flight ones. */
  async crash(): Promise<void> {
    const random = this.random;
    this.releaseSnapshots();
    const inFlight: { operations: WriteOperation[]; acknowledged: boolean; promise: Promise<void> }[] = [];
    for (let count = random.int(8); count > 0; count--) {
      const operations = this.writeOperations();
      const write = { operations, acknowledged: false, promise: Promise.resolve() };
      write.promise = this.tree.batch(operations).then(
        () => {
          write.acknowledged = true;
        },
        () => {},
      );
      inFlight.push(write);
      if (random.chance(0.3)) await Promise.resolve();
    }
    const flushing = random.chance(0.3) ? this.tree.flushMemtable().catch(() => {}) : Promise.resolve();
    for (let ticks = random.int(6); ticks > 0; ticks--) await new Promise((resolve) => setImmediate(resolve));
    // An empty batch writes nothing and resolves at once: it says nothing about durability.
    const acknowledgedBeforeCrash = inFlight.map((write) => write.acknowledged && write.operations.length > 0);
    this.killable.kill();
    this.disk.crash(random.fork(), {
      tornTailProbability: random.float(),
      bitFlipProbability: random.float(),
      namespaceChangeSurvivesProbability: random.float(),
    });
    await Promise.allSettled([...inFlight.map((write) => write.promise), flushing]);
    this.collectStats();
    await this.tree.close().catch(() => {});
    await this.open();
    this.tally.crashes++;
    // Acknowledged writes come first in sequence order; the recovered state is the model with
    // some prefix of the in-flight writes applied, and that prefix covers every acknowledged one.
    const firstUnacknowledged = acknowledgedBeforeCrash.indexOf(false);
    const mustSurvive = firstUnacknowledged < 0 ? inFlight.length : acknowledgedBeforeCrash.lastIndexOf(true) + 1;
    const actual = render(this.tree.iterate());
    const candidate: Model = new Map(this.model);
    let matched = -1;
    for (let prefix = 0; prefix <= inFlight.length; prefix++) {
      if (prefix > 0) applyToModel(candidate, inFlight[prefix - 1].operations);
      if (prefix >= mustSurvive && matched < 0 && render(expectedEntries(candidate, {})).join() === actual.join()) {
        matched = prefix;
        this.model = new Map(candidate);
      }
    }
    if (matched < 0 && process.env.LSM_DEBUG) {
      const expectedAll = render(expectedEntries(this.model, {}));
      console.log('recovery', this.tree.recovery, 'mustSurvive', mustSurvive, 'inFlight', inFlight.length, acknowledgedBeforeCrash);
      console.log('missing', expectedAll.filter((entry) => !actual.includes(entry)));
      console.log('extra', actual.filter((entry) => !expectedAll.includes(entry)));
      console.log('inflight', inFlight.map((write) => write.operations.map((operation) => `${operation.type} ${hex(operation.key)}`)));
    }
    expect(matched, `after crash: state is not acknowledged writes plus a prefix of in-flight ones (must keep ${mustSurvive})`).toBeGreaterThanOrEqual(0);
    this.tally.inFlightSurvived += matched;
    this.checkAll();
  }

  /** Flips a bit of a durable table: reads return the model's bytes or fail with CORRUPTION. */
  async flipTableBit(): Promise<void> {
    const tables = this.disk.allFiles().filter((path) => path.endsWith('.sst'));
    if (tables.length === 0) return;
    const path = this.random.pick(tables);
    const size = this.disk.readFile(path).length;
    const position = this.random.int(size);
    const bit = this.random.int(8);
    this.disk.flipBit(path, position, bit);
    this.tally.flips++;
    let detected = false;
    const guarded = (check: () => void) => {
      try {
        check();
      } catch (error) {
        if (!(error instanceof PaxosStoreError && error.code === 'CORRUPTION')) throw error;
        detected = true;
      }
    };
    guarded(() => this.checkIterate(this.tree, this.model, {}));
    guarded(() => this.checkIterate(this.tree, this.model, { reverse: true }));
    for (const [key] of this.model.values()) guarded(() => this.checkGet(this.tree, this.model, key));
    if (detected) this.tally.flipsDetected++;
    this.disk.flipBit(path, position, bit);
  }

  /** A full disk for a while: writes fail with NO_SPACE and change nothing, reads keep working. */
  async diskFull(): Promise<void> {
    const random = this.random;
    this.disk.capacityBytes = this.disk.counters.appendedBytes + random.int(3000);
    if (random.chance(0.3)) this.disk.failNextSyncs = random.range(1, 3);
    for (let count = random.range(1, 25); count > 0; count--) {
      await this.write(this.writeOperations());
      this.checkGet(this.tree, this.model, this.key());
    }
    if (random.chance(0.3)) {
      this.releaseSnapshots();
      this.collectStats();
      await this.tree.close();
      try {
        await this.open();
      } catch (error) {
        if (!isDiskFault(error)) throw error;
        this.disk.capacityBytes = Number.POSITIVE_INFINITY;
        this.disk.failNextSyncs = 0;
        await this.open();
      }
    }
    this.disk.capacityBytes = Number.POSITIVE_INFINITY;
    this.disk.failNextSyncs = 0;
    this.checkAll();
  }

  /** The roll of the running step, printed when a seed fails. */
  lastRoll = 0;

  async step(): Promise<void> {
    const random = this.random;
    const roll = random.float() * 100;
    this.lastRoll = roll;
    if (roll < 25) await this.write([{ type: 'put', key: this.key(), value: this.value() }]);
    else if (roll < 33) await this.write([{ type: 'delete', key: this.key() }]);
    else if (roll < 43) await this.write(this.writeOperations());
    else if (roll < 47) {
      // Many writes at once share group commits; they apply in call order.
      const batches = Array.from({ length: random.range(2, 10) }, () => this.writeOperations());
      await Promise.all(batches.map((operations) => this.tree.batch(operations)));
      for (const operations of batches) applyToModel(this.model, operations);
    } else if (roll < 65) this.checkGet(this.tree, this.model, this.key());
    else if (roll < 76) this.checkIterate(this.tree, this.model, this.iterateOptions());
    else if (roll < 78) {
      if (this.snapshots.length >= 3) this.snapshots.shift()!.snapshot.release();
      this.snapshots.push({ snapshot: this.tree.snapshot(), model: new Map(this.model) });
    } else if (roll < 84) {
      if (this.snapshots.length === 0) return;
      const { snapshot, model } = random.pick(this.snapshots);
      if (random.chance(0.5)) this.checkGet(snapshot, model, this.key());
      else this.checkIterate(snapshot, model, this.iterateOptions());
    } else if (roll < 86) {
      if (this.snapshots.length > 0) this.snapshots.splice(random.int(this.snapshots.length), 1)[0].snapshot.release();
    } else if (roll < 88.5) await this.interleavedIteration();
    else if (roll < 91) await this.tree.flushMemtable();
    else if (roll < 92) await (random.chance(0.5) ? this.tree.waitForBackground() : this.tree.compactAll());
    else if (roll < 93.5) await this.reopen();
    else if (roll < 96.5) await this.crash();
    else if (roll < 98) await this.flipTableBit();
    else await this.diskFull();
  }

  /** An iterator keeps its point-in-time view while writes, flushes and compactions run under it. */
  async interleavedIteration(): Promise<void> {
    const options = this.iterateOptions();
    const expected = render(expectedEntries(this.model, options));
    const iterator = this.tree.iterate(options);
    const seen: string[] = [];
    for (;;) {
      const next = iterator.next();
      if (next.done) break;
      seen.push(render([next.value])[0]);
      if (this.random.chance(0.3)) {
        await this.write(this.writeOperations());
        if (this.random.chance(0.3)) await this.tree.flushMemtable();
      }
    }
    expect(seen).toEqual(expected);
  }
}

describe('LSM tree against a sorted model', () => {
  for (const seed of seedsFromEnvironment()) {
    it(`seed ${seed}`, async () => {
      const harness = new Harness(seed);
      await harness.open();
      try {
        for (let step = 0; step < STEPS; step++) await harness.step();
        harness.releaseSnapshots();
        await harness.reopen();
      } catch (error) {
        console.error(`LSM model test failed: seed ${seed}, step roll ${harness.lastRoll.toFixed(1)}, capacity ${harness.disk.capacityBytes}, appended ${harness.disk.counters.appendedBytes} (rerun with LSM_SEEDS=${seed},)`);
        throw error;
      }
      console.log(`seed ${seed}: ${STEPS} steps, keys ${harness.model.size}, ${JSON.stringify(harness.tally)}`);
      await harness.tree.close();
    });
  }
});
