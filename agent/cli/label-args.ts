/** `--label key=value` arguments, shared by create and snapshot. */
import { UsageError } from './usage-error';

/**
 * `key=value` arguments (the value may hold `=`) as an object; one without `=` or a key, or a key
 * given twice with two values (which would silently keep the last), is a usage error.
 */
export function labelArgs(args: string[], flag = '--label'): Record<string, string> {
  // A Map, then fromEntries: `__proto__=x` stays a key the agent refuses, not a prototype.
  const labels = new Map<string, string>();
  for (const arg of args) {
    const at = arg.indexOf('=');
    if (at <= 0) throw new UsageError(`${flag} "${arg}" must look like key=value (e.g. env=staging)`);
    const [key, value] = [arg.slice(0, at), arg.slice(at + 1)];
    const given = labels.get(key);
    if (given !== undefined && given !== value)
      throw new UsageError(`${flag} gives ${key} twice (${given} and ${value}): give it once`);
    labels.set(key, value);
  }
  return Object.fromEntries(labels);
}
