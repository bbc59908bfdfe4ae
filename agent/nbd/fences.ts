/**
 * Fences: vdisk exports no new NBD connection may open. A forced operation
 * (sync, revert, resize, delete, flatten, import with `force`) that
 * disconnects a container's vdisk sessions fences that export first. A
 * hypervisor's NBD client (QEMU) reconnects by export name on its own, and
 * the agent cannot tell that reconnect from a fresh boot: without the fence a
 * running guest with a stale page cache would go on reading and writing the
 * refreshed disk. A fence stays until the operator lifts it (`unfence`),
 * having stopped the guest.
 *
 * Fences are keyed by export (container) name, not uuid: a client reconnects
 * by name, so a deleted disk's fence also keeps its old client off a new disk
 * that takes the same name. With a file (serve: `<pool>/nbd-fences.json`)
 * they survive an agent restart; a guest may keep retrying while the agent is
 * down.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** One fenced export, as `sessions`, `describe` and `unfence` show it. */
export interface FenceInfo {
  /** The vdisk (export name) no new NBD connection may open. */
  container: string;
  /** The disk's uuid when it was fenced (a new disk of the same name stays fenced too). */
  uuid: string;
  /** When it was fenced (ISO 8601). */
  since: string;
  /** The forced operation that disconnected its clients. */
  op: string;
  /** The clients it disconnected (host:port, or `unix`). */
  clients: string[];
}

const FILE_VERSION = 1;
/** The fence file's name in a pool directory (serve). */
export const FENCE_FILE = 'nbd-fences.json';

export class Fences {
  private readonly fences = new Map<string, FenceInfo>();

  /** In memory only, or persisted in `file` (loaded now; a file that does not parse stops the agent). */
  constructor(private readonly file: string | null = null) {
    if (file === null || !fs.existsSync(file)) return;
    let parsed: { version?: unknown; fences?: unknown };
    try {
      parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`NBD fence file ${file} does not parse (${(err as Error).message}); fix or remove it`);
    }
    if (parsed.version !== FILE_VERSION || !Array.isArray(parsed.fences))
      throw new Error(`NBD fence file ${file} has an unknown format; fix or remove it`);
    for (const entry of parsed.fences) {
      const f = knownFenceFields(entry);
      if (f) this.fences.set(f.container, f);
    }
  }

  /** The fence on this export, or null. */
  get(container: string): FenceInfo | null {
    return this.fences.get(container) ?? null;
  }

  all(): FenceInfo[] {
    return [...this.fences.values()].sort((a, b) => a.container.localeCompare(b.container));
  }

  /** Fences an export (again: keeps the first fence's time, adds the clients). */
  fence(container: string, uuid: string, op: string, clients: string[]): FenceInfo {
    const earlier = this.fences.get(container);
    const info: FenceInfo = earlier
      ? { ...earlier, uuid, op, clients: [...new Set([...earlier.clients, ...clients])] }
      : { container, uuid, since: new Date().toISOString(), op, clients: [...new Set(clients)] };
    this.fences.set(container, info);
    this.save();
    return info;
  }

  /** Lifts the fences on these exports; returns those that were there. */
  lift(containers: string[]): FenceInfo[] {
    const lifted = containers.flatMap((c) => {
      const f = this.fences.get(c);
      return f ? [f] : [];
    });
    for (const f of lifted) this.fences.delete(f.container);
    if (lifted.length > 0) this.save();
    return lifted;
  }

  /** Written whole, fsynced and renamed into place: a crash leaves the old file or the new one. */
  private save(): void {
    if (this.file === null) return;
    const tmp = `${this.file}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, `${JSON.stringify({ version: FILE_VERSION, fences: this.all() }, null, 2)}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
    const dir = fs.openSync(path.dirname(this.file), 'r');
    try {
      fs.fsyncSync(dir);
    } finally {
      fs.closeSync(dir);
    }
  }
}

/**
 * A fence entry as this build knows it: the protocol's fields only. A newer
 * build may add an optional field without a new file version; after a
 * downgrade the fence must still hold, but an unknown field copied into a
 * reply would make an older client reject sessions, describe and unfence.
 * An entry without a container name fences nothing and is dropped.
 */
function knownFenceFields(entry: unknown): FenceInfo | null {
  if (typeof entry !== 'object' || entry === null) return null;
  const f = entry as Record<string, unknown>;
  if (typeof f.container !== 'string') return null;
  const text = (value: unknown, otherwise: string) => (typeof value === 'string' ? value : otherwise);
  return {
    container: f.container,
    uuid: text(f.uuid, ''),
    since: text(f.since, ''),
    op: text(f.op, 'unknown'),
    clients: Array.isArray(f.clients) ? f.clients.filter((c): c is string => typeof c === 'string') : [],
  };
}

/** What a refused client is told (and the agent logs). */
export function fencedMessage(f: FenceInfo): string {
  return (
    `export "${f.container}" is fenced since ${f.since} (forced ${f.op} disconnected ${f.clients.join(', ') || 'its clients'}): ` +
    `stop the VM that used it, then run "snapsync-agent unfence ${f.container}"`
  );
}
