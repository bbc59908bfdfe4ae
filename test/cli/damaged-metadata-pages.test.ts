/**
 * A pool whose metadata file is damaged below the roots of its trees (a
 * branch, leaf or overflow page in the middle of a pool with three-level
 * trees): `fsck --pool`, `serve` and `migrate --pool` exit 1 with CORRUPT
 * naming the page, never die on a signal or call the pool clean, and leave the
 * file as it was (engine/store/metadata-tree-walk.ts); the same pool undamaged,
 * and the frozen fixtures, pass.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Key, open } from 'lmdb';
import { AgentClient, type AgentError } from '../../agent/client/client';
import { Pool } from '../../agent/engine';
import { decodePresence } from '../../agent/engine/presence-record';
import { checkMetadataFile } from '../../agent/engine/store/metadata-file-check';
import type { PageVisit } from '../../agent/engine/store/metadata-tree-walk';
import { startAgentProcess } from '../helpers/agent-process';
import { runCli } from '../helpers/run-cli';
import { seededRandom } from '../helpers/seeded-random';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const PAGE = 4096; // the page size LMDB picked for these pools (the OS page size)
const BS = 4096;
const GROUP_BLOCKS = 1024; // blocks per map-group record (store/group-record.ts)
/** One block in each of this many groups: presence and map-groups records enough for three-level trees. */
const SPARSE_GROUPS = 20_000;
/** Groups written whole: their map-group records are bigger than a page, on overflow pages. */
const FULL_GROUPS = 4;

/**
 * Rewrites every presence record as its 512-byte bitmap, as a pool migrated from format 3 holds
 * them (format 4 writes a chunk with few blocks as a short list): 5000 of them make three-level trees.
 */
async function presenceAsBitmaps(metaDir: string): Promise<void> {
  const root = open({ path: metaDir, maxDbs: 16 });
  const presence = root.openDB<Buffer, Key>({ name: 'presence', encoding: 'binary' });
  await root.transaction(() => {
    for (const { key, value } of presence.getRange({}))
      presence.putSync(key, Buffer.from(decodePresence(value)!));
  });
  await root.close();
}

/** Every page the walk reaches (the test damages some of them). */
function reachablePages(file: string): PageVisit[] {
  const pages: PageVisit[] = [];
  checkMetadataFile(file, (page) => pages.push(page));
  return pages;
}

/** The middle one of the pages of `kind` at `depth` (any depth if omitted). */
function middle(pages: PageVisit[], kind: PageVisit['kind'], depth?: number): PageVisit {
  const some = pages.filter((p) => p.kind === kind && (depth === undefined || p.depth === depth));
  assert.ok(some.length > 2, `the pool has only ${some.length} ${kind} page(s) at level ${depth}`);
  return some[Math.floor(some.length / 2)];
}

interface Damage {
  /** Damages `bytes` (the whole file) and says which page it damaged. */
  damage: (bytes: Buffer, pages: PageVisit[]) => number;
  says: (page: number) => RegExp;
}

const DAMAGE: Record<string, Damage> = {
  'a branch page below the root zeroed': {
    damage: (bytes, pages) => {
      const { page } = middle(pages, 'branch', 2);
      bytes.fill(0, page * PAGE, (page + 1) * PAGE);
      return page;
    },
    says: (page) => new RegExp(`page ${page} \\(\\S+ tree, level 2\\) says it is page 0`),
  },
  "a branch page's child pointer past the file": {
    damage: (bytes, pages) => {
      const { page } = middle(pages, 'branch', 2);
      // Node 1's child page number (MDB_node's lo, hi, flags): its header and the page's stay valid.
      const node = page * PAGE + 24 + bytes.readUInt16LE(page * PAGE + 24 + 2);
      bytes.writeUInt32LE(1_000_000, node);
      return page;
    },
    says: (page) =>
      new RegExp(`node 1 of page ${page} .* points at page 1000000, outside the file's \\d+ pages`),
  },
  'a leaf page in the middle garbled (its header kept)': {
    damage: (bytes, pages) => {
      const { page } = middle(pages, 'leaf', 3);
      const random = seededRandom(7);
      for (let at = page * PAGE + 24; at < (page + 1) * PAGE; at++) bytes[at] = Math.floor(random() * 256);
      return page;
    },
    says: (page) => new RegExp(`node \\d+ of page ${page} \\(\\S+ tree, level 3\\)`),
  },
  "a leaf page's keys out of order (two node pointers swapped, the page otherwise well-formed)": {
    damage: (bytes, pages) => {
      const { page } = middle(pages, 'leaf', 3);
      const pointers = page * PAGE + 24; // the page header, then one u16 per node
      const [first, second] = [bytes.readUInt16LE(pointers), bytes.readUInt16LE(pointers + 2)];
      bytes.writeUInt16LE(second, pointers);
      bytes.writeUInt16LE(first, pointers + 2);
      return page;
    },
    says: (page) =>
      new RegExp(
        `page ${page} \\(\\S+ tree, level 3\\) has its keys out of order: node 1's is not after node 0's`,
      ),
  },
  'an overflow page zeroed': {
    damage: (bytes, pages) => {
      const { page } = middle(pages, 'overflow');
      bytes.fill(0, page * PAGE, (page + 1) * PAGE);
      return page;
    },
    says: (page) => new RegExp(`overflow page ${page} \\(map-groups tree\\) says it is page 0`),
  },
};

