/**
 * Import/export paths: only inside directories the operator allowed, and by
 * construction, not by a check of names. A requested path is split into
 * components (no empty, `.` or `..` component); the allowed directory is
 * opened and checked against the device/inode it had at startup; then every
 * directory below it is opened relative to its parent's descriptor
 * (`/proc/self/fd/<parent>/<name>`, O_DIRECTORY | O_NOFOLLOW), so no
 * symlink is followed anywhere and a component swapped for a link between
 * a check and an open is refused, not followed. host-files.ts opens the last
 * component the same way.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { INVALID_ARGUMENT } from '../engine/errors';
import { deviceId } from '../engine/store/block-device';
import { deviceStack } from '../engine/store/block-device-overlap';
import { WireError } from './wire-error';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

/** `/proc/self/fd/<fd>/<name>`: resolves `name` in the directory `fd` is, following no link in `name`. */
export const beneath = (dirFd: number, name: string) => `/proc/self/fd/${dirFd}/${name}`;

interface AllowedRoot {
  /** As configured and as resolved at startup: a request may name either. */
  prefixes: string[][];
  real: string;
  dev: number;
  ino: number;
}

/** An open directory inside an allowed directory, and the last component of the request in it. */
export interface LocatedPath {
  requested: string;
  dirFd: number;
  name: string;
  close(): void;
}

export interface AllowedDirsOptions {
  /** Import from and export to block devices (never character devices, FIFOs or sockets). */
  blockDevices?: boolean;
  /**
   * What no request may reach even inside an allowed directory: the pool's directory (everything
   * beneath it) and its data files or device. An import of one would read every container's
   * blocks; an export over one would replace the pool's data under the agent.
   */
  protect?: string[];
  /**
   * The agent's own files: its token file, TLS certificates and keys, NBD CA, PSK and access
   * files. An import of one would hand its secret to any client that may import; an export over
   * one would replace what the agent loads at its next start.
   */
  agentFiles?: string[];
  /** Where sysfs is mounted (a test seam). */
  sysfs?: string;
}

/**
 * What `protect` should hold for a pool: its directory, everything in it now (by inode, so a bind
 * mount or another name of one is refused too), and its data files or device wherever they are.
 */
export function poolPaths(pool: { directory: string; dataPaths: string[] }): string[] {
  const found = [pool.directory];
  const directories = [pool.directory];
  for (let dir = directories.pop(); dir !== undefined; dir = directories.pop()) {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const entry = path.join(dir, e.name);
      if (e.isDirectory()) directories.push(entry);
      if (e.isDirectory() || e.isFile()) found.push(entry);
    }
  }
  return [...found, ...pool.dataPaths];
}

/** Loop devices over loop devices followed at most (the kernel refuses a loop over itself, not a long chain). */
const MAX_LOOP_NESTING = 8;

export const pathNotAllowed = (requested: string, reason: string, message: string, extra = {}) =>
  new WireError('PATH_NOT_ALLOWED', `"${requested}": ${message}`, { path: requested, reason, ...extra });

const components = (p: string) => p.split('/').slice(1);

export class AllowedDirs {
  private readonly roots: AllowedRoot[];
  readonly blockDevices: boolean;
  /** `dev:ino` of each protected file and directory; `major:minor` of every device sharing bytes with a protected one. */
  private readonly protectedInodes = new Set<string>();
  private readonly protectedDevices = new Set<string>();
  /** `dev:ino` of each of the agent's own files (AllowedDirsOptions.agentFiles). */
  private readonly agentFileInodes = new Set<string>();
  /** `major:minor` of the protected block devices themselves (the pool's data device). */
  private readonly dataDevices = new Set<string>();
  private readonly sysfs: string;

