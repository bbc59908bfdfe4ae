/** `--label key=value` arguments, shared by create and snapshot. */
import { UsageError } from './usage-error';

/** `key=value` arguments (the value may hold `=`) as an object; one without `=` or a key is a usage error. */
export function labelArgs(args: string[], flag = '--label'): Record<string, string> {
  return Object.fromEntries(
    args.map((arg) => {
      const at = arg.indexOf('=');
      if (at <= 0) throw new UsageError(`${flag} "${arg}" must look like key=value (e.g. env=staging)`);
      return [arg.slice(0, at), arg.slice(at + 1)];
    }),
  );
}
