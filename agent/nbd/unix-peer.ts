/**
 * Who is on the other end of a Unix-socket connection: the process the
 * kernel recorded when it connected (SO_PEERCRED: pid, uid, gid). A Unix
 * client has no TLS identity, but the kernel's word on its process is one
 * it cannot forge, so the connections of one process (nbdcopy's four, a
 * QEMU's) can share a vdisk's writer slot while another process still gets
 * the disk read-only.
 *
 * Node has no API for SO_PEERCRED; getsockopt(2) is called through koffi (an
 * optional dependency with prebuilt binaries, loaded on the first Unix
 * connection). Without it, or for a peer whose pid this process cannot see
 * (another pid namespace reports 0), a Unix client has no identity: one
 * writing connection per vdisk, as before.
 *
 * Cost: one getsockopt and one read of /proc/<pid>/stat per connection.
 */
import * as fs from 'node:fs';
import type * as net from 'node:net';
import { getSockOpt } from '../native/libc';

export interface UnixPeer {
  pid: number;
  uid: number;
  gid: number;
  /**
   * The process's start time (clock ticks after boot, /proc/<pid>/stat field
   * 22): with the pid it names one process, even after the pid is reused.
   */
  startTime: string;
}

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const UCRED_BYTES = 12;

/** Whether this host can name Unix-socket peers (loads koffi now, so the first client does not wait for it). */
export function unixPeersKnown(): boolean {
  return getSockOpt() !== null;
}

/** The socket's file descriptor (libuv's handle keeps it; -1 when closed or not a stream). */
export function socketFd(socket: net.Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
}

/** Field 22 of /proc/<pid>/stat (after the parenthesised command name, which may hold spaces). */
export function processStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state), so field 22 is fields[19].
    const start = fields[19];
    return start !== undefined && /^\d+$/.test(start) ? start : null;
  } catch {
    return null;
  }
}

/** The connected peer's credentials, or null when they cannot be known (see the header). */
export function unixPeer(socket: net.Socket): UnixPeer | null {
  const call = getSockOpt();
  const fd = socketFd(socket);
  if (call === null || fd < 0) return null;
  const value = Buffer.alloc(UCRED_BYTES);
  const length = [UCRED_BYTES];
  if (call(fd, SOL_SOCKET, SO_PEERCRED, value, length) !== 0 || length[0] !== UCRED_BYTES) return null;
  const pid = value.readInt32LE(0);
  if (pid <= 0) return null;
  const startTime = processStartTime(pid);
  if (startTime === null) return null;
  return { pid, uid: value.readUInt32LE(4), gid: value.readUInt32LE(8), startTime };
}

/** The writer-group identity of a Unix peer: one process, never a reused pid. */
export function unixPeerIdentity(peer: UnixPeer): string {
  return `pid:${peer.pid}@${peer.startTime}`;
}

/** How sessions show a Unix client: `unix:pid=1234,uid=1000` (what an operator looks up with ps). */
export function unixPeerLabel(peer: UnixPeer): string {
  return `unix:pid=${peer.pid},uid=${peer.uid}`;
}
