import { describe, expect, test } from 'vitest';
import { loadFirstUws, loadUws } from '../../src/frontends/uws.js';

describe('uWebSockets.js loader', () => {
  test('loads a native build on this machine (trufflesuite binary, not its JavaScript fallback)', () => {
    const { module, packageName } = loadUws();
    expect(['@btc-vision/uwebsockets.js', '@trufflesuite/uws-js-unofficial']).toContain(packageName);
    expect(typeof module.App).toBe('function');
    expect(typeof module.LIBUS_LISTEN_EXCLUSIVE_PORT).toBe('number');
    // The fallback is a JavaScript class; the native App is a function from the addon.
    expect(module.App.toString()).toContain('[native code]');
  });

  test('takes the first candidate that loads, skipping ones that fail or are not uWS', () => {
    const fake = { App: () => ({}), us_listen_socket_close: () => {} };
    const loaded = loadFirstUws([
      ['first', () => { throw new Error('ABI mismatch'); }],
      ['second', () => ({ something: 'else' })],
      ['third', () => fake],
    ]);
    expect(loaded.packageName).toBe('third');
    expect(loaded.module).toBe(fake);
  });

  test('names both packages and each failure when nothing loads', () => {
    let caught: unknown;
    try {
      loadFirstUws([
        ['@btc-vision/uwebsockets.js', () => { throw new Error('GLIBC_2.38 not found'); }],
        ['@trufflesuite/uws-js-unofficial', () => { throw new Error('no native binary for this Node ABI'); }],
      ]);
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ code: 'CONFIG_MISMATCH' });
    const message = (caught as Error).message;
    expect(message).toContain('@btc-vision/uwebsockets.js (Node 20–25, glibc ≥ 2.38)');
    expect(message).toContain('@trufflesuite/uws-js-unofficial (Node 16–20)');
    expect(message).toContain('GLIBC_2.38 not found');
    expect(message).toContain('no native binary for this Node ABI');
  });
});
