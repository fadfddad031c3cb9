#!/usr/bin/env node
/**
 * A stand-in for `paxosstore cluster` that honours the same contract, so the sweep orchestration
 * is tested without the real server: flags --replicas N --data-dir DIR --base-port P [...], one
 * redis-server per replica on P+(r-1)*100 (RESP) and an in-memory HTTP KV on P+(r-1)*100+1, the
 * JSON ready line on stdout, a clean exit on SIGTERM.
 *
 * For the test to check what happened, every start and stop is appended to $FAKE_CLUSTER_LOG as
 * one JSON line. FAKE_CLUSTER_MODE=never-ready prints nothing and waits; =exit-early exits 7.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';

const args = process.argv.slice(2);
const flag = (name) => {
  const index = args.indexOf(name);
  return index === -1 ? undefined : args[index + 1];
};
const log = (entry) => {
  if (process.env.FAKE_CLUSTER_LOG) appendFileSync(process.env.FAKE_CLUSTER_LOG, `${JSON.stringify(entry)}\n`);
};

const replicas = Number(flag('--replicas'));
const dataDir = flag('--data-dir');
const basePort = Number(flag('--base-port'));
log({ event: 'start', args, pid: process.pid });

if (process.env.FAKE_CLUSTER_MODE === 'exit-early') {
  process.stderr.write('fake cluster: exiting on purpose\n');
  process.exit(7);
}

const children = [];
const servers = [];
let stopping = false;

function stop() {
  if (stopping) return;
  stopping = true;
  for (const child of children) child.kill('SIGTERM');
  for (const server of servers) server.close();
  Promise.all(children.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve))))).then(() => {
    log({ event: 'stopped', dataDir });
    process.exit(0);
  });
}
process.on('SIGTERM', stop);

if (process.env.FAKE_CLUSTER_MODE === 'never-ready') {
  setInterval(() => {}, 1000);
} else {
  const ready = [];
  for (let replica = 1; replica <= replicas; replica++) {
    const respPort = basePort + (replica - 1) * 100;
    const directory = join(dataDir, `r${replica}`);
    mkdirSync(directory, { recursive: true });
    children.push(spawn('redis-server', ['--port', String(respPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', directory], { stdio: 'ignore' }));
    const store = new Map();
    const server = http.createServer((request, response) => {
      const key = decodeURIComponent((request.url ?? '').replace(/^\/v1\/kv\//, ''));
      const chunks = [];
      request.on('data', (chunk) => chunks.push(chunk));
      request.on('end', () => {
        if (request.method === 'PUT') {
          store.set(key, Buffer.concat(chunks));
          response.writeHead(204).end();
        } else if (store.has(key)) {
          response.writeHead(200).end(store.get(key));
        } else {
          response.writeHead(404).end();
        }
      });
    });
    server.listen(respPort + 1, '127.0.0.1');
    servers.push(server);
    ready.push({ id: replica, resp: { host: '127.0.0.1', port: respPort }, http: { host: '127.0.0.1', port: respPort + 1 } });
  }
  const reachable = (port) =>
    new Promise((resolve) => {
      const socket = net.connect({ port, host: '127.0.0.1' }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
  const waitReady = async () => {
    for (let attempt = 0; attempt < 200; attempt++) {
      const states = await Promise.all(ready.flatMap((replica) => [reachable(replica.resp.port), reachable(replica.http.port)]));
      if (states.every(Boolean)) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error('redis-server did not start');
  };
  waitReady().then(
    () => {
      process.stdout.write('fake cluster starting\n');
      process.stdout.write(`${JSON.stringify({ event: 'ready', replicas: ready })}\n`);
    },
    (error) => {
      process.stderr.write(`${error.message}\n`);
      stop();
    },
  );
}