describe('a pool whose metadata file is damaged below the roots of its trees', function () {
  this.timeout(300_000);
  let healthy: string;

  before(async () => {
    healthy = path.join(tempDir(), 'pool');
    const pool = Pool.create(healthy, {
      blockSize: BS,
      capacityBytes: 256 * 2 ** 20,
      metadataReserveBytes: 0,
    });
    pool.createContainer({
      name: 'd',
      type: 'vdisk',
      size: (SPARSE_GROUPS + FULL_GROUPS) * GROUP_BLOCKS * BS,
    });
    for (let g = 0; g < SPARSE_GROUPS; g++) pool.write('d', g * GROUP_BLOCKS * BS, Buffer.alloc(BS, g));
    const whole = Buffer.alloc(GROUP_BLOCKS * BS, 0x5a);
    for (let g = SPARSE_GROUPS; g < SPARSE_GROUPS + FULL_GROUPS; g++)
      pool.write('d', g * GROUP_BLOCKS * BS, whole);
    await pool.close();
    await presenceAsBitmaps(path.join(healthy, 'meta'));
  });
  after(cleanupTempDirs);

  /** A copy of the healthy pool with one page of its metadata file damaged. */
  function damaged(kind: string): { dir: string; file: string; page: number } {
    const dir = path.join(tempDir(), 'pool');
    fs.cpSync(healthy, dir, { recursive: true });
    const file = path.join(dir, 'meta', 'data.mdb');
    const bytes = fs.readFileSync(file);
    const page = DAMAGE[kind].damage(bytes, reachablePages(file));
    fs.writeFileSync(file, bytes);
    return { dir, file, page };
  }

  it('the undamaged pool has three-level trees and overflow pages, and fsck --pool finds it clean', () => {
    const pages = reachablePages(path.join(healthy, 'meta', 'data.mdb'));
    assert.ok(pages.some((p) => p.kind === 'branch' && p.depth === 2));
    assert.ok(pages.some((p) => p.kind === 'overflow'));
    const r = runCli(['fsck', '--pool', healthy, '--json']);
    assert.equal(r.status, 0, r.out + r.err);
  });

  it('the frozen fixtures pass the check', () => {
    const fixtures = path.resolve(__dirname, '../fixtures');
    for (const name of fs.readdirSync(fixtures).filter((n) => n.startsWith('pool-v')))
      checkMetadataFile(path.join(fixtures, name, 'meta', 'data.mdb'));
  });

  for (const kind of Object.keys(DAMAGE)) {
    it(`fsck --pool, serve and migrate --pool exit 1 with CORRUPT naming the page (${kind}), not on a signal`, () => {
      const { dir, file, page } = damaged(kind);
      const before = fs.readFileSync(file);

      const fsck = runCli(['fsck', '--pool', dir, '--json']);
      assert.equal(fsck.signal, null, `fsck killed by ${fsck.signal}: ${fsck.err}`);
      assert.equal(fsck.status, 1, fsck.out + fsck.err);
      const { error } = JSON.parse(fsck.out);
      assert.equal(error.code, 'CORRUPT');
      assert.match(error.message, DAMAGE[kind].says(page));
      assert.match(error.message, /operator guide/);
      assert.equal(error.details.path, file);

      const serve = runCli(['serve', '--pool', dir, '--listen', '127.0.0.1:0', '--insecure-no-auth']);
      assert.equal(serve.signal, null, `serve killed by ${serve.signal}: ${serve.err}`);
      assert.equal(serve.status, 1, serve.out + serve.err);
      assert.match(serve.err, /error: \[CORRUPT\] pool metadata .*data\.mdb is damaged: /);
      assert.match(serve.err, DAMAGE[kind].says(page));

      const migrate = runCli(['migrate', '--pool', dir]);
      assert.equal(migrate.signal, null, `migrate killed by ${migrate.signal}: ${migrate.err}`);
      assert.equal(migrate.status, 1, migrate.out + migrate.err);
      assert.match(migrate.err, /^error: \[CORRUPT\] pool metadata .*data\.mdb is damaged: /);

      assert.ok(fs.readFileSync(file).equals(before), 'a command changed the file');
    });
  }

  it('a request meeting a page damaged while the agent runs gets CORRUPT (not INTERNAL), and the agent lives on', async () => {
    const dir = path.join(tempDir(), 'pool');
    fs.cpSync(healthy, dir, { recursive: true });
    const file = path.join(dir, 'meta', 'data.mdb');
    const agent = await startAgentProcess({ poolDir: dir });
    const client = await AgentClient.connect(agent.url, { token: agent.token });
    try {
      // A map-groups leaf in the middle, and the group its first record is (key: table u32 BE, group u32 BE).
      const { page } = middle(
        reachablePages(file).filter((p) => p.tree === 'map-groups'),
        'leaf',
        2,
      );
      const bytes = fs.readFileSync(file);
      const node = page * PAGE + 24 + bytes.readUInt16LE(page * PAGE + 24);
      const group = bytes.readUInt32BE(node + 8 + 4);
      const fd = fs.openSync(file, 'r+');
      fs.writeSync(fd, Buffer.alloc(PAGE), 0, PAGE, page * PAGE);
      fs.closeSync(fd);
      await assert.rejects(
        client.read('d', group * GROUP_BLOCKS * BS, BS),
        (err: AgentError) =>
          err.code === 'CORRUPT' && /data\.mdb is damaged \(LMDB: MDB_CORRUPTED/.test(err.message),
      );
      assert.equal((await client.call('info', {})).blockSize, BS);
      assert.match(agent.logs(), /pool metadata damaged/);
    } finally {
      await client.close();
      await agent.kill();
    }
  });
});
