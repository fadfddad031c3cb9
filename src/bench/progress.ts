/**
 * The live progress line on a terminal: a bar, the phase, and the throughput of the last tick.
 * Written to stderr with \r so it never mixes with the table or JSON on stdout; silent when
 * stderr is not a TTY (CI logs, pipes).
 */
import type { Progress } from './load.js';

const BAR_WIDTH = 30;

export interface ProgressLine {
  update(progress: Progress): void;
  message(text: string): void;
  finish(): void;
}

export function createProgressLine(stream: NodeJS.WriteStream = process.stderr): ProgressLine {
  if (!stream.isTTY) return { update() {}, message() {}, finish() {} };
  let lastCompleted = 0;
  let lastElapsedUs = 0;
  let shown = false;
  const write = (text: string): void => {
    stream.write(`\r\x1b[2K${text}`);
    shown = true;
  };
  return {
    update(progress) {
      const deltaUs = progress.elapsedUs - lastElapsedUs;
      const rate = deltaUs > 0 ? ((progress.completed - lastCompleted) * 1e6) / deltaUs : 0;
      lastCompleted = progress.completed;
      lastElapsedUs = progress.elapsedUs;
      const fraction = Math.min(1, progress.elapsedUs / progress.totalUs);
      const filled = Math.round(fraction * BAR_WIDTH);
      const bar = `${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}`;
      const seconds = `${(progress.elapsedUs / 1e6).toFixed(1)}/${(progress.totalUs / 1e6).toFixed(1)} s`;
      write(`[${bar}] ${progress.phase.padEnd(7)} ${seconds}  ${Math.round(rate).toLocaleString('en-US')} ops/s  errors ${progress.failed}`);
    },
    message(text) {
      write(text);
    },
    finish() {
      if (shown) stream.write('\r\x1b[2K');
      shown = false;
    },
  };
}
