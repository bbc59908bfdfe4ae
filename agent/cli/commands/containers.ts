/** Container commands: ls, describe, create, rm, usage. */
import type { Argv, CommandModule } from 'yargs';
import type { Container, Usage } from '../../../schema';
import { AgentClient } from '../../client/client';
import { bytes, type GlobalArgs, parseSize, run, table } from '../context';
import { labelArgs } from '../label-args';
import { type Provisioned, provisionedLine } from '../provisioned';
import { withWarnings } from '../result-warnings';
import { UsageError } from '../usage-error';

type Args<T> = GlobalArgs & T;

export const ls: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'ls',
  describe: 'List containers',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .example('$0 ls', 'every container: type, size, generation, base snapshot')
      .example('$0 ls --json', 'the same as JSON, for scripts') as never,
  handler: (args) =>
    run(
      args,
      (c) => c.call('listContainers', {}),
      (list: Container[]) =>
        table(
          ['NAME', 'TYPE', 'SIZE', 'GEN', 'BASE', 'MEMBER OF', 'NBD'],
          list.map((x) => [
            x.name,
            x.type,
            x.type === 'vm' ? `${Object.keys(x.members).length} members` : bytes(x.size),
            x.generation,
            x.parentSnapshot ? `${x.parentSnapshot.container}@${x.parentSnapshot.name}` : '-',
            x.memberOf ? `${x.memberOf.vm}.${x.memberOf.role}` : '-',
            sessionSummary(x.sessions),
          ]),
        ),
    ),
};

export const describeCmd: CommandModule<GlobalArgs, Args<{ container: string }>> = {
  command: 'describe <container>',
  describe: 'Show one container',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>).example(
      '$0 describe staging-web-disk0',
      'uuid, size, generation, base snapshot, labels, members',
    ) as never,
  handler: (args) =>
    run(
      args,
      (c) => c.call('describe', { container: args.container }),
      (x: Container) =>
        table(
          ['FIELD', 'VALUE'],
          [
            ['name', x.name],
            ['uuid', x.uuid],
            ['type', x.type],
            ['size', `${x.size} (${bytes(x.size)})`],
            ['generation', x.generation],
            ['base', x.parentSnapshot ? `${x.parentSnapshot.container}@${x.parentSnapshot.name}` : '-'],
            ['labels', JSON.stringify(x.labels)],
            ['members', JSON.stringify(x.members)],
            // Members a sync created hold the source's data and go with the VM (operator guide).
            ...(x.syncCreatedMembers?.length
              ? [['created by sync', x.syncCreatedMembers.map((r) => `${r} (${x.members[r]})`).join(', ')]]
              : []),
            ['created', x.createdAt],
            [
              'sessions',
              (x.sessions ?? [])
                .map((s) => `${s.id} ${s.mode} ${s.export} from ${s.client} since ${s.since}`)
                .join('; ') || '-',
            ],
            ...(x.fences ?? []).map((f) => [
              'fenced',
              `${f.container} since ${f.since} by ${f.op}: snapsync-agent unfence ${f.container}`,
            ]),
          ],
        ),
    ),
};

export const create: CommandModule<
  GlobalArgs,
  Args<{ name: string; type: string; size?: number; label: string[]; member: string[] }>
> = {
  command: 'create <name>',
  describe: 'Create a container',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .option('type', { choices: ['vm', 'vdisk', 'file'], demandOption: true })
      .option('size', { type: 'string', coerce: parseSize, describe: 'e.g. 20G (vdisk, file)' })
      .option('label', { type: 'string', array: true, default: [] as string[], describe: 'key=value' })
      .option('member', {
        type: 'string',
        array: true,
        default: [] as string[],
        describe: 'VM: role=container',
      })
      .example('$0 create web-disk0 --type vdisk --size 20G', 'a 20 GiB virtual disk (thin)')
      .example('$0 create web --type vm --member disk0=web-disk0', 'a VM grouping its disks') as never,
  handler: (args) => {
    // A vdisk of 0 bytes holds nothing a VM can use: its size is asked for, not defaulted.
    if (args.type === 'vdisk' && args.size === undefined)
      throw new UsageError('a vdisk needs --size (e.g. --size 20G)');
    const labels = labelArgs(args.label);
    const members = memberArgs(args.member);
    return run(
      args,
      // One call: the agent checks every member before it creates anything (all or nothing).
      (c) =>
        c.call(
          'createContainer',
          {
            name: args.name,
            type: args.type as Container['type'],
            ...(args.size !== undefined ? { size: args.size } : {}),
            labels,
            ...(args.member.length > 0 ? { members } : {}),
          },
          { idempotencyKey: AgentClient.newKey() },
        ),
      (x: Container) => withWarnings(`created ${x.type} ${x.name} (${x.uuid})`, x.warnings),
    );
  },
};

/** `--member role=container` arguments as role → container; a malformed or repeated role is a usage error. */
function memberArgs(args: string[]): Record<string, string> {
  const members: Record<string, string> = {};
  for (const arg of args) {
    const at = arg.indexOf('=');
    if (at <= 0 || at === arg.length - 1)
      throw new UsageError(`--member "${arg}" must look like role=container (e.g. disk0=web-disk0)`);
    const role = arg.slice(0, at);
    if (Object.hasOwn(members, role)) throw new UsageError(`--member: role "${role}" is named twice`);
    members[role] = arg.slice(at + 1);
  }
  return members;
}

