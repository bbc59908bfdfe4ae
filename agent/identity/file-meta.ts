/**
 * Container metadata that a sync never takes from the source (the engine keeps
 * the target's record): name, UUID, labels, and a file's mode and owner. They
 * are read from the target's ContainerInfo, never from the synced content, and
 * always reported as `unchanged`.
 */
import type { ContainerInfo } from '../engine';
import type { IdentityField } from './report';

export function metadataFields(prefix: string, c: ContainerInfo): IdentityField[] {
  const fields: IdentityField[] = [
    { path: `${prefix}name`, value: c.name, status: 'unchanged' },
    { path: `${prefix}uuid`, value: c.uuid, status: 'unchanged' },
  ];
  const labels = Object.keys(c.labels).sort();
  if (labels.length > 0) {
    const sorted = Object.fromEntries(labels.map((k) => [k, c.labels[k]!]));
    fields.push({ path: `${prefix}labels`, value: JSON.stringify(sorted), status: 'unchanged' });
  }
  if (c.file) {
    fields.push({
      path: `${prefix}file.mode`,
      value: `0${(c.file.mode & 0o7777).toString(8).padStart(3, '0')}`,
      status: 'unchanged',
    });
    fields.push({ path: `${prefix}file.owner`, value: `${c.file.uid}:${c.file.gid}`, status: 'unchanged' });
  }
  return fields;
}
