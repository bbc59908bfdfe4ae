/**
 * Path-attack drill: import and export against every way out of an allowed
 * directory we know of — a symlink at each path component (to a decoy file
 * or directory outside, or dangling), FIFOs, sockets, character and block
 * devices, directories, `..`/`.`/empty components, `/proc/self/fd/N` (named
 * directly or through a link), hard links to files outside, and races that
 * swap a directory or the last component for a symlink while requests are in
 * flight (a separate process swaps them as fast as it can). Each attempt must
 * end as the rules say (refused with its code, or — a hard-linked name
 * exported over — replaced by name), the agent must stay up, and a hash of
 * the decoy tree outside (names, types, contents, link counts, modes) must be
 * the same before and after: 0 files outside touched.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { AgentClient, AgentError } from '../../agent/client/client';
import { startAgentProcess } from '../helpers/agent-process';
import { tempDir } from '../helpers/tmp';

export interface PathAttackResult {
  /** Attempts of fixed shapes (links, special files, components, /proc, hard links). */
  attempts: number;
  /** Of those, how many ended as the rules say. */
  held: number;
  /** Requests sent while a component was being swapped for a symlink. */
  raceAttempts: number;
  /** Of those, how many ended as the rules say (done on the real file, or refused with a path code). */
  raceHeld: number;
  /** Outcomes by code over every attempt (OK for done). */
  outcomes: Record<string, number>;
  /** Files outside the allowed directory whose name, type, content, links or mode changed (or appeared). */
  outsideTouched: number;
  /** Temporary export files left in the allowed directory. */
  leftovers: number;
  agentUp: boolean;
  wrong: string[];
}

/** Every entry below `root`: relative name → a hash of its type, mode, link count and content. */
export function treeDigest(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const st = fs.lstatSync(full);
      const h = createHash('sha256').update(`${st.mode}:${st.nlink}:${st.size}:`);
      if (st.isFile()) h.update(fs.readFileSync(full));
      else if (st.isSymbolicLink()) h.update(fs.readlinkSync(full));
      out.set(path.relative(root, full), h.digest('hex'));
      if (st.isDirectory()) walk(full);
    }
  };
  walk(root);
  return out;
}

export function digestDiff(before: Map<string, string>, after: Map<string, string>): string[] {
  const names = new Set([...before.keys(), ...after.keys()]);
  return [...names].filter((n) => before.get(n) !== after.get(n));
}

