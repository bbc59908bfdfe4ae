/** cloud-init NoCloud meta-data (YAML): instance-id and local-hostname. */
import type { ValueSpan } from './spans';

const LINE = /^(instance-id|local-hostname)[ \t]*:[ \t]*(["']?)([^"'\n#]*?)\2[ \t]*$/gm;

export function looksLikeCloudInit(text: string): boolean {
  return /^instance-id[ \t]*:/m.test(text);
}

export function parseCloudInit(text: string): ValueSpan[] {
  const spans: ValueSpan[] = [];
  for (const m of text.matchAll(LINE)) {
    let start = m.index! + m[0].indexOf(':') + 1;
    while (text[start] === ' ' || text[start] === '\t') start++;
    start += m[2]!.length; // opening quote
    spans.push({ field: `cloudinit.${m[1]}`, value: m[3]!, start, end: start + m[3]!.length });
  }
  return spans;
}
