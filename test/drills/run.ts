/**
 * `make drill`: every drill at a larger size than CI runs, and one table.
 * Sizes: SNAPSYNC_DRILL_CRASH_CYCLES (1000), SNAPSYNC_DRILL_FRAMES (5000),
 * SNAPSYNC_DRILL_FAULTS (1000), SNAPSYNC_DRILL_CLIENTS (32),
 * SNAPSYNC_DRILL_SECONDS (30), SNAPSYNC_DRILL_FLOOD (50), SNAPSYNC_DRILL_HOST_FULL_ROUNDS (5),
 * SNAPSYNC_DRILL_PATH_RACES (500), SNAPSYNC_DRILL_IMPORT_KILLS (50, each for import --create and
 * for an import into an existing vdisk), SNAPSYNC_DRILL_IMPORT_FAULTS (100), SNAPSYNC_DRILL_IMPORT_DROPS (10);
 * SNAPSYNC_DRILL_SEED.
 */
import { cleanupTempDirs } from '../helpers/tmp';
import { crashDrill } from './crash';
import { faultDrill } from './faults';
import { hostFullDrill } from './host-full';
import { hostileDrill } from './hostile';
import { importCrashDrill } from './import-crash';
import { importIntoDisconnectDrill, importIntoFaultDrill, importIntoKillDrill } from './import-into';
import { loadDrill } from './load';
import { pathAttackDrill } from './path-attack';
import { securityDrill } from './security';

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

