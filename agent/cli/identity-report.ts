/** The identity report of a sync or a clone, as the CLI prints it: fields, references, warnings. */
import type { IdentityReport } from '../../schema';
import { printable, table } from './context';

/** `valueHeader`: a sync keeps the target's values (KEPT VALUE); a clone's are its new ones (VALUE). */
export function identityLines(identity: IdentityReport, valueHeader = 'KEPT VALUE'): string[] {
  const lines = [
    '',
    table(
      ['FIELD', valueHeader, 'STATUS', 'SOURCE HAD'],
      identity.fields.map((f) => [f.path, f.value, f.status, f.sourceValue ?? '']),
    ),
  ];
  const references = identity.references ?? [];
  if (references.length > 0) {
    lines.push(
      '',
      table(
        ['REFERENCE', 'NOW', 'STATUS', 'SOURCE HAD'],
        references.map((f) => [
          f.path,
          f.value || '(none)',
          f.via ? `${f.status} (${f.via})` : f.status,
          f.sourceValue,
        ]),
      ),
    );
  }
  for (const w of identity.warnings)
    lines.push(`warning: ${printable(w.path)}: [${w.code}] ${printable(w.message)}`);
  return lines;
}
