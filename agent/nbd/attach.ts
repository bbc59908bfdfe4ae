/**
 * Registers a served connection in the session registry (when its backend is
 * bound to an engine object) and removes it when the client's NBD_CMD_DISC is
 * done or the connection closes, whichever comes first.
 */
import type { NbdBackend } from './backend';
import type { NbdConnection } from './connection';
import type { SessionRegistry } from './sessions';
import type { Transmission } from './transmission';

export function attachSession(
  registry: SessionRegistry,
  conn: NbdConnection,
  backend: NbdBackend,
  transmission: Transmission,
): void {
  if (backend.target === undefined) return;
  const session = registry.attach(
    backend.name,
    backend.readOnly ? 'read-only' : 'read-write',
    conn.remote,
    backend.target,
    {
      stop: () => backend.stop?.(),
      idle: () => transmission.idle(),
      flush: () => backend.drain?.() ?? Promise.resolve(),
      close: () => conn.end(),
    },
  );
  const release = () => registry.release(session);
  transmission.onDisconnect = release;
  conn.onClose(release);
}
