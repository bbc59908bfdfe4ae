/** A value inside a text file: its field name and the character span that holds it. */
export interface ValueSpan {
  field: string;
  value: string;
  start: number;
  end: number;
}

/** Replaces spans (given by field) with new values, keeping every other character. */
export function replaceSpans(text: string, spans: ValueSpan[], values: Map<string, string>): string {
  let out = text;
  for (const span of [...spans].sort((a, b) => b.start - a.start)) {
    const value = values.get(span.field);
    if (value !== undefined) out = out.slice(0, span.start) + value + out.slice(span.end);
  }
  return out;
}
