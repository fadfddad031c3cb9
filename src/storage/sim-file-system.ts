import { PaxosStoreError } from '../errors.js';
import type { Random } from '../util/random.js';
import { type FileHandle, type FileSystem, type OpenMode, directoryOf } from './file-system.js';

/**
 * An in-memory FileSystem with the crash semantics of a real disk, for model-based tests and the
 * simulators. Each file (inode) keeps its current bytes and how much of them is durable; each
 * name is durable only once its directory was synced. `crash()` keeps only what was durable,
 * plus, at random, a torn prefix of the unsynced tail (possibly with a flipped bit), and
 * invalidates every open handle.
 *
 *   current bytes:  [ durable ........................ | unsynced tail ]
 *   after crash:    [ durable ........................ | torn prefix? ]
 *
 * Faults on demand: `capacityBytes` (appends past it fail with ENOSPC and write nothing),
 * `failNextSyncs` (the next N syncs fail with EIO, making nothing durable), `flipBit`.
 */

interface Inode {
  data: Uint8Array;
  length: number;
  durableLength: number;
  /** Set when a truncate cut into durable bytes: the durable content is then this copy. */
  durableOverride: Uint8Array | null;
}

export interface CrashOptions {
  /** Probability that a file's unsynced tail survives partially (a torn write). Default 0.5. */
  tornTailProbability?: number;
  /** Probability that a surviving torn tail has one bit flipped. Default 0.2. */
  bitFlipProbability?: number;
  /** Probability that each un-synced namespace change (create/rename/remove) survives. Default 0.5. */
  namespaceChangeSurvivesProbability?: number;
}

function systemError(code: string, message: string): Error {
  const error = new Error(`${code}: ${message}`) as Error & { code: string };
  error.code = code;
  return error;
}

export class SimulatedFileSystem implements FileSystem {
  private current = new Map<string, Inode>();
  private durable = new Map<string, Inode>();
  private directories = new Set<string>(['/', '.']);
  private generation = 0;
  /** Total appended bytes allowed across files; appends beyond fail with ENOSPC. */
  capacityBytes = Number.POSITIVE_INFINITY;
  /** The next N `sync` calls fail with EIO. */
  failNextSyncs = 0;
  /** Counters for tests. */
  readonly counters = { syncs: 0, appends: 0, appendedBytes: 0, crashes: 0 };

  open(path: string, mode: OpenMode): FileHandle {
    let inode = this.current.get(path);
    if (mode === 'read' && !inode) throw new PaxosStoreError('IO_ERROR', `open ${path}: no such file`, { systemCode: 'ENOENT' });
    if (!this.directories.has(directoryOf(path))) {
      throw new PaxosStoreError('IO_ERROR', `open ${path}: no such directory`, { systemCode: 'ENOENT' });
    }
    if (!inode || mode === 'create') {
      inode = { data: new Uint8Array(256), length: 0, durableLength: 0, durableOverride: null };
      if (mode === 'create' && this.current.get(path)) {
        // Truncating an existing file: the old inode stays durable until the new one is synced.
        const old = this.current.get(path)!;
        inode.durableOverride = old.durableOverride ?? old.data.slice(0, old.durableLength);
        inode.durableLength = 0;
        if (this.durable.get(path) === old) this.durable.set(path, inode);
      }
      this.current.set(path, inode);
    }
    return new SimulatedFileHandle(this, path, inode, this.generation);
  }

  exists(path: string): boolean {
    return this.current.has(path) || this.directories.has(path);
  }

  readFile(path: string): Uint8Array {
    const inode = this.current.get(path);
    if (!inode) throw new PaxosStoreError('IO_ERROR', `read ${path}: no such file`, { systemCode: 'ENOENT' });
    return inode.data.slice(0, inode.length);
  }

