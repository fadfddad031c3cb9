/** Transcript scenarios (testdata/*.txt); REWRITE=1 npx vitest run test/consensus/transcripts.test.ts regenerates them. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runTranscript } from './transcript-harness.js';

const directory = join(fileURLToPath(new URL('.', import.meta.url)), 'testdata');

describe('consensus transcripts', () => {
  for (const file of readdirSync(directory).filter((name) => name.endsWith('.txt'))) {
    it(file, () => {
      const { expected, actual } = runTranscript(join(directory, file), process.env.REWRITE === '1');
      expect(actual).toBe(expected);
    });
  }
});