export const rm: CommandModule<
  GlobalArgs,
  Args<{ container: string; recursive?: boolean; force?: boolean; detach?: boolean }>
> = {
  command: 'rm <container>',
  describe:
    'Delete a container (refused while it has snapshots unless --recursive; a VM goes with its member disks; ' +
    "a VM's member only with --detach), or a snapshot (name@snapshot)",
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .option('recursive', { type: 'boolean', alias: 'r', describe: 'also delete its snapshots' })
      .option('detach', {
        type: 'boolean',
        describe: "a VM's member disk: take it out of its VM and delete it (else refused with IS_VM_MEMBER)",
      })
      .option('force', {
        type: 'boolean',
        describe:
          'disconnect NBD clients writing the disk first (else refused with IN_USE while one is attached); ' +
          'snapshot readers never block a delete: they keep reading the deleted snapshot until they disconnect',
      })
      .example('$0 rm prod-web@nightly-2026-11-01', 'delete a snapshot')
      .example('$0 rm old-clone', 'delete a container that has no snapshots')
      .example('$0 rm staging-web --recursive', 'delete a VM with its snapshots and member disks')
      .example('$0 rm staging-web-disk1 --detach', 'take a disk out of its VM and delete it') as never,
  handler: (args) =>
    run(
      args,
      async (c) => {
        if (args.container.includes('@')) {
          await c.call(
            'deleteSnapshot',
            { snapshot: args.container, ...(args.force ? { force: true } : {}) },
            { idempotencyKey: AgentClient.newKey() },
          );
          return { deleted: [args.container] };
        }
        // A VM's member disks go with it: say which.
        const members = (await c.call('describe', { container: args.container })).members;
        await c.call(
          'deleteContainer',
          {
            container: args.container,
            recursive: args.recursive,
            ...(args.force ? { force: true } : {}),
            ...(args.detach ? { detach: true } : {}),
          },
          { idempotencyKey: AgentClient.newKey() },
        );
        return { deleted: [args.container, ...Object.values(members)], members };
      },
      (r: { deleted: string[]; members?: Record<string, string> }) =>
        r.members && Object.keys(r.members).length > 0
          ? `deleted ${args.container} and its member disks ${Object.entries(r.members)
              .map(([role, name]) => `${name} (${role})`)
              .join(', ')}`
          : `deleted ${args.container}`,
    ),
};

export const usage: CommandModule<GlobalArgs, Args<{ container: string }>> = {
  command: 'usage <container>',
  describe: "Space used by a container: logical, mapped, exclusive, shared; and the pool's provisioned total",
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>).example(
      '$0 usage prod-web-disk0',
      'how much of it is its own and how much it shares with snapshots and clones',
    ) as never,
  handler: (args) =>
    run(
      args,
      async (c) => {
        const [u, pool] = await Promise.all([
          c.call('usage', { container: args.container }),
          c.call('info', {}),
        ]);
        const { provisionedBytes, capacityBlocks, blockSize, overcommitRatio } = pool;
        return {
          ...u,
          pool: { provisionedBytes, capacityBytes: capacityBlocks * blockSize, overcommitRatio },
        };
      },
      (u: Usage & { pool: Provisioned }) =>
        [
          table(
            ['CONTAINER', 'LOGICAL', 'MAPPED', 'EXCLUSIVE', 'SHARED'],
            [
              [
                u.container,
                bytes(u.logicalBytes),
                bytes(u.mappedBytes),
                bytes(u.exclusiveBytes),
                bytes(u.sharedBytes),
              ],
            ],
          ),
          `pool: ${provisionedLine(u.pool)}`,
        ].join('\n'),
    ),
};

/** `1 rw, 2 ro` (NBD sessions attached), or `-`. */
function sessionSummary(sessions: Container['sessions']): string {
  if (!sessions?.length) return '-';
  const rw = sessions.filter((s) => s.mode === 'read-write').length;
  const ro = sessions.length - rw;
  return [rw ? `${rw} rw` : '', ro ? `${ro} ro` : ''].filter(Boolean).join(', ');
}

export const resize: CommandModule<
  GlobalArgs,
  Args<{ container: string; size: number; shrink?: boolean; force?: boolean }>
> = {
  command: 'resize <container> <size>',
  describe: 'Change the size of a vdisk or file',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .positional('size', { type: 'string', coerce: parseSize, describe: 'e.g. 40G' })
      .option('shrink', { type: 'boolean', describe: 'allow shrinking (discards data past the new end)' })
      .option('force', {
        type: 'boolean',
        describe: 'disconnect attached NBD clients first (else refused with IN_USE while any is attached)',
      })
      .example('$0 resize staging-disk0 40G', 'grow a vdisk') as never,
  handler: (args) =>
    run(
      args,
      (c) =>
        c.call(
          'resize',
          {
            container: args.container,
            size: args.size,
            ...(args.shrink ? { shrink: true } : {}),
            ...(args.force ? { force: true } : {}),
          },
          { idempotencyKey: AgentClient.newKey() },
        ),
      (x: Container) => withWarnings(`resized ${x.name} to ${x.size} (${bytes(x.size)})`, x.warnings),
    ),
};
