/**
 * The file layer under both storage engines. Engines never touch `node:fs` directly: they take a
 * FileSystem, so the same engine code runs on the real disk (RealFileSystem) and on the simulated
 * one (SimulatedFileSystem) that loses unsynced bytes, tears the last write and flips bits.
 *
 * Durability contract (what the simulated layer enforces and the engines must respect):
 * - Bytes appended to a file are durable only after `handle.sync()` resolves.
 * - A created, renamed or removed name is durable only after `syncDirectory(dir)` resolves.
 * - `writeFileAtomic` is durable and atomic when it resolves (temp file, sync, rename, dir sync).
 *
 * Reads and appends are synchronous (page-cache speed; a shard worker owns its files, so a
 * blocking pread of a few microseconds is cheaper than a round trip through libuv's pool);
 * `sync` is asynchronous because fdatasync costs ~100 µs and is where group commit pays off.
 */

export type OpenMode =
  /** Existing file, read only. Fails if missing. */
  | 'read'
  /** Existing or new file, positioned for appends at its current end; reads allowed. */
  | 'append'
  /** New empty file (truncates an existing one), appends and reads allowed. */
  | 'create';

export interface FileHandle {
  readonly path: string;
  /** Current length including bytes not yet synced. */
  size(): number;
  /** pread: fills `buffer[offset, offset+length)` from `position`; returns the bytes read (short at EOF). */
  read(buffer: Uint8Array, offset: number, length: number, position: number): number;
  /** Appends all of `data` at the end; returns the position it was written at. Throws on I/O error (e.g. ENOSPC). */
  append(data: Uint8Array): number;
  /** Makes every byte appended so far durable (fdatasync). */
  sync(): Promise<void>;
  /** Cuts the file to `length` bytes (used to drop a torn tail); durable after the next sync. */
  truncate(length: number): void;
  close(): void;
}

export interface FileSystem {
  open(path: string, mode: OpenMode): FileHandle;
  exists(path: string): boolean;
  /** Whole-file read; throws if missing. */
  readFile(path: string): Uint8Array;
  /** Writes `data` to `path` so that a crash leaves either the old or the new content, never a mix. */
  writeFileAtomic(path: string, data: Uint8Array): Promise<void>;
  rename(from: string, to: string): void;
  remove(path: string): void;
  /** Names (not paths) of the entries of `directory`, sorted. Empty if the directory is missing. */
  list(directory: string): string[];
  /** mkdir -p; the new directories are durable at once (a simplification both layers share). */
  makeDirectory(directory: string): void;
  /** Makes creations, renames and removals in `directory` durable. */
  syncDirectory(directory: string): Promise<void>;
}

export function joinPath(directory: string, name: string): string {
  return directory.endsWith('/') ? `${directory}${name}` : `${directory}/${name}`;
}

export function directoryOf(path: string): string {
  const index = path.lastIndexOf('/');
  return index <= 0 ? (index === 0 ? '/' : '.') : path.slice(0, index);
}

export function baseNameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
