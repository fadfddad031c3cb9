import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EXIT_BAD_ARGUMENTS, EXIT_FAILED, EXIT_OK, runBenchCommand } from '../../src/bench/command.js';
import { type RunningRedis, startRedis } from './redis-server.js';

/** Runs the command in-process and captures what it prints. */
async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  try {
    return { code: await runBenchCommand(argv), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('paxosstore bench command', () => {
  let redis: RunningRedis;
  const directory = mkdtempSync(join(tmpdir(), 'bench-command-test-'));
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  it('rejects bad flags with exit code 2 and a clear message', async () => {
    expect((await run(['--clients', '0'])).stderr).toMatch(/--clients must be a positive integer/);
    expect((await run(['--mix', 'read=0.5'])).code).toBe(EXIT_BAD_ARGUMENTS);
    expect((await run(['--workload', 'Z'])).code).toBe(EXIT_BAD_ARGUMENTS);
    expect((await run(['--sweep', 'colour=1'])).stderr).toMatch(/socketsPerPeer/);
    expect((await run(['--endpoints', 'nope'])).stderr).toMatch(/HOST:PORT/);
    const help = await run(['--help']);
    expect(help.code).toBe(EXIT_OK);
    expect(help.stdout).toMatch(/--rate <ops>/);
  });

  it('fails with exit code 1 when nothing listens', async () => {
    const result = await run(['--endpoints', '127.0.0.1:1', '--duration', '0.1']);
    expect(result.code).toBe(EXIT_FAILED);
    expect(result.stderr).toMatch(/IO_ERROR/);
  });

  it('prints JSON and writes the report', async () => {
    const report = join(directory, 'out.html');
    const result = await run(['--endpoints', `127.0.0.1:${redis.port}`, '--duration', '0.3', '--warmup', '0', '--keys', '300', '--preload', '--json', '--report', report, '--rate', '500']);
    expect(result.code).toBe(EXIT_OK);
    const parsed = JSON.parse(result.stdout);
    expect(parsed.tool).toBe('paxosstore-bench');
    expect(parsed.config.load).toMatchObject({ kind: 'open', ratePerSecond: 500, pipeline: 32 });
    expect(parsed.statistics.total.errors).toBe(0);
    expect(readFileSync(report, 'utf8')).toMatch(/<svg class="chart"/);
  });

  it('runs a sweep through --cluster-command and prints the comparison table', async () => {
    const fake = fileURLToPath(new URL('./fake-cluster.mjs', import.meta.url));
    const result = await run([
      '--sweep', 'batchMaxDelayUs=0,100',
      '--cluster-command', `${process.execPath} ${fake}`,
      '--duration', '0.2', '--warmup', '0', '--keys', '100', '--clients', '3',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT_OK);
    expect(result.stdout).toMatch(/batchMaxDelayUs\s+ops\/s\s+p50 ms\s+p99 ms/);
    expect(result.stdout).toMatch(/\n\s*0\s+[\d,.]+/);
    expect(result.stdout).toMatch(/\n\s*100\s+[\d,.]+/);
  });
});
