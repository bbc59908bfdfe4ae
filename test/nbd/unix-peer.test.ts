/**
 * unix-peer.ts against the real kernel: the process on the other end of a
 * Unix-socket connection, ourselves or a child, as SO_PEERCRED and
 * /proc/<pid>/stat report it.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import {
  processStartTime,
  type UnixPeer,
  unixPeer,
  unixPeerIdentity,
  unixPeerLabel,
} from '../../agent/nbd/unix-peer';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

/** Listens on a fresh socket; resolves with the peer of the first connection `connect` makes. */
async function peerOf(connect: (socketPath: string) => void): Promise<UnixPeer | null> {
  const socketPath = path.join(tempDir('snapsync-unix-peer-'), 's.sock');
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => {
      resolve(unixPeer(socket));
      socket.destroy();
      server.close();
    });
    server.on('error', reject);
    server.listen(socketPath, () => connect(socketPath));
  });
}

describe('unix-peer: who is on the other end of a Unix socket', () => {
  after(cleanupTempDirs);

  it('names this process when it connects to itself', async () => {
    const peer = await peerOf((p) => net.connect(p).on('error', () => {}));
    assert.ok(peer, 'credentials known');
    assert.equal(peer.pid, process.pid);
    assert.equal(peer.uid, process.getuid!());
    assert.equal(peer.gid, process.getgid!());
    assert.equal(peer.startTime, processStartTime(process.pid));
    assert.equal(unixPeerLabel(peer), `unix:pid=${process.pid},uid=${process.getuid!()}`);
  });

  it('names a child process, a different client from this one', async () => {
    let childPid = -1;
    const peer = await peerOf((p) => {
      const child = spawn(process.execPath, [
        '-e',
        `require('net').connect(${JSON.stringify(p)}).on('close', () => process.exit(0))`,
      ]);
      childPid = child.pid!;
    });
    assert.ok(peer, 'credentials known');
    assert.equal(peer.pid, childPid);
    const self = await peerOf((p) => net.connect(p).on('error', () => {}));
    assert.notEqual(unixPeerIdentity(peer), unixPeerIdentity(self!));
  });

  it('reads a process start time (pid plus start names one process), none for a pid that does not exist', () => {
    const start = processStartTime(process.pid);
    assert.match(start ?? '', /^\d+$/);
    assert.equal(processStartTime(2 ** 22 + 1), null, 'no such pid (above pid_max)');
  });
});
