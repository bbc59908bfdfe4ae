/**
 * send-buffer.ts against the real kernel: an NBD connection accepted on a
 * Unix socket gets room for whole large read replies; one on TCP keeps the
 * kernel's own (autotuned) sizing.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { getSockOpt } from '../../agent/native/libc';
import { NbdConnection } from '../../agent/nbd/connection';
import { raiseSendBuffer, SEND_BUFFER_BYTES } from '../../agent/nbd/send-buffer';
import { socketFd } from '../../agent/nbd/unix-peer';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

/** SO_SNDBUF of `socket` as the kernel reports it. */
function sendBufferOf(socket: net.Socket): number {
  const get = getSockOpt();
  assert.ok(get, 'koffi loads on the test host');
  const value = Buffer.alloc(4);
  assert.equal(get(socketFd(socket), 1, 7, value, [4]), 0);
  return value.readInt32LE(0);
}

/** Accepts one connection on `listen` (a path or TCP), wraps it in an NbdConnection, returns its socket's SO_SNDBUF. */
async function acceptedSendBuffer(listen: string | { port: 0; host: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ pauseOnConnect: true }, (socket) => {
      const conn = new NbdConnection(socket, reject, true);
      resolve(sendBufferOf(conn.socket));
      conn.destroy();
      server.close();
    });
    server.on('error', reject);
    server.listen(listen, () => {
      const address = server.address();
      const client =
        typeof address === 'string' ? net.connect(address) : net.connect(address!.port, '127.0.0.1');
      client.on('error', () => {});
    });
  });
}

const wmemMax = Number(fs.readFileSync('/proc/sys/net/core/wmem_max', 'utf8'));
/** What the kernel grants a SO_SNDBUF request of `bytes`: doubled, within net.core.wmem_max × 2. */
const granted = (bytes: number) => 2 * Math.min(bytes, wmemMax);

describe('send-buffer: room for whole read replies on Unix sockets', () => {
  after(cleanupTempDirs);

  it('a Unix-socket NBD connection gets SEND_BUFFER_BYTES, as far as net.core.wmem_max allows', async () => {
    const sndbuf = await acceptedSendBuffer(path.join(tempDir('snapsync-sndbuf-'), 's.sock'));
    assert.equal(sndbuf, granted(SEND_BUFFER_BYTES));
    // Even the stock 208 KiB cap leaves room for a whole 256 KiB reply.
    assert.ok(sndbuf > 256 * 1024, `${sndbuf} bytes`);
  });

  it('a TCP NBD connection keeps the kernel sizing (autotuning stays on)', async () => {
    const sndbuf = await acceptedSendBuffer({ port: 0, host: '127.0.0.1' });
    assert.notEqual(sndbuf, granted(SEND_BUFFER_BYTES));
  });

  it('a closed socket is left alone, without throwing', () => {
    const socket = new net.Socket();
    assert.equal(raiseSendBuffer(socket), null);
  });
});
