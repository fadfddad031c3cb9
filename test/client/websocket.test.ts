import { createHash } from 'node:crypto';
import * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { encodeClientFrame, WebSocketConnection } from '../../src/client/websocket.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const servers: net.Server[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

interface DecodedFrame {
  fin: boolean;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** Decodes every complete frame in `bytes` (the test's independent reading of RFC 6455). */
function decodeFrames(bytes: Buffer): DecodedFrame[] {
  const frames: DecodedFrame[] = [];
  let offset = 0;
  while (offset + 2 <= bytes.length) {
    const fin = (bytes[offset] & 0x80) !== 0;
    const opcode = bytes[offset] & 0x0f;
    const masked = (bytes[offset + 1] & 0x80) !== 0;
    let length = bytes[offset + 1] & 0x7f;
    let cursor = offset + 2;
    if (length === 126) {
      length = bytes.readUInt16BE(cursor);
      cursor += 2;
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(cursor));
      cursor += 8;
    }
    const mask = masked ? bytes.subarray(cursor, cursor + 4) : undefined;
    if (masked) cursor += 4;
    if (cursor + length > bytes.length) break;
    const payload = Buffer.from(bytes.subarray(cursor, cursor + length));
    if (mask !== undefined) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
    frames.push({ fin, opcode, masked, payload });
    offset = cursor + length;
  }
  return frames;
}

function serverFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const header =
    payload.length < 126
      ? Buffer.from([(fin ? 0x80 : 0) | opcode, payload.length])
      : Buffer.from([(fin ? 0x80 : 0) | opcode, 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([header, payload]);
}

/** A scripted WebSocket server: completes the handshake (or sabotages it), then runs `script`. */
async function fakeServer(
  script: (socket: net.Socket, received: () => DecodedFrame[]) => unknown,
  acceptOverride?: string,
): Promise<URL> {
  const server = net.createServer((socket) => {
    let buffer = Buffer.alloc(0);
    let upgraded = false;
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (upgraded) return;
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const key = /sec-websocket-key: *(\S+)/i.exec(buffer.toString('latin1'))![1];
      buffer = buffer.subarray(end + 4);
      upgraded = true;
      const accept = acceptOverride ?? createHash('sha1').update(key + GUID).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      void script(socket, () => decodeFrames(buffer));
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return new URL(`ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/v1/ws`);
}

function connect(url: URL, maxMessageBytes = 1 << 20) {
  const messages: Buffer[] = [];
  let onClosed!: (info: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    onClosed = resolve;
  });
  const connection = WebSocketConnection.connect(
    url,
    { onMessage: (data) => messages.push(data), onClose: (code, reason) => onClosed({ code, reason }) },
    { connectTimeoutMs: 1000, maxMessageBytes },
  );
  return { connection, messages, closed };
}

const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2));
};

describe('minimal WebSocket client', () => {
  test('client frames are masked and length-encoded correctly at every size class', () => {
    for (const length of [0, 1, 2, 3, 4, 5, 7, 125, 126, 65_535, 65_536, 200_000]) {
      const payload = Buffer.from(Array.from({ length }, (_, index) => (index * 7 + length) % 256));
      const [frame, ...rest] = decodeFrames(encodeClientFrame(2, payload));
      expect(rest).toEqual([]);
      expect(frame.fin).toBe(true);
      expect(frame.opcode).toBe(2);
      expect(frame.masked).toBe(true);
      expect(frame.payload.equals(payload)).toBe(true);
    }
  });

  test('frames split at any byte, or several in one chunk, are all read intact and in order', async () => {
    const sizes = [0, 1, 2, 30, 125, 126, 127, 1000, 65_535, 3, 0, 200];
    const payloads = sizes.map((length, message) => Buffer.from(Array.from({ length }, (_, index) => (index + message * 13) % 256)));
    const stream = Buffer.concat(payloads.map((payload) => serverFrame(2, payload)));
    // Cut points: inside headers, inside extended lengths, inside payloads, and runs of whole frames.
    const cuts = [1, 3, 5, 40, 41, 200, 1300, 1301, 1302, 1303, 30_000, stream.length - 210, stream.length - 1];
    const url = await fakeServer(async (socket) => {
      let start = 0;
      for (const cut of [...cuts, stream.length]) {
        socket.write(stream.subarray(start, cut));
        start = cut;
        // Separate TCP reads: give the client's event loop a turn between writes.
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    });
    const { connection, messages } = connect(url);
    const socket = await connection;
    await until(() => messages.length === payloads.length);
    expect(messages.map((message) => message.toString('hex'))).toEqual(payloads.map((payload) => payload.toString('hex')));
    socket.destroy();
  });

  test('rejects a server that answers with the wrong Sec-WebSocket-Accept', async () => {
    const url = await fakeServer(() => {}, 'bm90IHRoZSByaWdodCBrZXk=');
    await expect(connect(url).connection).rejects.toMatchObject({ code: 'PROTOCOL_ERROR' });
  });

  test('reassembles fragments around an interleaved ping, and answers the ping with a pong', async () => {
    let received!: () => DecodedFrame[];
    const url = await fakeServer((socket, frames) => {
      received = frames;
      socket.write(
        Buffer.concat([
          serverFrame(2, Buffer.from('hel'), false),
          serverFrame(9, Buffer.from('are you there')),
          serverFrame(0, Buffer.from('lo '), false),
          serverFrame(0, Buffer.from('world')),
        ]),
      );
    });
    const { connection, messages } = connect(url);
    const socket = await connection;
    await until(() => messages.length === 1);
    expect(messages[0].toString()).toBe('hello world');
    await until(() => received().length === 1);
    expect(received()[0]).toMatchObject({ opcode: 10, masked: true });
    expect(received()[0].payload.toString()).toBe('are you there');
    socket.destroy();
  });

  test('a close frame from the server is echoed and reported with its code and reason', async () => {
    let received!: () => DecodedFrame[];
    const url = await fakeServer((socket, frames) => {
      received = frames;
      const payload = Buffer.concat([Buffer.from([0x03, 0xe9]), Buffer.from('going away')]);
      socket.write(serverFrame(8, payload));
    });
    const { connection, closed } = connect(url);
    await connection;
    expect(await closed).toEqual({ code: 1001, reason: 'going away' });
    await until(() => received().length === 1);
    expect(received()[0].opcode).toBe(8);
    expect(received()[0].payload.readUInt16BE(0)).toBe(1001);
  });

  test('a message above maxMessageBytes, a masked server frame and a reserved bit each fail the connection', async () => {
    const cases: [Buffer, number][] = [
      [serverFrame(2, Buffer.alloc(2000)), 1009],
      [Buffer.from([0x82, 0x81, 1, 2, 3, 4, 5]), 1002],
      [Buffer.from([0xc2, 0x00]), 1002],
    ];
    for (const [bytes, expectedCode] of cases) {
      const url = await fakeServer((socket) => socket.write(bytes));
      const { connection, closed, messages } = connect(url, 1024);
      await connection;
      expect((await closed).code).toBe(expectedCode);
      expect(messages).toEqual([]);
    }
  });

  test('a connection dropped without a close frame reports 1006', async () => {
    const url = await fakeServer((socket) => socket.destroy());
    const { connection, closed } = connect(url);
    await connection;
    expect((await closed).code).toBe(1006);
  });
});
