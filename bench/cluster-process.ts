/**
 * Starting and stopping processes for the cluster-level benchmarks: the local PaxosStore cluster
 * (through the CLI, waiting for its JSON ready line) and any child that announces readiness on
 * stdout.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const cliPath = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

export function waitForLine(child: ChildProcess, predicate: (line: string) => boolean, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out waiting for the process to become ready')), timeoutMs);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      process.stderr.write(`  | ${line}\n`);
      if (predicate(line)) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    child.once('exit', (code) => reject(new Error(`process exited early with code ${code}`)));
  });
}

/** `paxosstore cluster` in `directory` with RESP on basePort, basePort+100, …; resolves once it serves. */
export async function startClusterProcess(directory: string, basePort: number, extraArgs: readonly string[] = []): Promise<ChildProcess> {
  const args = [cliPath, 'cluster', '--data-dir', directory, '--base-port', String(basePort), ...extraArgs];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  await waitForLine(child, (line) => line.startsWith('{"event":"ready"'), 60_000);
  return child;
}

/** Cluster flags from the BENCH_* environment knobs shared by the cluster benchmarks. */
export function clusterArgsFromEnvironment(): string[] {
  const args: string[] = [];
  if (process.env.BENCH_SHARDS) args.push('--shards', process.env.BENCH_SHARDS);
  if (process.env.BENCH_SOCKETS_PER_PEER) args.push('--sockets-per-peer', process.env.BENCH_SOCKETS_PER_PEER);
  if (process.env.BENCH_BATCH_MAX_DELAY_US) args.push('--batch-max-delay-us', process.env.BENCH_BATCH_MAX_DELAY_US);
  return args;
}

export function stopProcess(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
