/**
 * A container an import is still filling: created marked `incomplete`, so no
 * lookup by name finds it (list, describe, I/O, NBD, snapshot, sync); the
 * final commit clears the mark together with the import's idempotency record.
 * A crash before that commit leaves a marked container, which the pool
 * deletes when it opens (`discardIncomplete`), so an interrupted import
 * leaves nothing and its retry with the same key runs again from scratch.
 */
import { type ContainerSpec, createContainer, deleteContainer } from './containers';
import type { EngineCore, MutationOptions } from './core';
import { INVALID_ARGUMENT } from './errors';
import { ImportWriter } from './import-writer';
import { overcommitWarning, provisionedBytes } from './provisioning';
import type { ContainerRecord } from './store/records';
import type { ContainerInfo } from './types';

export class StagedContainer extends ImportWriter {
  private constructor(
    core: EngineCore,
    private readonly id: number,
    private readonly info: (c: ContainerRecord) => ContainerInfo,
    private readonly capacityBytes: () => number,
  ) {
    super(core);
  }

  /** Creates the container, marked incomplete, in one commit. */
  static create(
    core: EngineCore,
    spec: ContainerSpec,
    info: (c: ContainerRecord) => ContainerInfo,
    capacityBytes: () => number,
  ): StagedContainer {
    if (spec?.type === 'vm')
      throw INVALID_ARGUMENT('only a vdisk or a file can be staged', { argument: 'type' });
    const record = core.mutate(() => {
      const created = createContainer(core, spec);
      const staged: ContainerRecord = { ...created, incomplete: true };
      core.catalog.putContainer(core.batch, staged);
      return staged;
    });
    return new StagedContainer(core, record.id, info, capacityBytes);
  }

  protected get record(): ContainerRecord {
    this.core.assertOpen();
    if (this.done) throw INVALID_ARGUMENT('the staged container was completed or discarded', {});
    return this.core.catalog.container(this.id);
  }

  /**
   * Makes the container visible. Its data is synced and its map committed
   * first; the mark is cleared in the commit that stores `result` under the
   * idempotency key, so a crash leaves either nothing or the whole import.
   * Only then does its size count as declared: `info` carries OVERCOMMITTED
   * when that took the pool's declared total beyond its capacity.
   */
  complete<T>(result: (info: ContainerInfo) => T, options: MutationOptions = {}): T {
    const c = this.record;
    const value = this.core.mutate(() => {
      const before = provisionedBytes(this.core.catalog);
      const { incomplete: _, ...visible } = c;
      this.core.catalog.putContainer(this.core.batch, visible);
      const warning = overcommitWarning(before, provisionedBytes(this.core.catalog), this.capacityBytes());
      return result(warning ? { ...this.info(visible), warnings: [warning] } : this.info(visible));
    }, options);
    this.done = true;
    return value;
  }

  /** Deletes the container (an import that failed); its blocks go to the reclaimer. */
  discard(): void {
    if (this.done || this.core.closed) return;
    const c = this.core.catalog.containers.get(this.id);
    this.done = true;
    if (c?.incomplete) this.core.mutate(() => deleteContainer(this.core, c, true));
  }
}

/** Deletes every container an interrupted import left marked incomplete (at open). Returns their names. */
export function discardIncomplete(core: EngineCore): string[] {
  const doomed = [...core.catalog.containers.values()].filter((c) => c.incomplete);
  if (doomed.length === 0) return [];
  core.mutate(() => {
    for (const c of doomed) deleteContainer(core, c, true);
  });
  return doomed.map((c) => c.name);
}
