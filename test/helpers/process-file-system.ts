import { PaxosStoreError } from '../../src/errors.js';
import { directoryOf, type FileHandle, type FileSystem, type OpenMode } from '../../src/storage/file-system.js';
import type { SimulatedFileSystem } from '../../src/storage/sim-file-system.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * One process lifetime's view of the simulated disk, for the engines' model-based crash tests.
 * `kill()` ends the lifetime: a merge, compaction or hint write still running in the dead engine
 * cannot touch the files its next incarnation opens (a real crash kills the process). Every
 * fdatasync takes a turn of the event loop, so a crash can land between an append and its sync.
 */
export class ProcessFileSystem implements FileSystem {
  private alive = true;
  constructor(private readonly inner: SimulatedFileSystem) {}

  kill(): void {
    this.alive = false;
  }

  private check(): void {
    if (!this.alive) throw new PaxosStoreError('CLOSED', 'this process was killed');
  }

  open(path: string, mode: OpenMode): FileHandle {
    this.check();
    const handle = this.inner.open(path, mode);
    const check = (): void => this.check();
    return {
      path: handle.path,
      size: () => handle.size(),
      read: (buffer, offset, length, position) => handle.read(buffer, offset, length, position),
      append: (data) => {
        check();
        return handle.append(data);
      },
      sync: async () => {
        await tick();
        check();
        await handle.sync();
      },
      truncate: (length) => {
        check();
        handle.truncate(length);
      },
      close: () => handle.close(),
    };
  }

  exists(path: string): boolean {
    this.check();
    return this.inner.exists(path);
  }

  readFile(path: string): Uint8Array {
    this.check();
    return this.inner.readFile(path);
  }

  /** Built from this view's own steps, so its sync takes a turn too and a crash can land inside. */
  async writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
    const temporary = `${path}.tmp`;
    const handle = this.open(temporary, 'create');
    try {
      handle.append(data);
      await handle.sync();
    } finally {
      handle.close();
    }
    this.rename(temporary, path);
    await this.syncDirectory(directoryOf(path));
  }

  rename(from: string, to: string): void {
    this.check();
    this.inner.rename(from, to);
  }

  remove(path: string): void {
    this.check();
    this.inner.remove(path);
  }

  list(directory: string): string[] {
    this.check();
    return this.inner.list(directory);
  }

  makeDirectory(directory: string): void {
    this.check();
    this.inner.makeDirectory(directory);
  }

  async syncDirectory(directory: string): Promise<void> {
    this.check();
    await tick();
    this.check();
    await this.inner.syncDirectory(directory);
  }
}
