/**
 * Attachments: every NBD session the server holds, per container, as the
 * agent sees them. A session is bound to what it opened — a vdisk's uuid and
 * generation, or a snapshot's uuid — never to a name, so a sync, revert,
 * resize or delete cannot hand an open client somebody else's data.
 *
 * The agent asks the registry before an operation that would change what an
 * attached client sees (`sessionsOn`), and with force `detach`es them first:
 * no request of theirs reaches the engine any more, what they had in flight
 * finishes and is flushed, every later request gets NBD_ESHUTDOWN, and the
 * connection is closed.
 */

import { Fences } from './fences';

export type SessionMode = 'read-write' | 'read-only';

/** What a session is bound to. */
export type SessionTarget =
  | { kind: 'vdisk'; id: number; uuid: string; generation: number; container: string }
  | { kind: 'snapshot'; id: number; uuid: string; container: string; snapshot: string };

/** A session as the protocol shows it (the `IN_USE` error's details.sessions, the `sessions` op). */
export interface SessionInfo {
  id: string;
  /** The container the session reads or writes (a snapshot's container for a snapshot export). */
  container: string;
  /** The export name the client opened (`name` or `name@snapshot`). */
  export: string;
  mode: SessionMode;
  /** host:port on TCP; unix:pid=PID,uid=UID on the Unix socket (unix-peer.ts), unix:SOCKET where unknown. */
  client: string;
  /** When the client attached (ISO 8601). */
  since: string;
}

/** What the registry needs of a live session's connection. */
export interface SessionControl {
  /** Stop the backend reaching the engine (every later request fails with ESHUTDOWN). */
  stop(): void;
  /** Resolves once nothing the client sent is still being answered. */
  idle(): Promise<void>;
  /** Makes every acknowledged write durable. */
  flush(): Promise<void>;
  /** Ends the connection (the client has had its ESHUTDOWN replies). */
  close(): void;
}

/** How long a detached client has to send NBD_CMD_DISC before its connection is closed. */
const DETACH_GRACE_MS = 1000;

export class AttachedSession {
  /** Set once `detach` started: the session no longer counts as attached. */
  detaching = false;
  private detached: Promise<void> | null = null;

  constructor(
    readonly id: string,
    readonly exportName: string,
    readonly mode: SessionMode,
    readonly client: string,
    readonly since: Date,
    readonly target: SessionTarget,
    private readonly control: SessionControl,
  ) {}

  info(): SessionInfo {
    return {
      id: this.id,
      container: this.target.container,
      export: this.exportName,
      mode: this.mode,
      client: this.client,
      since: this.since.toISOString(),
    };
  }

  /**
   * Drains and disconnects: from the call on no request reaches the engine;
   * resolves when what was in flight finished and is durable. The client
   * gets NBD_ESHUTDOWN for anything else and its connection closes shortly.
   */
  detach(): Promise<void> {
    this.detaching = true;
    this.detached ??= (async () => {
      this.control.stop();
      await this.control.idle();
      await this.control.flush();
      setTimeout(() => this.control.close(), DETACH_GRACE_MS).unref();
    })();
    return this.detached;
  }
}

export class SessionRegistry {
  private readonly sessions = new Map<string, AttachedSession>();
  private next = 0;
  /** Called whenever a session comes or goes (metrics). */
  onChange: (() => void) | null = null;

  /** Exports a forced detach fenced: the NBD server refuses new connections to them (fences.ts). */
  constructor(readonly fences: Fences = new Fences()) {}

  attach(
    exportName: string,
    mode: SessionMode,
    client: string,
    target: SessionTarget,
    control: SessionControl,
  ): AttachedSession {
    this.next++;
    const session = new AttachedSession(
      `nbd-${this.next}`,
      exportName,
      mode,
      client,
      new Date(),
      target,
      control,
    );
    this.sessions.set(session.id, session);
    this.onChange?.();
    return session;
  }

  release(session: AttachedSession): void {
    if (this.sessions.delete(session.id)) this.onChange?.();
  }

  /** Every live session (detaching ones included until their connection is gone). */
  all(): AttachedSession[] {
    return [...this.sessions.values()];
  }

  /**
   * Attached (not detaching) sessions of the given containers (by uuid: their
   * vdisk exports) and snapshots (by uuid: their read-only exports).
   */
  sessionsOn(containers: ReadonlySet<string>, snapshots: ReadonlySet<string>): AttachedSession[] {
    return this.all().filter(
      (s) =>
        !s.detaching &&
        (s.target.kind === 'vdisk' ? containers.has(s.target.uuid) : snapshots.has(s.target.uuid)),
    );
  }
}
