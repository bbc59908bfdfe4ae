/**
 * Range checks for the numeric flags of `serve`: a value the agent would
 * start with but then fail every request on (`--max-in-flight 0`) is a usage
 * error at start, naming the flag.
 */
import { UsageError } from './usage-error';

/** Node's timers hold at most 2^31-1 ms: a longer timeout would fire at once. */
const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/** A whole number from `min` to `max` (yargs gives NaN for text that is no number). */
export function wholeNumber(value: number, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new UsageError(
      `${flag} must be a whole number ${max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`} (not ${value})`,
    );
  return value;
}

/** Seconds above 0 a timer can hold, in milliseconds. */
export function secondsAsMs(value: number, flag: string): number {
  if (!Number.isFinite(value) || value <= 0 || value > MAX_TIMER_SECONDS)
    throw new UsageError(
      `${flag} must be a number of seconds above 0 and at most ${MAX_TIMER_SECONDS} (not ${value})`,
    );
  return value * 1000;
}
