/** `--label key=value` arguments, shared by create and snapshot. */
import { UsageError } from './usage-error';

/**
 * `key=value` arguments (the value may hold `=`) as an object; one without `=` or a key, or a key
 * given twice with two values (which would silently keep the last), is a usage error.
 */
export function labelArgs(args: string[], flag = '--label'): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const arg of args) {
    const at = arg.indexOf('=');
    if (at <= 0) throw new UsageError(`${flag} "${arg}" must look like key=value (e.g. env=staging)`);
    const [key, value] = [arg.slice(0, at), arg.slice(at + 1)];
    if (Object.hasOwn(labels, key) && labels[key] !== value)
      throw new UsageError(`${flag} gives ${key} twice (${labels[key]} and ${value}): give it once`);
    labels[key] = value;
  }
  return labels;
}
