/**
 * A local process without credentials that holds idle TCP connections to a
 * listener from 127.0.0.1 and reopens every one the agent closes (the
 * outside tester's hold.py), to show it locks no client with credentials out.
 * It reopens after REOPEN_MS, as a holder, not a connect flood: a process
 * that connects as fast as the machine allows can still win the race
 * against a slow client's handshake (docs/operator-guide.md, connection limits).
 */
import * as net from 'node:net';

const REOPEN_MS = 20;

/** A flowing connection, so that the peer's close is seen even after it sent a greeting nobody reads. */
export function tcp(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s.resume()));
    s.once('error', reject);
  });
}

export interface IdleHolder {
  /** Connections the agent closed (and the holder reopened) so far. */
  reopened(): number;
  stop(): void;
}

/** Opens `count` idle connections to `port`; resolves once all are open. */
export async function holdIdle(port: number, count: number): Promise<IdleHolder> {
  const held = new Set<net.Socket>();
  let stopped = false;
  let reopened = 0;
  const open = async (): Promise<void> => {
    if (stopped) return;
    const s = await tcp(port).catch(() => null);
    if (s === null) return void setTimeout(open, 10);
    held.add(s);
    s.once('close', () => {
      held.delete(s);
      reopened++;
      setTimeout(open, REOPEN_MS);
    });
  };
  for (let i = 0; i < count; i++) await open();
  return {
    reopened: () => reopened,
    stop: () => {
      stopped = true;
      for (const s of held) s.destroy();
    },
  };
}