function healthz(port: number): Promise<number> {
  return new Promise((resolve) => {
    http
      .get({ host: '127.0.0.1', port, path: '/healthz', timeout: 10_000 }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', () => resolve(0))
      .on('timeout', () => resolve(0));
  });
}

/** Lets an agent blocked opening a FIFO (either end) go on: opens the other ends, then closes them. */
function unfreeze(fifo: string): void {
  const { O_RDONLY, O_WRONLY, O_NONBLOCK } = fs.constants;
  const reader = fs.openSync(fifo, O_RDONLY | O_NONBLOCK);
  try {
    fs.closeSync(fs.openSync(fifo, O_WRONLY | O_NONBLOCK));
  } catch {}
  fs.closeSync(reader);
}

/** The swapper: a child process that flips `name` between a real entry and a symlink outside, forever. */
function startSwapper(pairs: Array<{ name: string; stash: string; link: string }>) {
  const script = `
    const fs = require('node:fs');
    const pairs = ${JSON.stringify(pairs)};
    for (;;) for (const p of pairs) {
      try { fs.renameSync(p.name, p.stash); fs.symlinkSync(p.link, p.name); } catch {}
      try { fs.unlinkSync(p.name); fs.renameSync(p.stash, p.name); } catch {}
    }`;
  const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  return {
    stop: async () => {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      // Leave every pair as the real entry.
      for (const p of pairs) {
        if (fs.existsSync(p.stash)) {
          try {
            fs.unlinkSync(p.name); // the link, never what it points at
          } catch {}
          fs.renameSync(p.stash, p.name);
        }
      }
    },
  };
}

export async function pathAttackDrill(raceRounds: number): Promise<PathAttackResult> {
  const result: PathAttackResult = {
    attempts: 0,
    held: 0,
    raceAttempts: 0,
    raceHeld: 0,
    outcomes: {},
    outsideTouched: 0,
    leftovers: 0,
    agentUp: false,
    wrong: [],
  };
  // The decoy tree outside: what an escape would read, overwrite or create.
  const outside = tempDir('snapsync-decoy-');
  fs.mkdirSync(path.join(outside, 'dir'));
  fs.writeFileSync(path.join(outside, 'file.img'), Buffer.alloc(64 * 1024, 0x44));
  fs.writeFileSync(path.join(outside, 'dir', 'img'), Buffer.alloc(64 * 1024, 0x45));
  fs.writeFileSync(path.join(outside, 'dir', 'out.img'), 'decoy out.img');
  fs.writeFileSync(path.join(outside, 'secret'), 'decoy secret');
  fs.writeFileSync(path.join(outside, 'linked'), 'decoy hard-linked');
  const before = treeDigest(outside);

  const agent = await startAgentProcess();
  const client = await AgentClient.connect(agent.url, { token: agent.token });
  const A = path.join(agent.dir, 'allowed');
  fs.mkdirSync(path.join(A, 'd1', 'd2'), { recursive: true });
  fs.writeFileSync(path.join(A, 'd1', 'd2', 'img'), Buffer.alloc(64 * 1024, 0x11));
  await client.call('createContainer', { name: 'src', type: 'vdisk', size: 64 * 1024 });
  await client.write('src', 0, Buffer.alloc(64 * 1024, 0x22));
  let n = 0;

  const count = (outcome: string) => {
    result.outcomes[outcome] = (result.outcomes[outcome] ?? 0) + 1;
  };
  /** The outcome's code (OK when done); NO_ANSWER if the agent has not answered in 30 s (a frozen agent). */
  const outcomeOf = (call: Promise<unknown>): Promise<string> =>
    Promise.race([
      call.then(
        () => 'OK',
        (err) => (err instanceof AgentError ? err.code : `error: ${String(err)}`),
      ),
      new Promise<string>((resolve) => setTimeout(() => resolve('NO_ANSWER'), 30_000).unref()),
    ]);
  /** One attempt: import and export (with and without overwrite) of `p`, each outcome in `expect`. */
  const attack = async (
    what: string,
    p: string,
    expect: { import: string[]; export: string[]; overwrite: string[] },
  ) => {
    const tries: Array<[string, string[], () => Promise<unknown>]> = [
      [
        'import',
        expect.import,
        () => client.call('import', { path: p, container: `atk-${++n}`, create: true }),
      ],
      ['export', expect.export, () => client.call('export', { container: 'src', path: p })],
      [
        'export --overwrite',
        expect.overwrite,
        () => client.call('export', { container: 'src', path: p, overwrite: true }),
      ],
    ];
    for (const [op, allowed, run] of tries) {
      result.attempts++;
      const outcome = await outcomeOf(run());
      if (outcome === 'NO_ANSWER' && fs.lstatSync(p, { throwIfNoEntry: false })?.isFIFO()) unfreeze(p);
      count(outcome);
      if (allowed.includes(outcome)) result.held++;
      else result.wrong.push(`${op} ${what} (${p}): got ${outcome}, expected ${allowed.join(' or ')}`);
    }
  };
  const PATH = ['PATH_NOT_ALLOWED'];
  const SPECIAL = ['NOT_A_REGULAR_FILE'];
  const EXISTS = ['ALREADY_EXISTS'];

  try {
    // Symlinks at every component of A/d1/d2/img, to the decoy (file or dir), dangling, and inside.
    const parts = ['d1', 'd2', 'img'];
    for (let i = 0; i < parts.length; i++) {
      const last = i === parts.length - 1;
      const targets: Array<[string, string]> = [
        ['to a decoy outside', last ? path.join(outside, 'file.img') : path.join(outside, 'dir')],
        ['dangling', path.join(outside, 'missing', `m${i}`)],
        ['to /proc/self/fd/0', '/proc/self/fd/0'],
        ['inside the allowed dir', last ? path.join(A, 'd1', 'd2', 'img') : path.join(A, 'd1')],
      ];
      for (const [kind, target] of targets) {
        const base = path.join(A, `s${i}-${kind.replace(/\W+/g, '-')}`);
        fs.mkdirSync(base);
        let cursor = base;
        for (let j = 0; j < parts.length; j++) {
          const here = path.join(cursor, parts[j]!);
          // Real directories above the link; nothing real below it.
          if (j === i) fs.symlinkSync(target, here);
          else if (j < i) fs.mkdirSync(here);
          cursor = here;
        }
        const p = path.join(base, ...parts);
        await attack(`symlink ${kind} at component ${i + 1}`, p, {
          import: last ? SPECIAL : PATH,
          export: last ? EXISTS : PATH,
          overwrite: last ? SPECIAL : PATH,
        });
      }
    }
    // Special files as the last component.
    const special = path.join(A, 'special');
    fs.mkdirSync(special);
    spawnSync('mkfifo', [path.join(special, 'fifo')]);
    const server = net.createServer().listen(path.join(special, 'sock'));
    await new Promise((resolve) => server.once('listening', resolve));
    spawnSync('mknod', [path.join(special, 'null'), 'c', '1', '3']);
    spawnSync('mknod', [path.join(special, 'zero'), 'c', '1', '5']);
    spawnSync('mknod', [path.join(special, 'loop'), 'b', '7', '0']);
    fs.mkdirSync(path.join(special, 'dir'));
    try {
      for (const name of ['fifo', 'sock', 'null', 'zero', 'loop', 'dir']) {
        const p = path.join(special, name);
        if (!fs.existsSync(p)) {
          result.wrong.push(`could not make ${name}`);
          continue;
        }
        await attack(`a ${name}`, p, { import: SPECIAL, export: EXISTS, overwrite: SPECIAL });
      }
      // A FIFO must never block the agent: /healthz answers right after.
      if ((await healthz(agent.port)) !== 200) result.wrong.push('/healthz after the special files');
    } finally {
      server.close();
    }
    // Component tricks and names outside.
    const tricks = [
      `${A}/../../etc/passwd`,
      `${A}/d1/../d1/d2/img`,
      `${A}/./d1/d2/img`,
      `${A}//d1/d2/img`,
      `${A}/d1/d2/img/`,
      `${A}/d1/d2/`,
      'd1/d2/img',
      '',
      '/etc/passwd',
      path.join(outside, 'secret'),
      `/proc/${process.pid}/root${path.join(outside, 'secret')}`,
      ...Array.from({ length: 12 }, (_, fd) => `/proc/self/fd/${fd}`),
      ...Array.from({ length: 4 }, (_, fd) => `/proc/self/fd/${fd}/x`),
    ];
    for (const p of tricks)
      await attack('a trick path', p, {
        import: [...PATH, 'INVALID_REQUEST'],
        export: [...PATH, 'INVALID_REQUEST'],
        overwrite: [...PATH, 'INVALID_REQUEST'],
      });
    // /proc/self/fd/N reached through a link inside.
    for (let fd = 0; fd < 12; fd++) {
      const link = path.join(A, `procfd-${fd}`);
      fs.symlinkSync(`/proc/self/fd/${fd}`, link);
      await attack(`a link to /proc/self/fd/${fd}`, link, {
        import: SPECIAL,
        export: EXISTS,
        overwrite: SPECIAL,
      });
      await attack(`through a link to /proc/self/fd/${fd}`, `${link}/x`, {
        import: PATH,
        export: PATH,
        overwrite: PATH,
      });
    }
    // Hard links to a file outside: import refuses; export --overwrite replaces the name only.
    const hard = path.join(A, 'hard');
    fs.linkSync(path.join(outside, 'linked'), hard);
    await attack('a hard link to a file outside', hard, { import: PATH, export: EXISTS, overwrite: ['OK'] });
    fs.linkSync(path.join(outside, 'secret'), path.join(A, 'hard2'));
    await attack('a hard link to a file outside (2)', path.join(A, 'hard2'), {
      import: PATH,
      export: EXISTS,
      overwrite: ['OK'],
    });

    // Races: a directory and a last component swapped for symlinks outside while requests fly.
    const race = path.join(A, 'race');
    fs.mkdirSync(path.join(race, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(race, 'sub', 'img'), Buffer.alloc(64 * 1024, 0x33));
    fs.writeFileSync(path.join(race, 'last.img'), Buffer.alloc(64 * 1024, 0x34));
    const swapper = startSwapper([
      { name: path.join(race, 'sub'), stash: path.join(race, '.sub-stash'), link: path.join(outside, 'dir') },
      {
        name: path.join(race, 'last.img'),
        stash: path.join(race, '.last-stash'),
        link: path.join(outside, 'file.img'),
      },
    ]);
    const RACE_OK = ['OK', 'PATH_NOT_ALLOWED', 'NOT_A_REGULAR_FILE', 'ALREADY_EXISTS'];
    try {
      for (let round = 0; round < raceRounds; round++) {
        // All five at once, each settled at once (outcomeOf), so they race the swapper and each other.
        const calls: Array<[string, Promise<string>]> = [
          [
            'import through sub',
            outcomeOf(
              client.call('import', {
                path: path.join(race, 'sub', 'img'),
                container: `race-${++n}`,
                create: true,
              }),
            ),
          ],
          [
            'import of last',
            outcomeOf(
              client.call('import', {
                path: path.join(race, 'last.img'),
                container: `race-${++n}`,
                create: true,
              }),
            ),
          ],
          [
            'export --overwrite through sub',
            outcomeOf(
              client.call('export', {
                container: 'src',
                path: path.join(race, 'sub', 'out.img'),
                overwrite: true,
              }),
            ),
          ],
          [
            'export --overwrite onto last',
            outcomeOf(
              client.call('export', { container: 'src', path: path.join(race, 'last.img'), overwrite: true }),
            ),
          ],
          [
            'export through sub',
            outcomeOf(
              client.call('export', { container: 'src', path: path.join(race, 'sub', `new-${round}.img`) }),
            ),
          ],
        ];
        for (const [what, call] of calls) {
          result.raceAttempts++;
          const outcome = await call;
          count(outcome);
          if (RACE_OK.includes(outcome)) result.raceHeld++;
          else result.wrong.push(`race ${what}: got ${outcome}`);
        }
      }
    } finally {
      await swapper.stop();
    }
    // What was imported is what was inside (0x11, 0x22 exported, 0x33, 0x34), never the decoy's bytes.
    for (const c of await client.call('listContainers', {})) {
      if (!c.name.startsWith('race-') && !c.name.startsWith('atk-')) continue;
      const head = c.size > 0 ? await client.read(c.name, 0, 1) : Buffer.alloc(0);
      if (![0x11, 0x22, 0x33, 0x34].includes(head[0]!))
        result.wrong.push(`${c.name} (${c.size} bytes) holds ${head.length ? `byte ${head[0]}` : 'nothing'}`);
    }
    result.agentUp = (await healthz(agent.port)) === 200;
  } finally {
    await client.close();
    await agent.stop();
  }
  const changed = digestDiff(before, treeDigest(outside));
  result.outsideTouched = changed.length;
  for (const name of changed) result.wrong.push(`outside touched: ${name}`);
  const walk = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const full = path.join(dir, e.name);
      return e.isDirectory() ? walk(full) : e.name.startsWith('.snapsync-export-') ? [full] : [];
    });
  result.leftovers = walk(A).length;
  return result;
}
