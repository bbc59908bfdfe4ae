/**
 * Structured JSON logs, one object per line. Secrets registered with the
 * logger are scrubbed from every line before it is written, whatever field
 * they hide in (defence in depth: no code path logs the token on purpose).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export class Logger {
  private readonly secrets: string[] = [];

  constructor(
    private readonly write: (line: string) => void = (line) => process.stderr.write(line),
    private readonly minLevel: LogLevel = 'info',
  ) {}

  addSecret(secret: string | null | undefined): void {
    if (secret) this.secrets.push(secret);
  }

  log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
    const order = { debug: 0, info: 1, warn: 2, error: 3 };
    if (order[level] < order[this.minLevel]) return;
    let line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields });
    for (const secret of this.secrets) line = line.split(secret).join('[redacted]');
    this.write(`${line}\n`);
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
