/**
 * A real hypervisor as an NBD client: boots `qemu-system-x86_64` with a
 * Debian kernel and the test initramfs (guest-initramfs.ts), its only disk an
 * NBD export as virtio /dev/vda, and drives it over the serial console.
 * KVM when /dev/kvm opens and a probe boot under it reaches /init (nested
 * KVM can open and then hang), TCG otherwise; SNAPSYNC_QEMU_ACCEL=tcg|kvm
 * decides instead. Every QEMU started here is killed when the test process exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { guestBootFiles } from './guest-initramfs';

const QEMU = 'qemu-system-x86_64';
const BOOT_TIMEOUT_MS = 180_000;
const COMMAND_TIMEOUT_MS = 60_000;
/** A KVM guest reaches /init in about a second; one that has not after this is not using working KVM. */
const KVM_PROBE_TIMEOUT_MS = 10_000;

export type Accel = 'kvm' | 'tcg';

export interface GuestResult {
  rc: number;
  /** The console lines the command printed (kernel messages included), without carriage returns. */
  output: string;
}

export interface Guest {
  accel: Accel;
  /** From spawning QEMU to the guest's GUEST-READY line. */
  bootMs: number;
  console(): string;
  stderr(): string;
  /** Runs one shell command line in the guest and waits for its exit code. */
  run(command: string, timeoutMs?: number): Promise<GuestResult>;
  /** Runs one command, fails with the console log unless it exits 0; returns its output. */
  ok(command: string, timeoutMs?: number): Promise<string>;
  /** Writes `text`, zero-padded to a 4 KiB block, at `offset` (a multiple of 4 KiB) of /dev/vda, O_DIRECT + fsync. */
  write(offset: number, text: string): Promise<GuestResult>;
  /** Reads `length` bytes at `offset` (a multiple of 4 KiB) of /dev/vda with O_DIRECT; `data` unless it failed. */
  read(offset: number, length: number): Promise<GuestResult & { data?: Buffer }>;
  /** The GPT disk GUID bytes (LBA 1, bytes 56..71) as the guest reads them. */
  diskGuidBytes(): Promise<Buffer>;
  /** Whether QEMU still runs. */
  running(): boolean;
  /** SIGKILL, then waits for the process to be gone. */
  kill(): Promise<void>;
  /** Describes the guest (accel, QEMU stderr, console tail) for a failure message. */
  report(what: string): string;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

const tail = (text: string, lines = 60) => text.split('\n').slice(-lines).join('\n');

interface Qemu {
  child: ChildProcess;
  console(): string;
  stderr(): string;
  exit(): string | null;
  /** Resolves with what `match` finds in the console text after `from`; rejects when QEMU exits or time runs out. */
  waitFor<T>(from: number, match: (text: string) => T | null, timeoutMs: number, what: string): Promise<T>;
  kill(): Promise<void>;
  report(what: string): string;
}

function startQemu(accel: Accel, drive: string | null, label: string, traces: string[] = []): Qemu {
  const files = guestBootFiles();
  const args = [
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-serial',
    'stdio',
    '-no-reboot',
    '-m',
    '256',
    '-accel',
    accel,
    '-kernel',
    files.kernel,
    '-initrd',
    files.initramfs,
    '-append',
    'console=ttyS0 quiet panic=-1',
    ...(drive ? ['-drive', drive] : []),
    ...traces.flatMap((event) => ['-trace', event]),
  ];
  const child = spawn(QEMU, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(child);
  let consoleText = '';
  let stderrText = '';
  let exit: string | null = null;
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const waiter of [...waiters]) waiter();
  };
  child.stdout!.on('data', (d: Buffer) => {
    consoleText += d.toString('latin1').replace(/\r/g, '');
    wake();
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderrText += d.toString();
  });
  child.stdin!.on('error', () => {}); // a write after QEMU died: the exit below reports it
  const exited = new Promise<void>((resolve) => {
    const gone = (why: string) => {
      live.delete(child);
      exit ??= why;
      wake();
      resolve();
    };
    child.on('exit', (code, signal) => gone(`QEMU exited (${signal ?? code})`));
    child.on('error', (err) => gone(`QEMU did not start: ${err.message} (Debian package qemu-system-x86)`));
  });
  const report = (what: string) =>
    `${what} [guest ${label}, ${accel}]\n--- QEMU stderr ---\n${tail(stderrText)}\n--- console (last lines) ---\n${tail(consoleText)}`;
  return {
    child,
    console: () => consoleText,
    stderr: () => stderrText,
    exit: () => exit,
    report,
    kill: async () => {
      if (!exit) child.kill('SIGKILL');
      await exited;
    },
    waitFor: <T>(from: number, match: (text: string) => T | null, timeoutMs: number, what: string) =>
      new Promise<T>((resolve, reject) => {
        const settle = (fn: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          fn();
        };
        const check = () => {
          const found = match(consoleText.slice(from));
          if (found !== null) settle(() => resolve(found));
          else if (exit) settle(() => reject(new Error(report(`${what}: ${exit}`))));
        };
        const timer = setTimeout(
          () => settle(() => reject(new Error(report(`${what}: no answer in ${timeoutMs / 1000} s`)))),
          timeoutMs,
        );
        waiters.add(check);
        check();
      }),
  };
}

