/**
 * A real hypervisor as the attached client (issue 12): qemu-system-x86_64
 * boots a Debian kernel and a busybox initramfs built by the test, its
 * /dev/vda staging's vdisk served over NBD by a real agent process, and the
 * guest writes to it. A refresh of staging is refused while the guest runs;
 * with --force the guest loses its disk and its acknowledged writes are in
 * the safety snapshot; the guest keeps running and retrying, and QEMU's
 * reconnects are refused (the export is fenced) until the operator stops it
 * and runs unfence; a fresh boot of staging after a sync reads
 * production's data under staging's own GPT disk GUID.
 */
import * as assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { guidFromString, guidToString } from '../../agent/identity/guid';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { guestBootFiles } from '../helpers/guest-initramfs';
import { bootGuest, type Guest, guestAccel } from '../helpers/qemu-guest';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BIN = path.resolve(__dirname, '../../bin/snapsync-agent');
const MiB = 1024 * 1024;
const DISK_SIZE = 64 * MiB;
const SECTOR = 512;
/** A block inside partition 1 that production and the guest both write. */
const DATA_OFF = 8 * MiB;
/** A block only the first guest writes (production never does). */
const GUEST_OFF = 12 * MiB;
/** The background writer's blocks: SEQ-<n> goes to WRITER_OFF + (n % WRITER_BLOCKS) * 4 KiB. */
const WRITER_OFF = 16 * MiB;
const WRITER_BLOCKS = 8;
/** How long the guest keeps retrying its disk after the forced sync. */
const RETRY_MS = 5000;
/** What QEMU's NBD client reports about its connection (QEMU's log trace backend, on stderr). */
const NBD_TRACES = [
  'nbd_co_request_fail',
  'nbd_read_reply_entry_fail',
  'nbd_reconnect_attempt*',
  'nbd_client_handshake_success',
];

/** An attached client as the agent lists it (schema/protocol: Session). */
interface Session {
  container: string;
  mode: string;
  client: string;
}

/** The parts of the CLI's --json output this test reads. */
interface CliJson {
  error?: { code: string; message: string; details?: { sessions?: Session[] } };
  sessions?: Session[];
  fences?: Array<{ container: string; op: string }>;
  lifted?: Array<{ container: string }>;
  base64?: string;
  generation?: number;
  parentSnapshot?: unknown;
  safetySnapshot?: { name: string } | null;
  identity?: { fields: Array<{ path: string; status: string }> };
}

interface CliResult {
  status: number | null;
  json: CliJson;
  text: string;
}

/** `snapsync-agent <args> --json`, asynchronously (the guest's console keeps flowing meanwhile). */
function cli(agent: AgentProcess, ...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args, '--json'],
      { env: { ...process.env, SNAPSYNC_URL: agent.url, SNAPSYNC_TOKEN: agent.token }, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const status = err ? ((err as { code?: number }).code ?? null) : 0;
        let json = {};
        try {
          json = JSON.parse(stdout);
        } catch {}
        resolve({ status: typeof status === 'number' ? status : null, json, text: `${stdout}${stderr}` });
      },
    );
  });
}

async function cliOk(agent: AgentProcess, ...args: string[]) {
  const r = await cli(agent, ...args);
  assert.equal(r.status, 0, `snapsync-agent ${args.join(' ')}: ${r.text}`);
  return r.json;
}

/** The bytes `read` returns (base64 in --json). */
async function readBytes(
  agent: AgentProcess,
  container: string,
  offset: number,
  length: number,
  snapshot?: string,
) {
  const args = [
    'read',
    container,
    String(offset),
    String(length),
    ...(snapshot ? ['--snapshot', snapshot] : []),
  ];
  return Buffer.from((await cliOk(agent, ...args)).base64 ?? '', 'base64');
}