  constructor(dirs: string[], options: AllowedDirsOptions = {}) {
    this.blockDevices = options.blockDevices === true;
    this.sysfs = options.sysfs ?? '/sys';
    for (const p of options.protect ?? []) {
      const st = statIfThere(p);
      if (st === null) continue; // gone since it was listed
      this.protectedInodes.add(`${st.dev}:${st.ino}`);
      if (st.isBlockDevice()) this.protectDevice(st.rdev, 0);
    }
    for (const p of options.agentFiles ?? []) {
      const st = statIfThere(p);
      if (st !== null) this.agentFileInodes.add(`${st.dev}:${st.ino}`);
    }
    if (dirs.length > 0 && !fs.existsSync('/proc/self/fd'))
      throw new Error('--allow-dir needs /proc mounted (paths are opened relative to directory descriptors)');
    this.roots = dirs.map((d) => {
      const refused = (reason: string, message: string) =>
        INVALID_ARGUMENT(`--allow-dir ${d} ${message}`, { argument: 'allow-dir', path: d, reason });
      let real: string;
      try {
        real = fs.realpathSync(d);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT')
          throw refused('missing', 'does not exist: create it (mode 0700) or leave the flag out');
        throw refused('unreadable', `cannot be resolved (${code ?? String(err)})`);
      }
      const st = fs.statSync(real);
      if (!st.isDirectory()) throw refused('not-a-directory', 'is not a directory');
      // Every directory in the pool was recorded by inode: an allowed one among them lies inside it.
      if (this.protectedInodes.has(`${st.dev}:${st.ino}`))
        throw refused('inside-pool', `is inside the pool (${real})`);
      const configured = path.resolve(d);
      const prefixes = [components(real), components(configured)].map((c) => c.filter((x) => x !== ''));
      return { prefixes, real, dev: st.dev, ino: st.ino };
    });
  }

  /**
   * Opens the directory that holds `requested` (every component without
   * following a link) and returns it with the last component's name.
   * PATH_NOT_ALLOWED when the path is relative, has an empty, `.` or `..`
   * component, lies outside every allowed directory, or goes through a
   * symlink or something that is not a directory.
   */
  locate(requested: string): LocatedPath {
    if (typeof requested !== 'string' || !path.isAbsolute(requested))
      throw pathNotAllowed(String(requested), 'relative', 'must be an absolute path');
    if (requested.includes('\0'))
      throw pathNotAllowed(requested, 'component', 'contains a NUL byte (no file name can)');
    const parts = components(requested);
    const bad = parts.find((c) => c === '' || c === '.' || c === '..');
    if (bad !== undefined)
      throw pathNotAllowed(requested, 'component', `has an empty, "." or ".." component`, { component: bad });
    let root: AllowedRoot | undefined;
    let below: string[] = [];
    for (const r of this.roots) {
      const prefix = r.prefixes.find((p) => p.length < parts.length && p.every((c, i) => parts[i] === c));
      if (prefix) {
        root = r;
        below = parts.slice(prefix.length);
        break;
      }
    }
    if (!root) {
      const itself = this.roots.some((r) =>
        r.prefixes.some((p) => p.length === parts.length && p.every((c, i) => parts[i] === c)),
      );
      throw pathNotAllowed(
        requested,
        'outside',
        itself
          ? 'is an allowed directory itself: name a file in it'
          : 'is outside the directories this agent allows',
        { allowed: this.roots.map((r) => r.real) },
      );
    }
    let dirFd = this.openRoot(root, requested);
    try {
      this.refuseProtected(requested, fs.fstatSync(dirFd));
      for (const name of below.slice(0, -1)) {
        const next = openDirBeneath(dirFd, name, requested);
        fs.closeSync(dirFd);
        dirFd = next;
        this.refuseProtected(requested, fs.fstatSync(dirFd));
      }
    } catch (err) {
      fs.closeSync(dirFd);
      throw err;
    }
    const fd = dirFd;
    let open = true;
    return {
      requested,
      dirFd: fd,
      name: below[below.length - 1]!,
      close: () => {
        if (open) fs.closeSync(fd);
        open = false;
      },
    };
  }

