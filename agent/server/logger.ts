/**
 * Structured JSON logs, one object per line. Secrets registered with the
 * logger are scrubbed from every string value before the line is written,
 * whatever field they hide in (defence in depth: no code path logs the token
 * on purpose). Field names and the JSON around the values are never touched.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * The shortest secret the logger scrubs: a shorter one would match ordinary
 * words in log lines. The agent's tokens have at least this many characters (auth.ts).
 */
export const MIN_SECRET_LENGTH = 16;

export class Logger {
  private readonly secrets: string[] = [];

  constructor(
    private readonly write: (line: string) => void = (line) => process.stderr.write(line),
    private readonly minLevel: LogLevel = 'info',
  ) {}

  /** Throws for a secret shorter than MIN_SECRET_LENGTH: whoever holds one must refuse it first. */
  addSecret(secret: string | null | undefined): void {
    if (!secret) return;
    if (secret.length < MIN_SECRET_LENGTH)
      throw new RangeError(`a secret to scrub from logs needs at least ${MIN_SECRET_LENGTH} characters`);
    this.secrets.push(secret);
  }

  log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
    const order = { debug: 0, info: 1, warn: 2, error: 3 };
    if (order[level] < order[this.minLevel]) return;
    // Scrubbed before encoding: a secret with a quote or backslash in it is found as written, not as JSON escaped it.
    const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }, (_key, value) =>
      typeof value === 'string' ? this.scrub(value) : value,
    );
    this.write(`${line}\n`);
  }

  private scrub(text: string): string {
    for (const secret of this.secrets) text = text.split(secret).join('[redacted]');
    return text;
  }

  info(msg: string, fields?: Record<string, unknown>): void {
    this.log('info', msg, fields);
  }

  warn(msg: string, fields?: Record<string, unknown>): void {
    this.log('warn', msg, fields);
  }

  error(msg: string, fields?: Record<string, unknown>): void {
    this.log('error', msg, fields);
  }
}
