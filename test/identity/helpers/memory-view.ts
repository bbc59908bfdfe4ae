/**
 * A ContainerView over a Buffer, and a sync simulated on it: capture on the
 * target's bytes, replace them with the source's, restore. Lets profile and
 * property tests run without a pool; the block count is the same rule as the
 * engine's view (distinct blocks touched by write/truncate).
 */
import type {
  ContainerInfo,
  ContainerType,
  ContainerView,
  SnapshotInfo,
  SyncContext,
} from '../../../agent/engine';
import type { IdentityReport } from '../../../agent/identity';
import { createIdentityHooks, type Preserve, type ReferenceOptions } from '../../../agent/identity';

export class MemoryView implements ContainerView {
  private readonly touched = new Set<number>();
  constructor(
    public data: Buffer,
    readonly type: ContainerType,
    readonly name = 'mem',
    private readonly blockSize = 4096,
  ) {}
  size(): number {
    return this.data.length;
  }
  read(offset: number, length: number): Buffer {
    if (offset < 0 || offset + length > this.data.length)
      throw new RangeError(`read ${offset}+${length} past ${this.data.length}`);
    return Buffer.from(this.data.subarray(offset, offset + length));
  }
  write(offset: number, data: Buffer): void {
    if (offset + data.length > this.data.length) {
      if (this.type !== 'file')
        throw new RangeError(`write ${offset}+${data.length} past ${this.data.length}`);
      this.data = Buffer.concat([this.data, Buffer.alloc(offset + data.length - this.data.length)]);
    }
    data.copy(this.data, offset);
    this.count(offset, data.length);
  }
  truncate(length: number): void {
    if (length < this.data.length) this.count(length, this.data.length - length);
    this.data =
      length <= this.data.length
        ? this.data.subarray(0, length)
        : Buffer.concat([this.data, Buffer.alloc(length - this.data.length)]);
  }
  blocksWritten(): number {
    return this.touched.size;
  }
  private count(offset: number, length: number): void {
    for (let b = Math.floor(offset / this.blockSize); b * this.blockSize < offset + length; b++)
      this.touched.add(b);
  }
}

export function info(name: string, type: ContainerType, labels: Record<string, string> = {}): ContainerInfo {
  return {
    id: 1,
    uuid: '00000000-0000-4000-8000-000000000001',
    name,
    type,
    size: 0,
    labels,
    members: {},
    memberOf: null,
    file: type === 'file' ? { mode: 0o644, uid: 0, gid: 0 } : null,
    createdAt: '2026-01-01T00:00:00.000Z',
    parentSnapshot: null,
    generation: 0,
  };
}

const snapshot: SnapshotInfo = {
  id: 1,
  uuid: '00000000-0000-4000-8000-000000000002',
  name: 's',
  container: 'prod-source-container',
  containerType: 'file',
  size: 0,
  createdAt: '2026-01-01T00:00:00.000Z',
  labels: {},
  hidden: false,
  members: {},
  vmSnapshot: null,
  kind: 'user',
};

/** A plain (role-less) sync of `target` to `source` through the identity hooks; returns the target's bytes after. */
export function simulateSync(
  type: ContainerType,
  target: Buffer,
  source: Buffer,
  preserve: Preserve = 'default',
  labels: Record<string, string> = {},
  references: ReferenceOptions = {},
): { report: IdentityReport; data: Buffer; view: MemoryView } {
  const view = new MemoryView(Buffer.from(target), type);
  const context = (): SyncContext => ({
    target: info('target', type, labels),
    source: snapshot,
    members: [{ role: null, target: info('target', type, labels), source: snapshot, view }],
    sourceContainers: [
      { role: null, name: snapshot.container, uuid: '00000000-0000-4000-8000-000000000003' },
    ],
  });
  const hooks = createIdentityHooks(preserve, references);
  const captured = hooks.capture(context());
  view.data = Buffer.from(source);
  const report = hooks.restore(context(), captured);
  return { report, data: view.data, view };
}
