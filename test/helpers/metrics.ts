/** One unlabelled value of a running agent's /metrics (with its token). */
import * as assert from 'node:assert/strict';

export async function metricValue(agent: { url: string; token: string }, name: string): Promise<number> {
  const text = await (
    await fetch(`${agent.url.replace(/^ws/, 'http')}/metrics`, {
      headers: { authorization: `Bearer ${agent.token}` },
    })
  ).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}
