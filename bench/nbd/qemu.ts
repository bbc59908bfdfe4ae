/**
 * The qemu side of bench:nbd: qcow2 files (64 KiB clusters, like the pool's
 * blocks) and `qemu-nbd` serving one of them, out of process, on a Unix
 * socket, with its default cache mode (writeback: the host page cache, like
 * the agent's buffered I/O) and the given --aio mode.
 */
import * as fs from 'node:fs';
import type { AioMode } from './config';
import { exec, type Server, startServer, waitForSocket } from './procs';

/**
 * A new empty qcow2 overlay `file` over `backing` (replacing `file`). Given the
 * size, qemu-img need not open the backing chain (-u): O(1) at any depth.
 */
export async function overlay(backing: string, file: string, sizeBytes: number): Promise<void> {
  fs.rmSync(file, { force: true });
  await exec('qemu-img', [
    'create',
    '-q',
    '-f',
    'qcow2',
    '-u',
    '-b',
    backing,
    '-F',
    'qcow2',
    file,
    String(sizeBytes),
  ]);
}

/**
 * `qemu-io` on one qcow2 layer without opening its backing chain (which costs
 * O(depth) per open, O(depth²) for a chain): right for writes of whole
 * clusters, which never read the layers below.
 */
export function layerOnly(file: string): string {
  return `json:${JSON.stringify({ driver: 'qcow2', file: { driver: 'file', filename: file }, backing: null })}`;
}

export interface QemuNbd {
  uri: string;
  stop(): Promise<void>;
}

/** Serves `top` as export `name` on `socket`; resolves once it accepts connections. */
export async function startQemuNbd(
  top: string,
  aio: AioMode,
  socket: string,
  logFile: string,
  name = 'bench',
): Promise<QemuNbd> {
  fs.rmSync(socket, { force: true });
  // --persistent: one client after another (fio, then the next); --shared: the concurrent case's clients.
  const server: Server = startServer(
    'qemu-nbd',
    [
      '--format=qcow2',
      `--aio=${aio}`,
      '--persistent',
      '--shared=8',
      `--socket=${socket}`,
      `--export-name=${name}`,
      top,
    ],
    logFile,
  );
  await Promise.race([
    waitForSocket(socket, `qemu-nbd --aio=${aio}`),
    server.exited.then((code) => {
      throw new Error(`qemu-nbd --aio=${aio} exited (${code}); see ${logFile}`);
    }),
  ]);
  return { uri: `nbd+unix:///${name}?socket=${socket}`, stop: () => server.stop() };
}

/** Whether this qemu-nbd serves with --aio=io_uring (the kernel or the build may refuse it). */
export async function ioUringWorks(dir: string): Promise<{ ok: boolean; reason: string }> {
  const file = `${dir}/io_uring-probe.qcow2`;
  await exec('qemu-img', ['create', '-q', '-f', 'qcow2', file, '1M']);
  try {
    const server = await startQemuNbd(
      file,
      'io_uring',
      `${dir}/io_uring-probe.sock`,
      `${dir}/io_uring-probe.log`,
    );
    try {
      await exec('qemu-io', ['-f', 'raw', '-c', 'write -q 0 4096', server.uri]);
    } finally {
      await server.stop();
    }
    return { ok: true, reason: '' };
  } catch (err) {
    return { ok: false, reason: String(err).slice(0, 500) };
  } finally {
    fs.rmSync(file, { force: true });
  }
}
