import * as fs from 'node:fs';
import { fromSystemError } from '../errors.js';
import { type FileHandle, type FileSystem, type OpenMode, directoryOf } from './file-system.js';

/** The FileSystem on the real disk. I/O failures surface as PaxosStoreError (NO_SPACE, IO_ERROR). */
export class RealFileSystem implements FileSystem {
  open(path: string, mode: OpenMode): FileHandle {
    const flags = mode === 'read' ? 'r' : mode === 'append' ? 'a+' : 'w+';
    let fd: number;
    try {
      fd = fs.openSync(path, flags, 0o644);
    } catch (error) {
      throw fromSystemError(error, `open ${path}`);
    }
    return new RealFileHandle(path, fd, fs.fstatSync(fd).size);
  }

  exists(path: string): boolean {
    return fs.existsSync(path);
  }

  readFile(path: string): Uint8Array {
    try {
      return fs.readFileSync(path);
    } catch (error) {
      throw fromSystemError(error, `read ${path}`);
    }
  }

  async writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
    const temporary = `${path}.tmp`;
    try {
      const fd = fs.openSync(temporary, 'w', 0o644);
      try {
        fs.writeSync(fd, data, 0, data.length, 0);
        await new Promise<void>((resolve, reject) => fs.fsync(fd, (error) => (error ? reject(error) : resolve())));
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(temporary, path);
    } catch (error) {
      try {
        fs.rmSync(temporary, { force: true });
      } catch {
        // The temp file is harmless garbage; the original error is what the caller needs.
      }
      throw fromSystemError(error, `write ${path}`);
    }
    await this.syncDirectory(directoryOf(path));
  }

  rename(from: string, to: string): void {
    try {
      fs.renameSync(from, to);
    } catch (error) {
      throw fromSystemError(error, `rename ${from} → ${to}`);
    }
  }

  remove(path: string): void {
    try {
      fs.rmSync(path, { force: true });
    } catch (error) {
      throw fromSystemError(error, `remove ${path}`);
    }
  }

  list(directory: string): string[] {
    try {
      return fs.readdirSync(directory).sort();
    } catch (error) {
      if ((error as { code?: string }).code === 'ENOENT') return [];
      throw fromSystemError(error, `list ${directory}`);
    }
  }

  makeDirectory(directory: string): void {
    try {
      fs.mkdirSync(directory, { recursive: true });
    } catch (error) {
      throw fromSystemError(error, `mkdir ${directory}`);
    }
  }

  async syncDirectory(directory: string): Promise<void> {
    let fd: number;
    try {
      fd = fs.openSync(directory, 'r');
    } catch (error) {
      throw fromSystemError(error, `open directory ${directory}`);
    }
    try {
      await new Promise<void>((resolve, reject) => fs.fsync(fd, (error) => (error ? reject(error) : resolve())));
    } catch (error) {
      throw fromSystemError(error, `fsync directory ${directory}`);
    } finally {
      fs.closeSync(fd);
    }
  }
}

class RealFileHandle implements FileHandle {
  private length: number;
  private closed = false;

  constructor(
    readonly path: string,
    private readonly fd: number,
    initialLength: number,
  ) {
    this.length = initialLength;
  }

  size(): number {
    return this.length;
  }

  read(buffer: Uint8Array, offset: number, length: number, position: number): number {
    try {
      return fs.readSync(this.fd, buffer, offset, length, position);
    } catch (error) {
      throw fromSystemError(error, `read ${this.path}`);
    }
  }

  append(data: Uint8Array): number {
    const position = this.length;
    let written = 0;
    try {
      while (written < data.length) written += fs.writeSync(this.fd, data, written, data.length - written, null);
    } catch (error) {
      // A partial append leaves a torn tail; the engines' checksums detect and cut it on open,
      // and we cut it now so the next record does not land after garbage.
      if (written > 0) {
        try {
          fs.ftruncateSync(this.fd, position);
        } catch {
          // Best effort: recovery on open handles whatever remains.
        }
      }
      throw fromSystemError(error, `append ${this.path}`);
    }
    this.length += data.length;
    return position;
  }

  sync(): Promise<void> {
    return new Promise((resolve, reject) =>
      fs.fdatasync(this.fd, (error) => (error ? reject(fromSystemError(error, `fdatasync ${this.path}`)) : resolve())),
    );
  }

  truncate(length: number): void {
    try {
      fs.ftruncateSync(this.fd, length);
    } catch (error) {
      throw fromSystemError(error, `truncate ${this.path}`);
    }
    this.length = length;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}
