/** `sync`: make a container's data match a snapshot, keeping its own identity; prints the identity report. */
import type { Argv, CommandModule } from 'yargs';
import type { SyncReport } from '../../../schema';
import { AgentClient } from '../../client/client';
import { type GlobalArgs, run, table } from '../context';

interface SyncArgs extends GlobalArgs {
  target: string;
  snapshot: string;
  preserve?: string[];
  noSafety?: boolean;
  member?: string[];
  force?: boolean;
}

export const sync: CommandModule<GlobalArgs, SyncArgs> = {
  command: 'sync <target> <snapshot>',
  describe: 'Sync a container to a snapshot (container@snapshot) without copying data',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .option('preserve', {
        type: 'string',
        array: true,
        describe: 'identity fields or globs to keep ("none" for none; default: the defaults)',
      })
      .option('no-safety', { type: 'boolean', describe: 'do not keep a safety snapshot' })
      .option('member', { type: 'string', array: true, describe: 'VM: only these roles' })
      .option('force', {
        type: 'boolean',
        describe: 'disconnect attached NBD clients first (else refused with IN_USE while any is attached)',
      })
      .example('$0 sync staging-web prod-web@nightly-2026-11-24', 'refresh a VM, keeping its identity')
      .example(
        '$0 sync staging-disk0 prod-disk0@nightly --preserve "disk*.gpt.*"',
        'keep only the GPT GUIDs',
      ) as never,
  handler: (args) =>
    run(
      args,
      (c) => {
        const preserve = !args.preserve
          ? 'default'
          : args.preserve.length === 1 && args.preserve[0] === 'none'
            ? 'none'
            : args.preserve;
        return c.call(
          'sync',
          {
            target: args.target,
            source: args.snapshot,
            preserve,
            safetySnapshot: !args.noSafety,
            ...(args.member ? { members: args.member } : {}),
            ...(args.force ? { force: true } : {}),
          },
          { idempotencyKey: AgentClient.newKey() },
        );
      },
      (r: SyncReport) => {
        const lines = [
          `synced ${r.target.name} to ${args.snapshot} (generation ${r.generation}, ${r.metadataEntries} metadata entries, no data copied)`,
          ...r.members.filter((m) => m.role).map((m) => `  ${m.role}: ${m.container} ← ${m.source}`),
          r.safetySnapshot
            ? `undo: snapsync-agent revert ${r.target.name} ${r.safetySnapshot.name}`
            : 'no safety snapshot kept',
        ];
        if (r.identity) {
          lines.push(
            '',
            table(
              ['FIELD', 'KEPT VALUE', 'STATUS', 'SOURCE HAD'],
              r.identity.fields.map((f) => [f.path, f.value, f.status, f.sourceValue ?? '']),
            ),
          );
          for (const w of r.identity.warnings) lines.push(`warning: ${w.path}: [${w.code}] ${w.message}`);
        } else lines.push('identity: no profiles ran (identity profiles are not available in this agent)');
        return lines.join('\n');
      },
    ),
};
