/** A result's warnings (createContainer, clone, import --create, resize: OVERCOMMITTED), as the CLI prints them under its line. */
import type { Warning } from '../../schema';
import { printable } from './context';

export function withWarnings(line: string, warnings: Warning[] | undefined): string {
  return [line, ...(warnings ?? []).map((w) => `warning: [${w.code}] ${printable(w.message)}`)].join('\n');
}
