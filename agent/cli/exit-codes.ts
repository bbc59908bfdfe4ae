/** Exit codes a script can rely on (also in docs/operator-guide.md). */
export const EXIT = {
  OK: 0,
  /** The agent refused or failed the operation (its error code is printed). */
  OPERATION_FAILED: 1,
  /** Bad command line. */
  USAGE: 2,
  /** Could not reach or authenticate with the agent. */
  CONNECTION: 3,
  /** fsck found problems. */
  FSCK_PROBLEMS: 4,
} as const;
