/** Argument checks shared by the operations: each failure is INVALID_ARGUMENT naming the argument. */
import { INVALID_ARGUMENT } from './errors';
import type { ContainerType } from './types';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const ROLE = /^[a-z][a-z0-9_-]{0,31}$/;
/** Largest logical size: 2^50 bytes (1 PiB), well inside exact JS integers. */
export const MAX_SIZE = 2 ** 50;

export function checkName(kind: string, name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw INVALID_ARGUMENT(
      `${kind} name must be 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit`,
      { argument: 'name', value: name },
    );
  }
  return name;
}

/**
 * Names the engine gives its own snapshots (a sync's `safety-g<generation>`, an
 * import's hidden `import-undo-<id>`, each maybe with a `-<n>` suffix): a user
 * snapshot may not take one, so none is ever in the engine's way.
 */
export const RESERVED_SNAPSHOT_NAME = /^(safety-g|import-undo-)[0-9]/;

export function checkUserSnapshotName(name: unknown): string {
  checkName('snapshot', name);
  if (RESERVED_SNAPSHOT_NAME.test(name as string)) {
    throw INVALID_ARGUMENT(
      `snapshot name "${name}" is reserved: names starting "safety-g<digit>" or "import-undo-<digit>" are the agent's own (safety snapshots, import undo points)`,
      { argument: 'name', value: name, reserved: true },
    );
  }
  return name as string;
}

export function checkRole(role: unknown): string {
  if (typeof role !== 'string' || !ROLE.test(role)) {
    throw INVALID_ARGUMENT(
      'a member role is 1-32 lowercase letters, digits, "_" or "-" (e.g. config, disk0)',
      {
        argument: 'role',
        value: role,
      },
    );
  }
  return role;
}

export function checkType(type: unknown): ContainerType {
  if (type !== 'vm' && type !== 'vdisk' && type !== 'file') {
    throw INVALID_ARGUMENT('container type must be "vm", "vdisk" or "file"', {
      argument: 'type',
      value: type,
    });
  }
  return type;
}

export function checkSize(size: unknown, argument = 'size'): number {
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0 || size > MAX_SIZE) {
    throw INVALID_ARGUMENT(`${argument} must be a whole number of bytes from 0 to ${MAX_SIZE}`, {
      argument,
      value: size,
    });
  }
  return size;
}

export function checkLabels(labels: unknown): Record<string, string> {
  if (labels === undefined) return {};
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) {
    throw INVALID_ARGUMENT('labels must be an object of strings', { argument: 'labels' });
  }
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels)) {
    if (typeof value !== 'string' || key.length === 0 || key.length > 128 || value.length > 1024) {
      throw INVALID_ARGUMENT(`label "${key}" must be a string key (1-128) with a string value (≤1024)`, {
        argument: `labels.${key}`,
      });
    }
    // Assigned, it would set the object's prototype and the label would vanish without a word.
    if (key === '__proto__')
      throw INVALID_ARGUMENT('label key "__proto__" is not allowed', { argument: 'labels.__proto__' });
    out[key] = value;
  }
  return out;
}

export function checkRange(offset: unknown, length: unknown): void {
  checkSize(offset, 'offset');
  checkSize(length, 'length');
}