let accelChoice: Promise<{ accel: Accel; why: string }> | null = null;

/** KVM or TCG for this run, and why (decided once). */
export function guestAccel(): Promise<{ accel: Accel; why: string }> {
  accelChoice ??= (async () => {
    const wanted = process.env.SNAPSYNC_QEMU_ACCEL;
    if (wanted === 'tcg' || wanted === 'kvm') return { accel: wanted, why: 'SNAPSYNC_QEMU_ACCEL' };
    try {
      fs.closeSync(fs.openSync('/dev/kvm', 'r+'));
    } catch (err) {
      return { accel: 'tcg', why: `/dev/kvm: ${(err as NodeJS.ErrnoException).code}` };
    }
    const probe = startQemu('kvm', null, 'kvm probe');
    try {
      await probe.waitFor(
        0,
        (t) => (/^GUEST-INIT$/m.test(t) ? true : null),
        KVM_PROBE_TIMEOUT_MS,
        'kvm probe',
      );
      return { accel: 'kvm', why: 'a probe boot under KVM reached /init' };
    } catch (err) {
      return {
        accel: 'tcg',
        why: `KVM unusable: ${(err as Error).message.split('\n').slice(0, 3).join(' ')}`,
      };
    } finally {
      await probe.kill();
    }
  })();
  return accelChoice;
}

/** Boots a guest whose /dev/vda is `nbdUrl` (nbd://host:port/export); resolves at GUEST-READY. */
export async function bootGuest(
  nbdUrl: string,
  options: {
    label?: string;
    /** QEMU trace events (e.g. `nbd_reconnect_attempt`), logged to `stderr()`: what QEMU's NBD client did. */
    traces?: string[];
  } = {},
): Promise<Guest> {
  const { accel } = await guestAccel();
  const started = Date.now();
  const qemu = startQemu(
    accel,
    `file=${nbdUrl},format=raw,if=virtio`,
    options.label ?? nbdUrl,
    options.traces,
  );
  try {
    await qemu.waitFor(0, (t) => (/^GUEST-READY$/m.test(t) ? true : null), BOOT_TIMEOUT_MS, 'boot');
    const failures = qemu.console().match(/^GUEST-FAIL .*$/gm);
    if (failures) throw new Error(qemu.report(`boot: ${failures.join('; ')}`));
  } catch (err) {
    await qemu.kill();
    throw err;
  }
  const bootMs = Date.now() - started;

  let nextId = 1;
  const run = async (command: string, timeoutMs = COMMAND_TIMEOUT_MS): Promise<GuestResult> => {
    if (command.includes('\n')) throw new Error('one line per guest command');
    const id = nextId++;
    const from = qemu.console().length;
    qemu.child.stdin!.write(`${id} ${command}\n`);
    const doneLine = new RegExp(`^GUEST-DONE ${id} (\\d+)$`, 'm');
    return qemu.waitFor(
      from,
      (text) => {
        const m = doneLine.exec(text);
        return m ? { rc: Number(m[1]), output: text.slice(0, m.index) } : null;
      },
      timeoutMs,
      `guest command "${command}"`,
    );
  };
  const ok = async (command: string, timeoutMs?: number) => {
    const r = await run(command, timeoutMs);
    if (r.rc !== 0) throw new Error(qemu.report(`guest command "${command}" exited ${r.rc}: ${r.output}`));
    return r.output;
  };
  const hexLine = (output: string, tag: string) => {
    const m = new RegExp(`^${tag} ([0-9a-f]*)$`, 'm').exec(output);
    if (!m) throw new Error(qemu.report(`no ${tag} line in: ${output}`));
    return Buffer.from(m[1]!, 'hex');
  };
  const checkBlock = (offset: number) => {
    if (offset % 4096 !== 0) throw new Error(`guest I/O offset ${offset} is not a multiple of 4096`);
  };

  return {
    accel,
    bootMs,
    console: qemu.console,
    stderr: qemu.stderr,
    report: qemu.report,
    run,
    ok,
    write: (offset, text) => {
      checkBlock(offset);
      if (!/^[\w.:@=+-]*$/.test(text) || text.length > 4096)
        throw new Error(`guest marker must be plain: ${text}`);
      return run(`put ${offset} '${text}'`);
    },
    read: async (offset, length) => {
      checkBlock(offset);
      const r = await run(`get ${offset} ${length}`);
      return r.rc === 0 ? { ...r, data: hexLine(r.output, 'DATA') } : r;
    },
    diskGuidBytes: async () => hexLine(await ok('guid'), 'GUID'),
    running: () => !qemu.exit(),
    kill: qemu.kill,
  };
}
