/** A process's resident memory, as /proc/PID/status says (what `top` shows as RES). */
import * as fs from 'node:fs';

export function rssBytes(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}
