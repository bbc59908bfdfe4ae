/** Block I/O for debugging: read (hexdump), write, and image import/export on the agent host. */
import * as fs from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import type { TransferResult } from '../../../schema';
import ops from '../../../schema/protocol/ops.json';
import { AgentClient, AgentError } from '../../client/client';
import { bytes, type GlobalArgs, parseSize, run } from '../context';
import { provisionedLine } from '../provisioned';
import { withWarnings } from '../result-warnings';
import { UsageError } from '../usage-error';
import { progressBar } from './maintenance';

/** The most bytes one read or write request carries (the protocol's limit): longer ones are split. */
const REQUEST_BYTES = Math.min(
  ops.definitions.ReadParams.properties.length.maximum,
  ops.definitions.WriteParams.properties.length.maximum,
);

/** `NAME@SNAPSHOT` (as rm takes it) or NAME with --snapshot; both at once is a usage error. */
function containerAndSnapshot(named: string, snapshot: string | undefined) {
  const at = named.indexOf('@');
  if (at < 0) return { container: named, snapshot };
  if (snapshot !== undefined)
    throw new UsageError(`"${named}" names a snapshot already: drop --snapshot ${snapshot}, or the @`);
  return { container: named.slice(0, at), snapshot: named.slice(at + 1) };
}

/** OUT_OF_RANGE, before anything is written, for a write that ends past a vdisk's end (as the agent says it). */
async function refuseBeyondEnd(c: AgentClient, container: string, offset: number, length: number) {
  const { type, size } = await c.call('describe', { container });
  if (type === 'vdisk' && offset + length > size)
    throw new AgentError(
      'OUT_OF_RANGE',
      `I/O at offset ${offset} length ${length} is beyond the end of "${container}" (${size} bytes): nothing written`,
      { container, offset, length, size },
    );
}

function exportSource(named: string, snapshot: string | undefined) {
  const source = containerAndSnapshot(named, snapshot);
  return {
    container: source.container,
    ...(source.snapshot !== undefined ? { snapshot: source.snapshot } : {}),
  };
}

