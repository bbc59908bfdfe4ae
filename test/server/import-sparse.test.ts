/**
 * Import of sparse raw images and import at shutdown, against a real agent
 * process: the agent reads only an image's data regions (SEEK_DATA), the
 * vdisk reads back exactly what the image holds (holes as zeros, also over
 * old content), and SIGTERM during a long import stops the agent with the
 * import undone and the client told SHUTTING_DOWN.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentClient, AgentError } from '../../agent/client/client';
import { Pool } from '../../agent/engine';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Bytes the process has read so far (/proc/PID/io `rchar`: every read system call, cached or not). */
function bytesRead(pid: number): number {
  const line = fs.readFileSync(`/proc/${pid}/io`, 'utf8').match(/^rchar: (\d+)$/m);
  assert.ok(line, `no rchar in /proc/${pid}/io`);
  return Number(line[1]);
}

describe('import of sparse images and at shutdown (real agent process)', function () {
  this.timeout(120_000);
  let agent: AgentProcess | undefined;
  let client: AgentClient | undefined;

  afterEach(async () => {
    await client?.close();
    await agent?.stop();
    client = undefined;
    agent = undefined;
    cleanupTempDirs();
  });

  /**
   * An agent on a pool of its own (restartable) and a 512 MiB image with no hole and no zero block:
   * every byte is read and stored, so an import or export of it takes seconds, not one 4 MiB chunk.
   */
  const agentWithFullImage = async () => {
    const poolDir = path.join(tempDir('snapsync-transfer-stop-'), 'pool');
    await Pool.create(poolDir, { blockSize: 4096, capacityBytes: 2 * GiB }).close();
    agent = await startAgentProcess({ poolDir });
    client = await AgentClient.connect(agent.url, { token: agent.token });
    const size = 512 * MiB;
    const image = path.join(agent.dir, 'full.img');
    const fd = fs.openSync(image, 'w');
    const chunk = Buffer.alloc(4 * MiB, 0x5a);
    for (let offset = 0; offset < size; offset += chunk.length)
      fs.writeSync(fd, chunk, 0, chunk.length, offset);
    fs.closeSync(fd);
    return { poolDir, image, size };
  };

  it('reads only the data regions of a sparse image, and the vdisk reads back exactly the image', async function () {
    // Reading the holes (the defect) takes minutes here: long enough to fail on the assertion, not the timeout.
    this.timeout(600_000);
    agent = await startAgentProcess();
    client = await AgentClient.connect(agent.url, { token: agent.token });
    const size = 4 * GiB;
    const image = path.join(agent.dir, 'sparse.img');
    // Data at known offsets, some not block-aligned; the rest holes (truncate).
    const pieces: Array<[number, Buffer]> = [
      [0, Buffer.from('HEAD')],
      [GiB + 12_345, Buffer.from('unaligned data')],
      [3 * GiB, Buffer.alloc(192 * KiB, 0xa7)],
      [size - 4 * KiB, Buffer.alloc(4 * KiB, 0x3c)],
    ];
    const fd = fs.openSync(image, 'w');
    fs.ftruncateSync(fd, size);
    for (const [offset, data] of pieces) fs.writeSync(fd, data, 0, data.length, offset);
    fs.closeSync(fd);
    // An existing vdisk whose old content lies under the image's holes: the import must zero it.
    await client.call('createContainer', { name: 'old', type: 'vdisk', size });
    await client.write('old', 2 * GiB, Buffer.alloc(64 * KiB, 0x77));

    const before = bytesRead(agent.pid());
    const created = await client.call('import', { path: image, container: 'new', create: true });
    const read = bytesRead(agent.pid()) - before;
    // Reading the holes would be 4 GiB; the data is a few hundred KiB.
    assert.ok(read < 64 * MiB, `the agent read ${read} bytes to import a ${size}-byte sparse image`);
    const into = await client.call('import', { path: image, container: 'old' });
    assert.equal(created.bytes, size);
    assert.equal(into.bytes, size);

    for (const name of ['new', 'old']) {
      for (const [offset, data] of pieces) {
        // The whole 4 KiB blocks around each piece: the piece, and zeros around it.
        const start = offset - (offset % (4 * KiB));
        const length = Math.ceil((offset + data.length) / (4 * KiB)) * 4 * KiB - start;
        const expected = Buffer.alloc(length);
        data.copy(expected, offset - start);
        assert.deepEqual(await client.read(name, start, length), expected, `${name} at ${offset}`);
      }
      assert.deepEqual(await client.read(name, 2 * GiB, 64 * KiB), Buffer.alloc(64 * KiB), `${name}: a hole`);
    }
  });

  it('SIGTERM during a long import stops the agent, undoes the import and tells the client SHUTTING_DOWN', async () => {
    const { poolDir, image, size } = await agentWithFullImage();
    assert.ok(agent && client);
    const old = Buffer.alloc(64 * KiB, 0x11);
    await client.call('createContainer', { name: 'kept', type: 'vdisk', size });
    await client.write('kept', 0, old);
    await client.call('flush', {});

    let started = 0;
    let stopping: Promise<number | null> | undefined;
    const running = agent;
    const onProgress = () => {
      started++;
      // Both imports are under way: stop the agent as systemd does.
      if (started === 2) stopping = running.stop();
    };
    const outcome = (call: Promise<unknown>) =>
      call.then(
        () => 'it succeeded',
        (err) => (err instanceof AgentError ? err.code : String(err)),
      );
    const [intoExisting, createNew] = await Promise.all([
      outcome(client.call('import', { path: image, container: 'kept' }, { onProgress })),
      outcome(client.call('import', { path: image, container: 'fresh', create: true }, { onProgress })),
    ]);
    assert.ok(stopping, 'the imports reported no progress');
    assert.equal(await stopping, 0, `the agent's exit code: ${running.logs()}`);
    assert.equal(intoExisting, 'SHUTTING_DOWN', 'import into an existing vdisk');
    assert.equal(createNew, 'SHUTTING_DOWN', 'import --create');

    await client.close();
    agent = await startAgentProcess({ poolDir });
    client = await AgentClient.connect(agent.url, { token: agent.token });
    assert.deepEqual(await client.read('kept', 0, old.length), old, 'the existing vdisk keeps its content');
    assert.deepEqual(await client.read('kept', 256 * MiB, 64 * KiB), Buffer.alloc(64 * KiB));
    const names = (await client.call('listContainers', {})).map((c) => c.name);
    assert.deepEqual(names, ['kept'], 'no vdisk from the interrupted import --create');
  });

  it('SIGTERM during a long export stops the agent, discards the file and tells the client SHUTTING_DOWN', async () => {
    const { image } = await agentWithFullImage();
    assert.ok(agent && client);
    await client.call('import', { path: image, container: 'big', create: true });

    const running = agent;
    let stopping: Promise<number | null> | undefined;
    const target = path.join(agent.dir, 'out.img');
    const outcome = await client
      .call(
        'export',
        { path: target, container: 'big' },
        {
          onProgress: () => {
            stopping ??= running.stop();
          },
        },
      )
      .then(
        () => 'it succeeded',
        (err) => (err instanceof AgentError ? err.code : String(err)),
      );
    assert.ok(stopping, 'the export reported no progress');
    assert.equal(await stopping, 0, `the agent's exit code: ${running.logs()}`);
    assert.equal(outcome, 'SHUTTING_DOWN');
    assert.equal(fs.existsSync(target), false, 'no half-written export under its name');
    assert.deepEqual(
      fs.readdirSync(agent.dir).filter((n) => n.startsWith('.snapsync-export-')),
      [],
      'no temporary file left',
    );
  });
});