  async writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
    const generation = this.generation;
    const temporary = `${path}.tmp`;
    const handle = this.open(temporary, 'create');
    try {
      handle.append(data);
      await handle.sync();
    } finally {
      handle.close();
    }
    // A crash while we awaited the sync killed the process that called us: it must not go on to
    // rename on the rebooted disk.
    this.checkGeneration(generation, path);
    this.rename(temporary, path);
    await this.syncDirectory(directoryOf(path));
  }

  rename(from: string, to: string): void {
    const inode = this.current.get(from);
    if (!inode) throw new PaxosStoreError('IO_ERROR', `rename ${from}: no such file`, { systemCode: 'ENOENT' });
    this.current.delete(from);
    this.current.set(to, inode);
  }

  remove(path: string): void {
    this.current.delete(path);
  }

  list(directory: string): string[] {
    const prefix = directory.endsWith('/') ? directory : `${directory}/`;
    const names = new Set<string>();
    for (const path of this.current.keys()) {
      if (path.startsWith(prefix) && !path.slice(prefix.length).includes('/')) names.add(path.slice(prefix.length));
    }
    for (const path of this.directories) {
      if (path.startsWith(prefix) && path.length > prefix.length && !path.slice(prefix.length).includes('/')) {
        names.add(path.slice(prefix.length));
      }
    }
    return [...names].sort();
  }

  makeDirectory(directory: string): void {
    let path = directory.endsWith('/') && directory.length > 1 ? directory.slice(0, -1) : directory;
    while (path && path !== '/' && path !== '.' && !this.directories.has(path)) {
      this.directories.add(path);
      path = directoryOf(path);
    }
  }

  async syncDirectory(directory: string): Promise<void> {
    for (const path of new Set([...this.current.keys(), ...this.durable.keys()])) {
      if (directoryOf(path) !== directory) continue;
      const inode = this.current.get(path);
      if (inode) this.durable.set(path, inode);
      else this.durable.delete(path);
    }
  }

  /** Flips one bit of a file's current (and, if synced, durable) content: simulated media corruption. */
  flipBit(path: string, position: number, bit = 0): void {
    const inode = this.current.get(path);
    if (!inode || position >= inode.length) throw new Error(`flipBit: ${path} has no byte ${position}`);
    inode.data[position] ^= 1 << bit;
    if (inode.durableOverride && position < inode.durableOverride.length) inode.durableOverride[position] ^= 1 << bit;
  }

  /** Names of all files, for tests. */
  allFiles(): string[] {
    return [...this.current.keys()].sort();
  }

  /** Power loss: only durable state survives (plus random torn tails); open handles die. */
  crash(random: Random, options: CrashOptions = {}): void {
    const tornTailProbability = options.tornTailProbability ?? 0.5;
    const bitFlipProbability = options.bitFlipProbability ?? 0.2;
    const namespaceSurvives = options.namespaceChangeSurvivesProbability ?? 0.5;
    this.generation++;
    this.counters.crashes++;
    const names = new Set([...this.current.keys(), ...this.durable.keys()]);
    const next = new Map<string, Inode>();
    const survivors = new Map<Inode, Inode>();
    for (const path of [...names].sort()) {
      const pending = this.current.get(path) !== this.durable.get(path);
      const chosen = pending && random.chance(namespaceSurvives) ? this.current.get(path) : this.durable.get(path);
      if (!chosen) continue;
      let survivor = survivors.get(chosen);
      if (!survivor) {
        survivor = this.surviveCrash(chosen, random, tornTailProbability, bitFlipProbability);
        survivors.set(chosen, survivor);
      }
      next.set(path, survivor);
    }
    this.current = next;
    this.durable = new Map(next);
  }

  private surviveCrash(inode: Inode, random: Random, tornTailProbability: number, bitFlipProbability: number): Inode {
    const base = inode.durableOverride ?? inode.data.subarray(0, inode.durableLength);
    let length = base.length;
    let tail: Uint8Array = new Uint8Array(0);
    if (!inode.durableOverride && inode.length > inode.durableLength && random.chance(tornTailProbability)) {
      const unsynced = inode.length - inode.durableLength;
      tail = inode.data.slice(inode.durableLength, inode.durableLength + random.int(unsynced + 1));
      if (tail.length > 0 && random.chance(bitFlipProbability)) tail[random.int(tail.length)] ^= 1 << random.int(8);
    }
    const data = new Uint8Array(Math.max(256, length + tail.length));
    data.set(base, 0);
    data.set(tail, length);
    length += tail.length;
    return { data, length, durableLength: length, durableOverride: null };
  }

  /** @internal used by handles */
  checkGeneration(generation: number, path: string): void {
    if (generation !== this.generation) throw new PaxosStoreError('CLOSED', `${path}: handle invalidated by a crash`);
  }

  /** @internal */
  reserve(bytes: number, path: string): void {
    if (this.counters.appendedBytes + bytes > this.capacityBytes) throw systemError('ENOSPC', `append ${path}`);
    this.counters.appends++;
    this.counters.appendedBytes += bytes;
  }

  /** @internal */
  consumeSyncFailure(): boolean {
    this.counters.syncs++;
    if (this.failNextSyncs <= 0) return false;
    this.failNextSyncs--;
    return true;
  }
}

class SimulatedFileHandle implements FileHandle {
  private closed = false;

  constructor(
    private readonly fileSystem: SimulatedFileSystem,
    readonly path: string,
    private readonly inode: Inode,
    private readonly generation: number,
  ) {}

  private check(): void {
    if (this.closed) throw new PaxosStoreError('CLOSED', `${this.path}: handle closed`);
    this.fileSystem.checkGeneration(this.generation, this.path);
  }

  size(): number {
    this.check();
    return this.inode.length;
  }

  read(buffer: Uint8Array, offset: number, length: number, position: number): number {
    this.check();
    const available = Math.max(0, Math.min(length, this.inode.length - position));
    buffer.set(this.inode.data.subarray(position, position + available), offset);
    return available;
  }

  append(data: Uint8Array): number {
    this.check();
    try {
      this.fileSystem.reserve(data.length, this.path);
    } catch (error) {
      throw new PaxosStoreError('NO_SPACE', `append ${this.path}: no space left on device`, undefined, { cause: error });
    }
    const inode = this.inode;
    if (inode.length + data.length > inode.data.length) {
      const grown = new Uint8Array(Math.max(inode.data.length * 2, inode.length + data.length));
      grown.set(inode.data.subarray(0, inode.length));
      inode.data = grown;
    }
    const position = inode.length;
    inode.data.set(data, position);
    inode.length += data.length;
    return position;
  }

  async sync(): Promise<void> {
    this.check();
    if (this.fileSystem.consumeSyncFailure()) {
      throw new PaxosStoreError('IO_ERROR', `fdatasync ${this.path}: input/output error`, { systemCode: 'EIO' });
    }
    this.inode.durableLength = this.inode.length;
    this.inode.durableOverride = null;
  }

  truncate(length: number): void {
    this.check();
    const inode = this.inode;
    if (length < inode.durableLength && !inode.durableOverride) {
      inode.durableOverride = inode.data.slice(0, inode.durableLength);
    }
    if (length < inode.length) inode.data.fill(0, length, inode.length);
    inode.length = Math.min(length, inode.length);
    inode.durableLength = Math.min(inode.durableLength, inode.length);
  }

  close(): void {
    this.closed = true;
  }
}
