/**
 * A larger kernel send buffer for Unix-socket NBD connections.
 *
 * Why: a Unix stream socket starts with net.core.wmem_default (208 KiB on
 * most hosts) of send buffer, less than one 256 KiB read reply (nbdcopy's
 * request size). Every such reply then went out in two writes with a wait
 * for the socket to become writable between them: one more event-loop turn
 * and wake-up per reply. With room for several replies, the reply is one
 * write while the client reads the one before. Measured on the 2-core test
 * host (nbdcopy of a 256 MiB vdisk to a file): 0.29 s → 0.25 s wall, agent
 * CPU 0.21 s → 0.18 s (README, "NBD figures").
 *
 * TCP sockets are left alone: the kernel sizes their buffers itself (autotuning),
 * which a fixed SO_SNDBUF would switch off.
 *
 * Cost: one setsockopt and one getsockopt per connection. Memory: only what
 * a client has not read yet, at most SEND_BUFFER_BYTES × 2 (the kernel's
 * bookkeeping share) per connection, below the 64 MiB of replies a
 * connection may queue in the agent before it stops reading requests
 * (transmission.ts, TransmissionLimits). The kernel caps the size at net.core.wmem_max: a host
 * with the stock 208 KiB cap gets 416 KiB, still a whole 256 KiB reply.
 */
import type * as net from 'node:net';
import { getSockOpt, libcFunction } from '../native/libc';
import { socketFd } from './unix-peer';

/** What is asked of the kernel (it doubles it, and caps it at net.core.wmem_max × 2). */
export const SEND_BUFFER_BYTES = 4 * 1024 * 1024;

const SOL_SOCKET = 1;
const SO_SNDBUF = 7;

type SetSockOpt = (fd: number, level: number, name: number, value: Buffer, length: number) => number;

/**
 * Raises the socket's send buffer to SEND_BUFFER_BYTES (as far as the host
 * allows); returns the size the kernel now uses, or null when it could not
 * be set (no koffi, a closed socket). Never throws: a smaller buffer is slower, not wrong.
 */
export function raiseSendBuffer(socket: net.Socket, bytes = SEND_BUFFER_BYTES): number | null {
  const set = libcFunction('int setsockopt(int, int, int, void *, uint32_t)') as SetSockOpt | null;
  const get = getSockOpt();
  const fd = socketFd(socket);
  if (set === null || get === null || fd < 0) return null;
  const value = Buffer.alloc(4);
  value.writeInt32LE(bytes);
  if (set(fd, SOL_SOCKET, SO_SNDBUF, value, 4) !== 0) return null;
  const length = [4];
  if (get(fd, SOL_SOCKET, SO_SNDBUF, value, length) !== 0) return null;
  return value.readInt32LE(0);
}
