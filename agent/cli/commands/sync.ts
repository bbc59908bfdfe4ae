/** `sync`: make a container's data match a snapshot, keeping its own identity; prints the identity report. */
import type { Argv, CommandModule } from 'yargs';
import type { SyncReport } from '../../../schema';
import { AgentClient } from '../../client/client';
import { type GlobalArgs, run } from '../context';
import { identityLines } from '../identity-report';
import { UsageError } from '../usage-error';

interface SyncArgs extends GlobalArgs {
  target: string;
  snapshot: string;
  preserve?: string[];
  safety?: boolean;
  member?: string[];
  force?: boolean;
  map?: string[];
  allowSourceReference?: string[];
}

/** `--map SRC=DST` (repeatable) → referenceMap; one `=` only: in `a=b=c` which side holds the other is a guess. */
export function parseReferenceMap(entries: string[]): Record<string, string> {
  const map: Record<string, string> = {};
  for (const entry of entries) {
    const at = entry.indexOf('=');
    if (at <= 0 || at === entry.length - 1 || entry.indexOf('=', at + 1) >= 0)
      throw new UsageError(`--map wants SRC=DST (a source value and the target's, one "="), got "${entry}"`);
    const from = entry.slice(0, at);
    // Two DSTs for one SRC: which one the operator meant is unknowable, so neither is guessed.
    if (Object.hasOwn(map, from) && map[from] !== entry.slice(at + 1))
      throw new UsageError(
        `--map gives ${from} twice (${map[from]} and ${entry.slice(at + 1)}): give it once`,
      );
    map[from] = entry.slice(at + 1);
  }
  return map;
}

export const sync: CommandModule<GlobalArgs, SyncArgs> = {
  command: 'sync <target> <snapshot>',
  describe: 'Sync a container to a snapshot (container@snapshot) without copying data',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .option('preserve', {
        type: 'string',
        array: true,
        describe:
          'identity fields or globs to keep ("default": the default fields, also in a list with others; "none" for none; default: default)',
      })
      .option('safety', {
        type: 'boolean',
        default: true,
        // yargs reads --no-safety as safety=false (an option named no-safety was never set)
        describe: 'keep a safety snapshot to revert to (--no-safety: keep none)',
      })
      .option('member', { type: 'string', array: true, describe: 'VM: only these roles' })
      .option('force', {
        type: 'boolean',
        describe: 'disconnect attached NBD clients first (else refused with IN_USE while any is attached)',
      })
      .option('map', {
        type: 'string',
        array: true,
        describe:
          "SRC=DST: a reference the target never had (a disk file, NBD export, network), or an identity value (the address of a NIC only the source has) → the target's own",
      })
      .option('allow-source-reference', {
        type: 'string',
        array: true,
        describe:
          "a name or UUID of the source's containers, or a UUID/MAC of the source's that the sync replaced, a synced config may still hold",
      })
      .example(
        '$0 sync staging-web prod-web@nightly --map prod-dmz=staging-dmz',
        "production's new NIC on prod-dmz goes on staging-dmz for staging",
      )
      .example('$0 sync staging-web prod-web@nightly-2026-11-24', 'refresh a VM, keeping its identity')
      .example(
        '$0 sync staging-disk0 prod-disk0@nightly --preserve default "gpt.partition*"',
        "the default fields and the opt-in GPT partition GUIDs too (a plain vdisk's fields have no role prefix)",
      ) as never,
  handler: (args) =>
    run(
      args,
      (c) => {
        const referenceMap = args.map ? parseReferenceMap(args.map) : undefined;
        if (args.preserve?.some((p) => p.trim() === ''))
          throw new UsageError(
            '--preserve takes a field path or glob, "default" or "none"; an entry is empty',
          );
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
            safetySnapshot: args.safety !== false,
            ...(args.member ? { members: args.member } : {}),
            ...(args.force ? { force: true } : {}),
            ...(referenceMap ? { referenceMap } : {}),
            ...(args.allowSourceReference ? { allowSourceReferences: args.allowSourceReference } : {}),
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
        if (r.identity) lines.push(...identityLines(r.identity));
        else lines.push('identity: no profiles ran (identity profiles are not available in this agent)');
        return lines.join('\n');
      },
    ),
};