async function main() {
  const seed = env('SNAPSYNC_DRILL_SEED', Date.now() % 2 ** 31);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(`drill seed ${seed}`);
  const crash = await crashDrill(env('SNAPSYNC_DRILL_CRASH_CYCLES', 1000), seed);
  log(`crash: ${JSON.stringify(crash)}`);
  const faults = await faultDrill(env('SNAPSYNC_DRILL_FAULTS', 1000), seed);
  log(`faults: ${JSON.stringify(faults)}`);
  const hostile = await hostileDrill(env('SNAPSYNC_DRILL_FRAMES', 5000), seed);
  log(`hostile: ${JSON.stringify(hostile)}`);
  const load = await loadDrill(env('SNAPSYNC_DRILL_CLIENTS', 32), env('SNAPSYNC_DRILL_SECONDS', 30));
  log(`load: ${JSON.stringify(load)}`);
  const security = await securityDrill(env('SNAPSYNC_DRILL_FLOOD', 50));
  log(`security: ${JSON.stringify(security)}`);
  const hostFull = await hostFullDrill(env('SNAPSYNC_DRILL_HOST_FULL_ROUNDS', 5));
  log(`host full: ${JSON.stringify(hostFull)}`);
  const paths = await pathAttackDrill(env('SNAPSYNC_DRILL_PATH_RACES', 500));
  log(`path attacks: ${JSON.stringify(paths)}`);
  const imports = await importCrashDrill(env('SNAPSYNC_DRILL_IMPORT_KILLS', 50), seed);
  log(`import crash: ${JSON.stringify(imports)}`);
  const into = [
    await importIntoKillDrill(env('SNAPSYNC_DRILL_IMPORT_KILLS', 50), seed),
    await importIntoFaultDrill(env('SNAPSYNC_DRILL_IMPORT_FAULTS', 100), seed),
    await importIntoDisconnectDrill(env('SNAPSYNC_DRILL_IMPORT_DROPS', 10), seed),
  ];
  log(`import into existing vdisks: ${JSON.stringify(into)}`);
  cleanupTempDirs();

  const lost = crash.lostWrites + faults.lostWrites + load.lostWrites;
  const ops = Object.entries(crash.operations)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  const rows: Array<[string, string, boolean]> = [
    [
      'crash cycles survived (SIGKILL under load)',
      `${crash.cycles - crash.failedCycles} / ${crash.cycles} (${ops})`,
      crash.failedCycles === 0,
    ],
    [
      'faults injected and survived (EIO, ENOSPC, short writes)',
      `${faults.survived} / ${faults.injected} (${Object.entries(faults.byFault)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ')})`,
      faults.survived === faults.injected && faults.fsckProblems === 0,
    ],
    [
      'hostile inputs tried and refused (agent + NBD)',
      `${hostile.refused} / ${hostile.tried} agent frames, ${hostile.nbdRefused} / ${hostile.nbdCommands} NBD commands, ${hostile.nbdTried} NBD handshake streams; agent and NBD up, nothing changed: ${hostile.agentUp && hostile.stateUnchanged && hostile.nbdServerUp && hostile.nbdUnchanged}`,
      hostile.refused === hostile.tried &&
        hostile.accepted === 0 &&
        hostile.agentUp &&
        hostile.stateUnchanged &&
        hostile.nbdRefused === hostile.nbdCommands &&
        hostile.nbdServerUp &&
        hostile.nbdUnchanged,
    ],
    [
      'load (ops, clients, p50 / p99)',
      `${load.operations} ops, ${load.clients} clients, ${load.seconds} s, p50 ${load.p50ms.toFixed(2)} ms / p99 ${load.p99ms.toFixed(2)} ms, ${load.errors} errors`,
      load.errors === 0,
    ],
    [
      'security: ways in refused',
      `${security.refused} / ${security.attempts}; token in logs: ${security.tokenInLogs}`,
      security.refused === security.attempts && !security.tokenInLogs,
    ],
    [
      'host filesystem full (tmpfs under the pool)',
      `${hostFull.rounds} fills, ${hostFull.writesRefused} writes refused OUT_OF_SPACE, ${hostFull.metadataOpsOk} / ${hostFull.metadataOps} metadata ops with the host full, ${hostFull.rewrittenMiB.reduce((a, b) => a + b, 0)} MiB rewritten after deletes, SIGTERM exits ${hostFull.sigtermExits.join(', ')}, metadata reserve at the end ${(hostFull.reserveBytesAtEnd / 2 ** 20).toFixed(2)} MiB, fsck clean: ${hostFull.fsckClean}${hostFull.wrong.length > 0 ? `; wrong: ${hostFull.wrong.join('; ')}` : ''}`,
      hostFull.wrong.length === 0 &&
        hostFull.metadataOpsOk === hostFull.metadataOps &&
        hostFull.sigtermExits.every((code) => code === 0) &&
        hostFull.fsckClean,
    ],
    [
      'path attacks on import/export held (0 files outside touched)',
      `${paths.held} / ${paths.attempts} fixed attacks, ${paths.raceHeld} / ${paths.raceAttempts} raced requests (${Object.entries(
        paths.outcomes,
      )
        .map(([k, v]) => `${v} ${k}`)
        .join(', ')}); files outside touched: ${paths.outsideTouched}; agent up: ${paths.agentUp}`,
      paths.wrong.length === 0 &&
        paths.held === paths.attempts &&
        paths.raceHeld === paths.raceAttempts &&
        paths.outsideTouched === 0 &&
        paths.leftovers === 0 &&
        paths.agentUp,
    ],
    [
      'import --create killed, restarted, retried',
      `${imports.cycles} kills (${imports.killedMidway} mid-import, ${imports.killedAfter} after it): ${imports.partialContainers} partial containers, ${imports.fsckProblems} fsck problems, ${imports.retryFailures} failed retries`,
      imports.wrong.length === 0 &&
        imports.partialContainers === 0 &&
        imports.fsckProblems === 0 &&
        imports.retryFailures === 0,
    ],
    [
      'import into an existing vdisk killed / faulted / client gone',
      into
        .map(
          (r, i) =>
            `${r.cycles} ${['kills', 'faults', 'disconnects'][i]} (${r.old} old, ${r.new} new, ${r.mixed} mixed)`,
        )
        .join(', ') +
        `: ${into.reduce((n, r) => n + r.identityChanged, 0)} identity changes, ${into.reduce((n, r) => n + r.fsckProblems, 0)} fsck problems, ${into.reduce((n, r) => n + r.retryFailures, 0)} failed retries`,
      into.every((r) => r.wrong.length === 0 && r.mixed === 0),
    ],
    ['acknowledged writes lost', `${lost}`, lost === 0],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  console.log(`| ${'drill'.padEnd(w)} | result | ok |`);
  console.log(`|${'-'.repeat(w + 2)}|--------|----|`);
  for (const [name, value, ok] of rows)
    console.log(`| ${name.padEnd(w)} | ${value} | ${ok ? 'yes' : 'NO'} |`);
  if (rows.some((r) => !r[2])) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