/** A raw GPT disk image with one Linux partition and the given disk GUID. */
function gptImage(file: string, diskGuid: string): void {
  fs.writeFileSync(file, Buffer.alloc(0));
  fs.truncateSync(file, DISK_SIZE);
  const s = spawnSync(
    'sgdisk',
    ['-o', '-n', '1:2048:+60M', '-t', '1:8300', '-U', diskGuid, '-u', `1:${randomUUID()}`, file],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(s.status, 0, s.stdout + s.stderr);
}

/** `text` as a guest or `write --text` leaves it in a block, first `length` bytes. */
const marker = (text: string, length = 16) =>
  Buffer.concat([Buffer.from(text), Buffer.alloc(length)]).subarray(0, length);
const lines = (text: string, re: RegExp) => [...text.matchAll(re)].map((m) => Number(m[1]));

describe('nbd: a real QEMU guest on a staging vdisk (qemu-system-x86_64, Debian kernel, busybox initramfs)', function () {
  this.timeout(300_000);
  const prodGuid = randomUUID().toUpperCase();
  const stagingGuid = randomUUID().toUpperCase();
  let agent: AgentProcess;
  let guest: Guest | null = null;
  const runningGuest = (): Guest => {
    if (!guest?.running()) assert.fail('the guest from the previous test runs');
    return guest;
  };
  // The hypervisor reaches the agent as in production: over the agent's Unix socket (nbd+unix).
  const socket = path.join(tempDir('snapsync-qemu-nbd-'), 'nbd.sock');
  const stagingUrl = () => `nbd+unix:///staging-disk0?socket=${socket}`;

  before(async () => {
    guestBootFiles();
    const accel = await guestAccel();
    console.log(`      guest accelerator: ${accel.accel} (${accel.why})`);
    agent = await startAgentProcess({ args: ['--nbd', `unix:${socket}`] });
    assert.match(agent.nbd ?? '', /^nbd\+unix:/);
    for (const [name, guid] of [
      ['prod', prodGuid],
      ['staging', stagingGuid],
    ] as const) {
      const image = path.join(agent.dir, `${name}.img`);
      gptImage(image, guid);
      await cliOk(agent, 'import', image, `${name}-disk0`, '--create');
      await cliOk(agent, 'create', name, '--type', 'vm', '--member', `disk0=${name}-disk0`);
    }
    await cliOk(agent, 'write', 'prod-disk0', String(DATA_OFF), '--text', 'PROD-1');
    await cliOk(agent, 'snapshot', 'prod', 'nightly-1');
  });

  after(async () => {
    await guest?.kill();
    await agent?.stop();
    cleanupTempDirs();
  });

  it("boots with staging's vdisk as /dev/vda over NBD: it sees staging's GPT, writes, and reads its writes back", async () => {
    guest = await bootGuest(stagingUrl(), { label: 'staging', traces: NBD_TRACES });
    console.log(`      boot: ${guest.bootMs} ms (${guest.accel})`);
    assert.match(
      await guest.ok('cat /proc/partitions'),
      /\bvda1\b/,
      "the kernel reads staging's partition table",
    );
    assert.equal(guidToString(await guest.diskGuidBytes()), stagingGuid);

    assert.equal((await guest.write(DATA_OFF, 'STAGING-1')).rc, 0);
    assert.equal((await guest.write(GUEST_OFF, 'GUEST-ONLY')).rc, 0);
    assert.deepEqual((await guest.read(DATA_OFF, 16)).data, marker('STAGING-1'));
    // Acknowledged (O_DIRECT + flush) means the agent has it.
    assert.deepEqual(await readBytes(agent, 'staging-disk0', DATA_OFF, 16), marker('STAGING-1'));
    assert.deepEqual(await readBytes(agent, 'staging-disk0', GUEST_OFF, 16), marker('GUEST-ONLY'));
  });

  it('refuses a refresh while the guest runs (IN_USE, naming its session); nothing changes and the guest keeps its own data', async () => {
    const g = runningGuest();
    // The guest writes all along: SEQ-<n> to its writer blocks, O_DIRECT + fsync each, ACK <n> once acknowledged.
    await g.ok(
      `writer() { n=0; while put $((${WRITER_OFF} + n % ${WRITER_BLOCKS} * 4096)) SEQ-$n; do echo "ACK $n"; n=$((n + 1)); done; echo "STOP $n"; }; writer &`,
    );
    const acks = () => lines(g.console(), /^ACK (\d+)$/gm);
    const waitAcks = async (count: number) => {
      for (let i = 0; i < 600 && acks().length < count; i++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(
        acks().length >= count,
        g.report(`the guest's writer acknowledged ${acks().length} writes, not ${count}`),
      );
    };
    await waitAcks(3);
    const before = await cliOk(agent, 'describe', 'staging-disk0');
    const snapshotsBefore = await cliOk(agent, 'snapshots', 'staging');

    const refused = await cli(agent, 'sync', 'staging', 'prod@nightly-1');
    assert.equal(refused.status, 1, `sync while attached must fail (exit 1): ${refused.text}`);
    assert.equal(refused.json.error?.code, 'IN_USE', refused.text);
    const isGuest = (s: Session) => s.container === 'staging-disk0' && s.mode === 'read-write';
    assert.ok(
      refused.json.error?.details?.sessions?.some(isGuest),
      `IN_USE names the guest's session: ${refused.text}`,
    );
    assert.match(refused.json.error?.message ?? '', /staging-disk0/);
    const listed = await cliOk(agent, 'sessions');
    assert.ok(
      listed.sessions?.some(isGuest),
      `the sessions command shows the guest: ${JSON.stringify(listed)}`,
    );

    const after = await cliOk(agent, 'describe', 'staging-disk0');
    assert.equal(after.generation, before.generation);
    assert.deepEqual(after.parentSnapshot, before.parentSnapshot);
    assert.deepEqual(
      await cliOk(agent, 'snapshots', 'staging'),
      snapshotsBefore,
      'no safety snapshot either',
    );

    // The guest goes on with its own disk: more acknowledged writes, its own data read back.
    await waitAcks(acks().length + 3);
    assert.doesNotMatch(g.console(), /^STOP /m, g.report('the writer stopped'));
    assert.deepEqual((await g.read(DATA_OFF, 16)).data, marker('STAGING-1'));
    assert.equal((await g.write(GUEST_OFF, 'GUEST-AFTER-REFUSAL')).rc, 0);
    assert.deepEqual((await g.read(GUEST_OFF, 32)).data, marker('GUEST-AFTER-REFUSAL', 32));
  });

  it('with --force the guest sees its disk go away, every write it had acknowledged is in the safety snapshot, and its reconnects are refused (fenced)', async () => {
    const g = runningGuest();
    const forced = await cliOk(agent, 'sync', 'staging', 'prod@nightly-1', '--force');
    const safety =
      forced.safetySnapshot?.name ?? assert.fail(`no safety snapshot: ${JSON.stringify(forced)}`);

    // The writer stops at its first failed write: the disk went away under it.
    for (let i = 0; i < 600 && !/^STOP \d+$/m.test(g.console()); i++)
      await new Promise((r) => setTimeout(r, 100));
    const stop = /^STOP (\d+)$/m.exec(g.console());
    assert.ok(stop, g.report('the guest kept writing after the forced sync: it never saw its disk go away'));
    const failed = Number(stop[1]);
    const acked = lines(g.console(), /^ACK (\d+)$/gm);
    assert.equal(Math.max(...acked), failed - 1, 'the writer is sequential');
    console.log(`      the guest's writer: ${acked.length} writes acknowledged, write ${failed} failed`);
    const kernelSaw = /^.*I\/O error, dev vda\b.*$/m.exec(g.console());
    assert.ok(kernelSaw, g.report("the guest's kernel logged no I/O error on vda"));
    console.log(`      the guest's kernel: ${kernelSaw[0].trim()}`);

    // Each writer block holds, in the safety snapshot, its last acknowledged write (or the failed one, if it landed).
    const blocks = await readBytes(agent, 'staging-disk0', WRITER_OFF, WRITER_BLOCKS * 4096, safety);
    for (let b = 0; b < WRITER_BLOCKS; b++) {
      const lastAcked = Math.max(...acked.filter((n) => n % WRITER_BLOCKS === b));
      const text = blocks
        .subarray(b * 4096, b * 4096 + 32)
        .toString('latin1')
        .replace(/\0+$/, '');
      const seq = text === '' ? -Infinity : Number(/^SEQ-(\d+)$/.exec(text)?.[1]); // never written: -Infinity too
      assert.ok(
        seq === lastAcked || (seq === failed && failed % WRITER_BLOCKS === b),
        `writer block ${b} in ${safety}: "${text}", last acknowledged SEQ-${lastAcked}`,
      );
    }
    assert.deepEqual(
      await readBytes(agent, 'staging-disk0', GUEST_OFF, 16, safety),
      marker('GUEST-AFTER-REFUSAL'),
    );

    // The guest keeps running and keeps trying, reads and writes, for a few seconds. QEMU's NBD client
    // reconnects by export name on its own; the forced sync fenced the export, so every reconnect is
    // refused: nothing the stale guest does reaches the refreshed disk, and no session comes back.
    const handshakesBefore = (g.stderr().match(/^nbd_client_handshake_success/gm) ?? []).length;
    let tries = 0;
    const until = Date.now() + RETRY_MS;
    for (let n = 0; Date.now() < until || n < 4; n++) {
      const r = n % 2 === 0 ? await g.read(DATA_OFF, 16) : await g.write(GUEST_OFF, `STALE-${n}`);
      tries++;
      assert.notEqual(
        r.rc,
        0,
        g.report(
          `the guest's ${n % 2 === 0 ? 'read' : 'write'} ${n} succeeded after the forced sync: ${r.output}`,
        ),
      );
    }
    assert.ok(g.running(), g.report('QEMU exited'));
    const nbdTrace = g
      .stderr()
      .split('\n')
      .filter((l) => /^nbd_/.test(l))
      .map((l) => l.split(' ')[0]);
    const count = (t: string) => nbdTrace.filter((x) => x === t).length;
    console.log(
      `      the guest kept trying for ${RETRY_MS / 1000} s: ${tries} reads and writes, all failed; ` +
        `QEMU traced ${count('nbd_reconnect_attempt')} reconnect attempts, ` +
        `${count('nbd_client_handshake_success') - handshakesBefore} handshakes after the sync`,
    );
    assert.ok(
      nbdTrace.some((t) => t?.startsWith('nbd_reconnect_attempt')),
      g.report('QEMU never tried to reconnect: the test would not show the fence'),
    );
    assert.equal(
      (g.stderr().match(/^nbd_client_handshake_success/gm) ?? []).length,
      handshakesBefore,
      g.report('QEMU completed an NBD handshake after the forced sync'),
    );
    const listed = await cliOk(agent, 'sessions');
    assert.deepEqual(listed.sessions, [], `no session came back: ${JSON.stringify(listed)}`);
    assert.deepEqual(
      listed.fences?.map((f) => [f.container, f.op]),
      [['staging-disk0', 'sync']],
      `the fence shows: ${JSON.stringify(listed)}`,
    );
    assert.deepEqual(await readBytes(agent, 'staging-disk0', DATA_OFF, 16), marker('PROD-1'));
    assert.deepEqual(await readBytes(agent, 'staging-disk0', GUEST_OFF, 16), Buffer.alloc(16));
    // The operator stops the VM they forced off its disk.
    await g.kill();
  });

  it("after a sync, a fresh boot of staging reads production's data under staging's own disk GUID", async () => {
    await guest?.kill(); // (b) killed it already, unless it failed first
    guest = null;
    // Still fenced: a new connection is refused, saying so. The VM is stopped: the operator lifts it.
    const probe = spawnSync('qemu-img', ['info', stagingUrl()], { encoding: 'utf8' });
    assert.notEqual(probe.status, 0, probe.stdout);
    assert.match(probe.stderr, /staging-disk0" is fenced .*unfence/, probe.stderr);
    console.log(`      a new connection while fenced: ${probe.stderr.trim().split('\n').join(' ')}`);
    const lifted = await cliOk(agent, 'unfence', 'staging');
    assert.deepEqual(
      lifted.lifted?.map((f) => f.container),
      ['staging-disk0'],
      JSON.stringify(lifted),
    );
    // Production moves on; staging is refreshed again with no guest attached: no --force needed.
    await cliOk(agent, 'write', 'prod-disk0', String(DATA_OFF), '--text', 'PROD-2');
    await cliOk(agent, 'snapshot', 'prod', 'nightly-2');
    const synced = await cliOk(agent, 'sync', 'staging', 'prod@nightly-2');
    const fields = synced.identity?.fields ?? [];
    assert.equal(
      fields.find((f) => f.path.endsWith('gpt.diskGuid'))?.status,
      'restored',
      JSON.stringify(fields),
    );

    guest = await bootGuest(stagingUrl(), { label: 'staging, fresh boot' });
    console.log(`      boot: ${guest.bootMs} ms (${guest.accel})`);
    assert.deepEqual((await guest.read(DATA_OFF, 16)).data, marker('PROD-2'), "production's data");
    assert.deepEqual(
      (await guest.read(GUEST_OFF, 16)).data,
      Buffer.alloc(16),
      "the old guest's writes are gone",
    );
    assert.equal(guidToString(await guest.diskGuidBytes()), stagingGuid, "staging's own disk GUID");
    assert.match(
      await guest.ok('cat /proc/partitions'),
      /\bvda1\b/,
      'the kernel accepts the GPT (header CRCs)',
    );

    // The same from the agent's side: staging's header carries its GUID; production's keeps its own.
    const lba1 = await readBytes(agent, 'staging-disk0', SECTOR, SECTOR);
    assert.equal(lba1.subarray(0, 8).toString('latin1'), 'EFI PART');
    assert.deepEqual(lba1.subarray(56, 72), guidFromString(stagingGuid));
    const exported = path.join(agent.dir, 'staging-after-sync.img');
    await cliOk(agent, 'export', 'staging-disk0', exported);
    const verify = spawnSync('sgdisk', ['-v', exported], { encoding: 'utf8' });
    assert.match(verify.stdout, /No problems found/, verify.stdout + verify.stderr);
    const prodLba1 = await readBytes(agent, 'prod-disk0', SECTOR, SECTOR, 'nightly-2');
    assert.deepEqual(prodLba1.subarray(56, 72), guidFromString(prodGuid));
  });
});