export function hexdump(data: Buffer, base: number): string {
  const lines: string[] = [];
  for (let i = 0; i < data.length; i += 16) {
    const row = data.subarray(i, i + 16);
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const text = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${(base + i).toString(16).padStart(10, '0')}  ${hex.padEnd(47)}  |${text}|`);
  }
  return lines.join('\n');
}

export const read: CommandModule<
  GlobalArgs,
  GlobalArgs & { container: string; offset: number; length: number; snapshot?: string; out?: string }
> = {
  command: 'read <container> <offset> <length>',
  describe: 'Read bytes (hexdump, or --out FILE)',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .positional('offset', { type: 'string', coerce: parseSize, describe: 'e.g. 0, 4096, 1M' })
      .positional('length', { type: 'string', coerce: parseSize, describe: 'e.g. 512, 4K, 64M' })
      .option('snapshot', {
        type: 'string',
        describe: 'read one of its snapshots (or name the container NAME@SNAPSHOT)',
      })
      .option('out', { type: 'string', describe: 'write the bytes to this file' })
      .example('$0 read staging-web-disk0 0 512', 'hexdump the first sector')
      .example(
        '$0 read prod-disk0 1M 4K --snapshot nightly --out block.bin',
        'save 4 KiB of a snapshot',
      ) as never,
  handler: (args) =>
    run(
      args,
      async (c) => {
        const offset = args.offset;
        const { container, snapshot } = containerAndSnapshot(args.container, args.snapshot);
        const pieces: Buffer[] = [];
        // The wire takes at most REQUEST_BYTES a request: a longer read is several, in order.
        for (let done = 0; done < args.length; ) {
          const piece = await c.read(
            container,
            offset + done,
            Math.min(REQUEST_BYTES, args.length - done),
            snapshot,
          );
          pieces.push(piece);
          done += piece.length;
          if (piece.length === 0) break;
        }
        const data = Buffer.concat(pieces);
        if (args.out) fs.writeFileSync(args.out, data);
        return {
          container: args.container,
          offset,
          length: data.length,
          ...(args.json && !args.out ? { base64: data.toString('base64') } : {}),
          hexdump: args.out ? null : hexdump(data, offset),
        };
      },
      (r: { hexdump: string | null; length: number }) =>
        r.hexdump ?? `${r.length} bytes written to ${args.out}`,
    ),
};

export const write: CommandModule<
  GlobalArgs,
  GlobalArgs & { container: string; offset: number; file?: string; text?: string }
> = {
  command: 'write <container> <offset>',
  describe: 'Write bytes from --file or --text',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .positional('offset', { type: 'string', coerce: parseSize, describe: 'e.g. 0, 4096, 1M' })
      .option('file', { type: 'string', describe: 'write the bytes of this local file' })
      .option('text', { type: 'string', describe: 'write this text (UTF-8)' })
      .conflicts('file', 'text')
      .check((a) => {
        if (a.file === undefined && a.text === undefined) throw new UsageError('give --file or --text');
        return true;
      })
      .example('$0 write scratch-disk 1M --file patch.bin', 'write a local file at 1 MiB (then flush)')
      .example('$0 write notes 0 --text "hello"', 'write text at the start') as never,
  handler: (args) =>
    run(
      args,
      async (c) => {
        const data = args.file !== undefined ? fs.readFileSync(args.file) : Buffer.from(args.text ?? '');
        // Split into requests, a write past the end would fail only after its first pieces landed.
        if (data.length > REQUEST_BYTES) await refuseBeyondEnd(c, args.container, args.offset, data.length);
        for (let done = 0; done < data.length; done += REQUEST_BYTES)
          await c.write(args.container, args.offset + done, data.subarray(done, done + REQUEST_BYTES));
        await c.call('flush', {});
        return { container: args.container, offset: args.offset, length: data.length };
      },
      (r: { length: number }) => `wrote ${r.length} bytes (flushed)`,
    ),
};

export const importCmd: CommandModule<
  GlobalArgs,
  GlobalArgs & { path: string; container: string; create?: boolean; force?: boolean }
> = {
  command: 'import <path> <container>',
  describe:
    'Import a raw disk image from the agent host (sparse: zero blocks are not stored; all or nothing: a failed or interrupted import leaves the vdisk as it was)',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .option('create', {
        type: 'boolean',
        describe: 'create the vdisk with the image size',
      })
      .option('force', {
        type: 'boolean',
        describe: 'disconnect attached NBD clients first (else refused with IN_USE while any is attached)',
      })
      .example(
        '$0 import /var/lib/snapsync-images/base.img golden --create',
        'a new vdisk from a raw image on the agent host (a directory given to serve --allow-dir)',
      ) as never,
  handler: (args) => {
    if (args.container.includes('@'))
      throw new UsageError(
        `"${args.container}" names a snapshot: import writes into a vdisk (snapshots are read-only)`,
      );
    const bar = progressBar(args, 'import', bytes);
    return run(
      args,
      async (c) => {
        try {
          return await c.call(
            'import',
            {
              path: args.path,
              container: args.container,
              create: args.create,
              ...(args.force ? { force: true } : {}),
            },
            { onProgress: bar.update, idempotencyKey: AgentClient.newKey() },
          );
        } finally {
          bar.stop();
        }
      },
      (r: TransferResult) =>
        withWarnings(
          `imported ${bytes(r.bytes)} into ${r.container} (${bytes(r.dataBytes)} of data)`,
          r.warnings,
        ),
    );
  },
};

export const exportCmd: CommandModule<
  GlobalArgs,
  GlobalArgs & { container: string; path: string; snapshot?: string; overwrite?: boolean }
> = {
  command: 'export <container> <path>',
  describe: 'Export a vdisk (or --snapshot) to a sparse raw image on the agent host',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .option('snapshot', {
        type: 'string',
        describe: 'export one of its snapshots (or name the vdisk NAME@SNAPSHOT)',
      })
      .option('overwrite', { type: 'boolean', describe: 'replace an existing file' })
      .example(
        '$0 export prod-web-disk0 /var/lib/snapsync-images/prod.img --snapshot nightly',
        'a sparse raw image of a snapshot, on the agent host',
      ) as never,
  handler: (args) => {
    const bar = progressBar(args, 'export', bytes);
    return run(
      args,
      async (c) => {
        try {
          return await c.call(
            'export',
            {
              ...exportSource(args.container, args.snapshot),
              path: args.path,
              overwrite: args.overwrite,
            },
            { onProgress: bar.update },
          );
        } finally {
          bar.stop();
        }
      },
      (r: TransferResult) =>
        `exported ${r.container} to ${r.path}: ${bytes(r.bytes)} (${bytes(r.dataBytes)} of data)`,
    );
  },
};

export const info: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'info',
  describe: 'Pool information',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>).example(
      '$0 info',
      'pool uuid, block size, containers, snapshots, space used',
    ) as never,
  handler: (args) =>
    run(
      args,
      (c) => c.call('info', {}),
      (p: {
        uuid: string;
        blockSize: number;
        capacityBlocks: number;
        usedBlocks: number;
        containers: number;
        snapshots: number;
        dataFiles: string[];
        provisionedBytes: number;
        overcommitRatio: number;
      }) =>
        `pool ${p.uuid}: ${p.containers} containers, ${p.snapshots} snapshots, ${bytes(p.usedBlocks * p.blockSize)} used of ${bytes(p.capacityBlocks * p.blockSize)} (block ${bytes(p.blockSize)}; data in ${p.dataFiles.length === 1 ? p.dataFiles[0] : `${p.dataFiles.length} files, ${p.dataFiles[0]}…`})\n${provisionedLine({ ...p, capacityBytes: p.capacityBlocks * p.blockSize })}`,
    ),
};
