/**
 * Loads uWebSockets.js, the native HTTP/WebSocket server under the HTTP and WebSocket front ends.
 *
 * uWebSockets.js is not published on npm under its own name; two republished builds exist
 * (DESIGN.md §7), and each covers different machines:
 *
 *   package                          version   Node      glibc
 *   @btc-vision/uwebsockets.js       20.57     20–25     ≥ 2.38
 *   @trufflesuite/uws-js-unofficial  20.30     16–20     ≥ 2.31 (works on Debian 12)
 *
 * We try them in that order and take the first whose native binary loads. The trufflesuite
 * package silently falls back to a slow pure-JavaScript imitation when its binary does not
 * match the running Node; we load its binary directly instead, so a mismatch is a clear error
 * rather than a hidden 10× slowdown.
 *
 * Both builds expose the same API for what we use (App, listen with LIBUS_LISTEN_EXCLUSIVE_PORT,
 * us_listen_socket_close, us_socket_local_port, app.close()), described by the trufflesuite
 * type declarations, which we reuse as the type of whichever module loaded.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as UwsTypes from '@trufflesuite/uws-js-unofficial';
import { PaxosStoreError } from '../errors.js';

export type {
  HttpRequest,
  HttpResponse,
  TemplatedApp,
  us_listen_socket as ListenSocket,
  WebSocket as UwsWebSocket,
  WebSocketBehavior,
} from '@trufflesuite/uws-js-unofficial';

/** The parts of the uWebSockets.js module the front ends use. */
export interface UwsModule {
  App: typeof UwsTypes.App;
  us_listen_socket_close: typeof UwsTypes.us_listen_socket_close;
  us_socket_local_port: typeof UwsTypes.us_socket_local_port;
  /** Listen option: fail instead of sharing the port with another process (SO_REUSEPORT off). */
  LIBUS_LISTEN_EXCLUSIVE_PORT: number;
  DISABLED: number;
}

export interface LoadedUws {
  readonly module: UwsModule;
  /** Which npm package supplied the native binary. */
  readonly packageName: string;
}

const BTC_VISION_PACKAGE = '@btc-vision/uwebsockets.js';
const TRUFFLESUITE_PACKAGE = '@trufflesuite/uws-js-unofficial';

let cached: LoadedUws | undefined;

/** Returns the loaded uWebSockets.js module (loaded once per thread); throws CONFIG_MISMATCH naming both packages if neither loads. */
export function loadUws(): LoadedUws {
  if (cached !== undefined) return cached;
  const require = createRequire(import.meta.url);
  cached = loadFirstUws([
    [BTC_VISION_PACKAGE, () => require(BTC_VISION_PACKAGE)],
    [TRUFFLESUITE_PACKAGE, () => loadTrufflesuiteBinary(require)],
  ]);
  return cached;
}

/** Tries each candidate in order; the first that yields something shaped like uWebSockets.js wins. */
export function loadFirstUws(candidates: readonly (readonly [packageName: string, load: () => unknown])[]): LoadedUws {
  const failures: string[] = [];
  for (const [packageName, load] of candidates) {
    try {
      const module = load() as UwsModule;
      if (typeof module?.App !== 'function' || typeof module.us_listen_socket_close !== 'function') {
        throw new Error('module does not look like uWebSockets.js (no App / us_listen_socket_close)');
      }
      return { module, packageName };
    } catch (error) {
      failures.push(`${packageName}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
    }
  }
  throw new PaxosStoreError(
    'CONFIG_MISMATCH',
    `cannot load uWebSockets.js for Node ${process.versions.node} (${process.platform}-${process.arch}, ABI ${process.versions.modules}); ` +
      `install ${BTC_VISION_PACKAGE} (Node 20–25, glibc ≥ 2.38) or ${TRUFFLESUITE_PACKAGE} (Node 16–20). Tried: ${failures.join('; ')}`,
  );
}

/** Loads the trufflesuite native binary itself, skipping the package's pure-JavaScript fallback. */
function loadTrufflesuiteBinary(require: NodeJS.Require): unknown {
  const packageDirectory = dirname(require.resolve(`${TRUFFLESUITE_PACKAGE}/package.json`));
  const binary = join(
    packageDirectory,
    'binaries',
    `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`,
  );
  if (!existsSync(binary)) throw new Error(`no native binary for this Node ABI (${binary} missing)`);
  return require(binary);
}