  /**
   * PATH_NOT_ALLOWED (reason `pool`) when `st` is the pool's directory, something in it, one of its data
   * files, or a block device sharing bytes with its data device (block-device-overlap.ts).
   */
  refuseProtected(requested: string, st: Pick<fs.Stats, 'dev' | 'ino' | 'rdev' | 'isBlockDevice'>): void {
    if (this.agentFileInodes.has(`${st.dev}:${st.ino}`))
      throw pathNotAllowed(
        requested,
        'agent-file',
        "is one of the agent's own files (its token, a TLS certificate or key, an NBD CA, PSK or access file), or another name of one: imports and exports never reach them",
      );
    if (
      this.protectedInodes.has(`${st.dev}:${st.ino}`) ||
      (st.isBlockDevice() && this.sharesDataDevice(st.rdev))
    )
      throw pathNotAllowed(
        requested,
        'pool',
        "is the agent's pool, in it, or another name of a pool file or device: imports and exports never reach them",
      );
  }

  /**
   * Whether block device `rdev` shares bytes with the data device: one of the devices found at start
   * (its disk, what lies under it, what was stacked on it then), or, asked again now, a device whose
   * own stack reaches the data device (a mapping or partition made on it since the agent started),
   * or holds a loop device over a pool file or over such a device.
   */
  private sharesDataDevice(rdev: number, depth = 0): boolean {
    if (this.protectedDevices.has(deviceId(rdev))) return true;
    const stack = deviceStack(rdev, this.sysfs);
    for (const id of stack.devices) if (this.dataDevices.has(id)) return true;
    // A loop device over a pool file, or over a device that shares the data device's bytes.
    for (const file of stack.backingFiles) {
      const st = statIfThere(file);
      if (st === null) continue;
      if (this.protectedInodes.has(`${st.dev}:${st.ino}`)) return true;
      if (st.isBlockDevice() && depth < MAX_LOOP_NESTING && this.sharesDataDevice(st.rdev, depth + 1))
        return true;
    }
    return false;
  }

  /**
   * Protects data device `rdev`, the devices stacked with it, and what loop devices among them read:
   * their backing files (an import of one would read the pool's bytes) and, for a loop over a
   * block device, that device's own stack.
   */
  private protectDevice(rdev: number, depth: number): void {
    this.dataDevices.add(deviceId(rdev));
    const stack = deviceStack(rdev, this.sysfs);
    for (const id of stack.devices) this.protectedDevices.add(id);
    for (const file of stack.backingFiles) {
      const st = statIfThere(file);
      if (st === null) continue;
      this.protectedInodes.add(`${st.dev}:${st.ino}`);
      if (st.isBlockDevice() && depth < MAX_LOOP_NESTING) this.protectDevice(st.rdev, depth + 1);
    }
  }

  private openRoot(root: AllowedRoot, requested: string): number {
    const fd = fs.openSync(root.real, O_RDONLY | O_DIRECTORY | O_NONBLOCK);
    const st = fs.fstatSync(fd);
    if (st.dev !== root.dev || st.ino !== root.ino) {
      fs.closeSync(fd);
      throw pathNotAllowed(
        requested,
        'changed',
        `the allowed directory ${root.real} was replaced since startup`,
      );
    }
    return fd;
  }
}

function statIfThere(p: string): fs.Stats | null {
  try {
    return fs.statSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Opens the directory `name` in `dirFd` without following a link. */
function openDirBeneath(dirFd: number, name: string, requested: string): number {
  try {
    return fs.openSync(beneath(dirFd, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR') {
      const link = isSymlink(dirFd, name);
      throw pathNotAllowed(
        requested,
        link ? 'symlink' : 'not-a-directory',
        link
          ? `component "${name}" is a symbolic link (links are not followed)`
          : `"${name}" is not a directory`,
        { component: name },
      );
    }
    if (code === 'ENOENT') throw pathNotAllowed(requested, 'missing', `directory "${name}" does not exist`);
    throw pathNotAllowed(requested, 'unreadable', `directory "${name}" cannot be opened (${code})`);
  }
}

function isSymlink(dirFd: number, name: string): boolean {
  try {
    return fs.lstatSync(beneath(dirFd, name)).isSymbolicLink();
  } catch {
    return false;
  }
}
