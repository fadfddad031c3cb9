import { fileURLToPath } from 'node:url';

/**
 * Resolves the file a worker thread (or piscina pool) should load, relative to the calling
 * module. Worker threads cannot load TypeScript, so when the caller itself runs from source
 * (vitest transpiles `src/**.ts` on the fly) we point at the compiled twin under `dist/`;
 * `npm test` builds before it runs the tests.
 */
export function workerFilePath(callerUrl: string, relativeJsPath: string): string {
  const callerPath = fileURLToPath(callerUrl);
  const resolved = fileURLToPath(new URL(relativeJsPath, callerUrl));
  if (!callerPath.endsWith('.ts')) return resolved;
  const marker = `${'/'}src${'/'}`;
  const index = resolved.lastIndexOf(marker);
  if (index < 0) throw new Error(`workerFilePath: ${resolved} is not under src/`);
  return `${resolved.slice(0, index)}/dist/src/${resolved.slice(index + marker.length)}`;
}
